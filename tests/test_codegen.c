/* The LLVM backend's kernels against straightforward C references that compute
 * exactly what the interpreter does (ir/interp_fused.c), on random inputs with
 * odd sizes and tails, for the host's vector width and a forced AVX2 target;
 * plus the kernel cache (one compile per key), range splits that change no
 * bit, the IR dump, and errors that are messages. */
#include <math.h>
#include <unistd.h>

#include "jit_harness.h"

static const int64_t Ks[] = {1, 15, 17, 64, 100}, Ns[] = {1, 3, 33, 70}, Ms[] = {1, 5, 13};

/* ---- references: the interpreter's arithmetic ---- */

/* (float) of the double-accumulated dot, and the tolerance an f32 kernel gets:
 * 1e-6 * sqrt(K) * sum |x_k w_k| plus 1e-6 of the value. */
static float dot_ref(const float *x, const float *w, int64_t K, double *tol) {
  double abs, s = dot_double(x, w, K, &abs);
  *tol = 1e-6 * sqrt((double)K) * abs + 1e-6 * fabs(s);
  return (float)s;
}

static float silu_times_ref(float g, float u) {
  float sig = (float)(1.0 / (1.0 + exp(-(double)g)));
  float silu = (float)((double)g * sig);
  return (float)((double)silu * u);
}

static void near(float got, double want, double tol, const char *what, int64_t i) {
  if ((double)got == want || (isnan(want) && isnan(got)))
    return;
  if (!(fabs((double)got - want) <= tol))
    fail_msg("%s [%lld]: got %.9g, want %.9g (tolerance %.3g)", what, (long long)i, (double)got, want, tol);
}

/* ---- matmul ---- */

static void matmul_case(cg_jit *j, ir_op op, ir_dtype dt, int64_t M, int64_t K, int64_t N) {
  float *x = randoms(M * K, -1, 1), *r = randoms(M * N, -2, 2), *y = randoms(M * N, 0, 0);
  float *wf, *w2f = NULL;
  void *w = weights(dt, N * K, &wf), *w2 = op == IR_MATMUL_SWIGLU ? weights(dt, N * K, &w2f) : NULL;
  void *fn = kernel(j, (cg_kernel_key){.op = op, .wtype = dt, .k = K, .n = N});
  void *pw = pack(j, dt, N, K, w), *pw2 = w2 ? pack(j, dt, N, K, w2) : NULL;
  if (op == IR_MATMUL)
    ((cg_matmul_fn *)fn)(x, pw, y, 0, M, 0, N);
  else
    ((cg_matmul3_fn *)fn)(x, pw, op == IR_MATMUL_ADD ? (const void *)r : pw2, y, 0, M, 0, N);
  free(pw), free(pw2);
  char what[128];
  snprintf(what, sizeof what, "%s %s vw=%d M=%lld K=%lld N=%lld", op == IR_MATMUL ? "matmul" :
           op == IR_MATMUL_ADD ? "matmul_add" : "matmul_swiglu", ir_dtype_name(dt),
           cg_jit_vector_width(j), (long long)M, (long long)K, (long long)N);
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double tg, tu;
      float g = dot_ref(x + m * K, wf + n * K, K, &tg), want = g;
      double tol = tg;
      if (op == IR_MATMUL_ADD) {
        want = (float)((double)r[m * N + n] + g);
        tol += 1e-6 * fabs(want);
      } else if (op == IR_MATMUL_SWIGLU) {
        float u = dot_ref(x + m * K, w2f + n * K, K, &tu);
        want = silu_times_ref(g, u);
        tol = 1e-5 * fabs(want) + 1.2 * tg * fabs(u) + fabs(silu_times_ref(g, 1)) * tu + 1.2 * tg * tu;
      }
      near(y[m * N + n], want, tol + 1e-30, what, m * N + n);
    }
  if (w != wf)
    free(w);
  if (w2 != w2f)
    free(w2);
  free(x), free(r), free(y), free(wf), free(w2f);
}

static void matmul_all(void **state, ir_op op) {
  cg_jit **jits = *state;
  for (int j = 0; j < NJITS; j++)
    for (int d = 0; d < 2; d++)
      for (int a = 0; a < COUNT(Ms); a++)
        for (int b = 0; b < COUNT(Ks); b++)
          for (int c = 0; c < COUNT(Ns); c++)
            matmul_case(jits[j], op, d ? IR_BF16 : IR_F32, Ms[a], Ks[b], Ns[c]);
}

static void test_matmul(void **state) { matmul_all(state, IR_MATMUL); }
static void test_matmul_add(void **state) { matmul_all(state, IR_MATMUL_ADD); }
static void test_matmul_swiglu(void **state) { matmul_all(state, IR_MATMUL_SWIGLU); }

/* Splitting the rows and columns into ranges (as threads will), or computing
 * a row alone (as decode does), changes no bit: tiles of 12, 4 and 1 rows and
 * of 1 or more panels all run the same fma chain per output. */
static void test_matmul_ranges(void **state) {
  cg_jit **jits = *state;
  const int64_t M = 17, K = 100, N = 77; /* a 12-row tile, a 4-row tile, a row left over; a partial panel */
  float *x = randoms(M * K, -1, 1), *w = randoms(N * K, -1, 1), *wu = randoms(N * K, -1, 1);
  float *whole = randoms(M * N, 0, 0), *split = randoms(M * N, 0, 0);
  for (int j = 0; j < NJITS; j++) {
    float *pw = pack(jits[j], IR_F32, N, K, w), *pwu = pack(jits[j], IR_F32, N, K, wu);
    int64_t nr = cg_matmul_panel(jits[j]);
    cg_matmul3_fn *fn = kernel(jits[j], (cg_kernel_key){.op = IR_MATMUL_SWIGLU, .wtype = IR_F32, .k = K, .n = N});
    fn(x, pw, pwu, whole, 0, M, 0, N);
    const int64_t cuts[] = {0, 1, 2, 7, nr, nr + 5, 2 * nr, N};
    for (int64_t m = 0; m < M; m++)
      for (int c = 0; c + 1 < COUNT(cuts); c++)
        fn(x, pw, pwu, split, m, m + 1, cuts[c], cuts[c + 1]);
    assert_memory_equal(whole, split, (size_t)(M * N) * sizeof *whole);
    cg_matmul_fn *plain = kernel(jits[j], (cg_kernel_key){.op = IR_MATMUL, .wtype = IR_F32, .k = K, .n = N});
    plain(x, pw, whole, 0, M, 0, N);
    for (int64_t m = 0; m < M; m++)
      plain(x, pw, split, m, m + 1, 0, N);
    assert_memory_equal(whole, split, (size_t)(M * N) * sizeof *whole);
    plain(x, pw, split, 0, 3, 0, N); /* 3 rows: the 1-row tiles of the GEMM path */
    plain(x, pw, split, 3, M, 0, nr);
    plain(x, pw, split, 3, M, nr, N);
    assert_memory_equal(whole, split, (size_t)(M * N) * sizeof *whole);
    free(pw), free(pwu);
  }
  free(x), free(w), free(wu), free(whole), free(split);
}

/* ---- rmsnorm ---- */

static void rmsnorm_case(cg_jit *j, bool add, int64_t rows, int64_t D, float eps) {
  float *x = randoms(rows * D, -3, 3), *w = randoms(D, -2, 2), *r = randoms(rows * D, -1, 1);
  float *y = randoms(rows * D, 0, 0);
  void *fn = kernel(j, (cg_kernel_key){.op = add ? IR_RMSNORM_ADD : IR_RMSNORM, .k = D, .eps = eps});
  if (add)
    ((cg_rmsnorm_add_fn *)fn)(x, w, r, y, 0, rows);
  else
    ((cg_rmsnorm_fn *)fn)(x, w, y, 0, rows);
  char what[96];
  snprintf(what, sizeof what, "%s vw=%d rows=%lld D=%lld", add ? "rmsnorm_add" : "rmsnorm",
           cg_jit_vector_width(j), (long long)rows, (long long)D);
  for (int64_t i = 0; i < rows; i++) {
    const float *xr = x + i * D;
    double s = 0;
    for (int64_t k = 0; k < D; k++)
      s += (float)((double)xr[k] * xr[k]);
    float mean = (float)(s / (double)D);
    float inv = (float)(1.0 / sqrt((double)(float)((double)mean + eps)));
    for (int64_t k = 0; k < D; k++) {
      float v = (float)((double)w[k] * (float)((double)xr[k] * inv));
      float want = add ? (float)((double)r[i * D + k] + v) : v;
      double tol = 1e-5 * (fabs(v) + (add ? fabs(r[i * D + k]) : 0)) + 1e-30;
      near(y[i * D + k], want, tol, what, i * D + k);
    }
  }
  free(x), free(w), free(r), free(y);
}

static void test_rmsnorm(void **state) {
  cg_jit **jits = *state;
  for (int j = 0; j < NJITS; j++)
    for (int add = 0; add < 2; add++)
      for (int a = 0; a < COUNT(Ms); a++)
        for (int b = 0; b < COUNT(Ks); b++)
          rmsnorm_case(jits[j], add, Ms[a], Ks[b], b % 2 ? 1e-6f : 1e-5f);
}

/* ---- swiglu ---- */

static void swiglu_check(cg_jit *j, const float *g, const float *u, int64_t n, double rel) {
  float *y = randoms(n, 0, 0);
  cg_swiglu_fn *fn = kernel(j, (cg_kernel_key){.op = IR_SWIGLU});
  fn(g, u, y, 0, n);
  char what[64];
  snprintf(what, sizeof what, "swiglu vw=%d n=%lld", cg_jit_vector_width(j), (long long)n);
  for (int64_t i = 0; i < n; i++) {
    float want = silu_times_ref(g[i], u[i]);
    near(y[i], want, rel * fabs(want) + 1e-30, what, i);
  }
  free(y);
}

static void test_swiglu(void **state) {
  cg_jit **jits = *state;
  static const float extremes[] = {0, -0.0f, 1e-30f, -1e-30f, 88.5f, -88.5f, 89.5f, -89.5f, 100,
                                   -100, -104.5f, 1e30f, -1e30f, INFINITY, NAN, 1, -1};
  const int64_t nx = COUNT(extremes), sizes[] = {1, 15, 17, 64, 100};
  for (int j = 0; j < NJITS; j++) {
    for (int s = 0; s < COUNT(sizes); s++) {
      float *g = randoms(sizes[s], -10, 10), *u = randoms(sizes[s], -3, 3);
      swiglu_check(jits[j], g, u, sizes[s], 1e-5);
      free(g), free(u);
    }
    float *u = randoms(nx, -3, 3);
    swiglu_check(jits[j], extremes, u, nx, 1e-5);
    free(u);
    /* a dense sweep: exp's ~1e-7 error stays well inside 1e-6 after silu */
    const int64_t n = 16001;
    float *g = malloc(n * sizeof *g), *one = malloc(n * sizeof *one);
    assert_non_null(g), assert_non_null(one);
    for (int64_t i = 0; i < n; i++)
      g[i] = -80 + 160 * (float)i / (float)(n - 1), one[i] = 1;
    swiglu_check(jits[j], g, one, n, 1e-6);
    free(g), free(one);
  }
}

/* ---- the cache, the JIT, errors ---- */

static void test_cache(void **state) {
  cg_jit **jits = *state, *j = jits[0];
  cg_kernel_key key = {.op = IR_MATMUL, .wtype = IR_BF16, .k = 48, .n = 5};
  void *a = kernel(j, key);
  int compiles = cg_jit_compile_count(j);
  assert_ptr_equal(kernel(j, key), a);
  key.eps = 3; /* ignored by matmul */
  assert_ptr_equal(kernel(j, key), a);
  assert_int_equal(cg_jit_compile_count(j), compiles);
  key.n = 6;
  assert_ptr_not_equal(kernel(j, key), a);
  assert_int_equal(cg_jit_compile_count(j), compiles + 1);
  void *s = kernel(j, (cg_kernel_key){.op = IR_SWIGLU});
  assert_ptr_equal(kernel(j, (cg_kernel_key){.op = IR_SWIGLU, .k = 9, .wtype = IR_BF16}), s);
}

static void test_vector_widths(void **state) {
  cg_jit **jits = *state;
  cg_host h;
  cg_host_detect(&h);
  assert_int_equal(cg_jit_vector_width(jits[0]), h.avx512f ? 16 : 8);
  assert_int_equal(cg_jit_vector_width(jits[1]), 8);
}

static void test_errors(void **state) {
  cg_jit **jits = *state, *j = jits[0];
  int compiles = cg_jit_compile_count(j);
  expect_error(j, (cg_kernel_key){.op = IR_KV_APPEND}, "no kernel for op kv_append");
  expect_error(j, (cg_kernel_key){.op = IR_SOFTMAX}, "softmax kernel: 0 input shapes, expected 1");
  expect_error(j, (cg_kernel_key){.op = IR_MATMUL, .wtype = IR_I32, .k = 4, .n = 4}, "expected f32 or bf16 (or i8, q4: quantized)");
  expect_error(j, (cg_kernel_key){.op = IR_MATMUL_ADD, .wtype = IR_F32, .k = 0, .n = 4}, "must both be positive");
  expect_error(j, (cg_kernel_key){.op = IR_RMSNORM, .k = 8, .eps = NAN}, "eps");
  expect_error(j, (cg_kernel_key){.op = (ir_op)9999}, "no kernel for op (unknown)");
  assert_int_equal(cg_jit_compile_count(j), compiles);

  void *addr;
  oc_error e;
  assert_int_equal(cg_jit_lookup(j, "no_such_kernel", &addr, &e), -1);
  assert_non_null(strstr(e.msg, "no_such_kernel"));

  /* a CPU without AVX2 and FMA: refused, not given untested SSE code */
  cg_jit *sse = NULL;
  assert_int_equal(cg_jit_new_for_cpu("x86-64", "+sse2,+sse4.2", &sse, &e), -1);
  assert_null(sse);
  assert_non_null(strstr(e.msg, "cpu \"x86-64\" lacks AVX2: use --backend interp"));
  assert_int_equal(cg_jit_new_for_cpu("x86-64", "+avx2,-fma", &sse, &e), -1);
  assert_non_null(strstr(e.msg, "lacks FMA"));
  assert_int_equal(cg_jit_new_for_target("sse", &sse, &e), -1);
  assert_non_null(strstr(e.msg, "--target: expected native or avx2, found 'sse'"));

  /* an IR dump into a directory that cannot be made fails with its path */
  cg_jit *fresh;
  check(cg_jit_new(&fresh, &e), &e);
  check(cg_jit_set_ir_dump_dir(fresh, "/dev/null/olmoc-ir", &e), &e);
  expect_error(fresh, (cg_kernel_key){.op = IR_SWIGLU}, "/dev/null/olmoc-ir/cg_swiglu.ll");
  cg_jit_free(fresh);
}

/* The optimized IR lands in the dump directory, explicitly vectorized. */
static void test_ir_dump(void **state) {
  (void)state;
  char dir[] = "/tmp/olmoc-test-ir-XXXXXX", path[128], text[1 << 16];
  assert_non_null(mkdtemp(dir));
  cg_jit *j;
  oc_error e;
  check(cg_jit_new(&j, &e), &e);
  check(cg_jit_set_ir_dump_dir(j, dir, &e), &e);
  kernel(j, (cg_kernel_key){.op = IR_RMSNORM, .k = 40, .eps = 1e-6f});
  snprintf(path, sizeof path, "%s/cg_rmsnorm_d40_eps358637bd.ll", dir);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  char vec[32];
  snprintf(vec, sizeof vec, "<%d x float>", cg_jit_vector_width(j));
  assert_non_null(strstr(text, "define void @cg_rmsnorm_d40_eps358637bd("));
  assert_non_null(strstr(text, vec));
  cg_jit_free(j);
  assert_int_equal(unlink(path), 0);
  assert_int_equal(rmdir(dir), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vector_widths), cmocka_unit_test(test_matmul),
      cmocka_unit_test(test_matmul_add),    cmocka_unit_test(test_matmul_swiglu),
      cmocka_unit_test(test_matmul_ranges), cmocka_unit_test(test_rmsnorm),
      cmocka_unit_test(test_swiglu),        cmocka_unit_test(test_cache),
      cmocka_unit_test(test_errors),        cmocka_unit_test(test_ir_dump),
  };
  return cmocka_run_group_tests(tests, make_jits, free_jits);
}
