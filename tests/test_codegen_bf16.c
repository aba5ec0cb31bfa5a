/* --compute bf16 (cg_jit_set_bf16_compute): the k-pair panels and the matmul
 * kernels on them, against the interpreter's double-accumulated dot on odd
 * sizes and tails, within the documented bound (2^-8 + K 2^-23) sum |x w|;
 * one row (decode) bit for bit the plain bf16 kernel's; activations rounded
 * to nearest even; ranges split as threads split them change no bit; and the
 * refusals (a target without AVX512_BF16, a session already compiling). */
#include <math.h>

#include "jit_harness.h"

static const int64_t Ks[] = {1, 16, 17, 100}, Ns[] = {3, 33, 70}, Ms[] = {1, 2, 5, 13, 17};

typedef struct jits {
  cg_jit *dot, *plain; /* the host's with --compute bf16, and without */
} jits;

static int make(void **state) {
  static jits j;
  oc_error e;
  cg_host h;
  cg_host_detect(&h);
  if (!h.avx512bf16) {
    *state = NULL;
    return 0;
  }
  check(cg_jit_new(&j.dot, &e) || cg_jit_set_bf16_compute(j.dot, true, &e), &e);
  check(cg_jit_new(&j.plain, &e), &e);
  *state = &j;
  return 0;
}

static int release(void **state) {
  jits *j = *state;
  if (j)
    cg_jit_free(j->dot), cg_jit_free(j->plain);
  return 0;
}

static jits *host(void **state) {
  if (!*state) {
    print_message("skipped: this CPU has no AVX512_BF16\n");
    skip();
  }
  return *state;
}

/* The interpreter's dot (double, rounded once) and the documented bound. */
static float dot_ref(const float *x, const float *w, int64_t K, double *bound) {
  double abs, s = dot_double(x, w, K, &abs);
  *bound = (0x1p-8 + (double)K * 0x1p-23) * abs + 0x1p-24 * fabs(s);
  return (float)s;
}

static float silu_times_ref(float g, float u) {
  float sig = (float)(1.0 / (1.0 + exp(-(double)g)));
  return (float)((double)(float)((double)g * sig) * u);
}

/* y = op(x, w[, w2 | r]) with kernel fn on packed weights. */
static void call(void *fn, ir_op op, const float *x, const void *pw, const void *pw2, const float *r, float *y,
                 int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (op == IR_MATMUL)
    ((cg_matmul_fn *)fn)(x, pw, y, m0, m1, n0, n1);
  else
    ((cg_matmul3_fn *)fn)(x, pw, op == IR_MATMUL_ADD ? (const void *)r : pw2, y, m0, m1, n0, n1);
}

static void matmul_case(const jits *j, ir_op op, int64_t M, int64_t K, int64_t N) {
  float *x = randoms(M * K, -1, 1), *r = randoms(M * N, -2, 2), *y = randoms(M * N, 0, 0), *wf, *w2f = NULL;
  uint16_t *w = weights(IR_BF16, N * K, &wf), *w2 = op == IR_MATMUL_SWIGLU ? weights(IR_BF16, N * K, &w2f) : NULL;
  cg_kernel_key key = {.op = op, .wtype = IR_BF16, .k = K, .n = N};
  void *pw = pack(j->dot, IR_BF16, N, K, w), *pw2 = w2 ? pack(j->dot, IR_BF16, N, K, w2) : NULL;
  call(kernel(j->dot, key), op, x, pw, pw2, r, y, 0, M, 0, N);
  char what[128];
  snprintf(what, sizeof what, "%s bf16 compute M=%lld K=%lld N=%lld", ir_op_table[op].name, (long long)M,
           (long long)K, (long long)N);
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double tg, tu = 0, tol;
      float g = dot_ref(x + m * K, wf + n * K, K, &tg), want = g;
      tol = tg;
      if (op == IR_MATMUL_ADD) {
        want = (float)((double)r[m * N + n] + g);
        tol += 0x1p-23 * fabs(want);
      } else if (op == IR_MATMUL_SWIGLU) {
        float u = dot_ref(x + m * K, w2f + n * K, K, &tu);
        want = silu_times_ref(g, u);
        tol = 1e-5 * fabs(want) + 1.2 * tg * fabs(u) + fabs(silu_times_ref(g, 1)) * tu + 1.2 * tg * tu;
      }
      float got = y[m * N + n];
      if (!(fabs((double)got - want) <= tol + 1e-30))
        fail_msg("%s [%lld,%lld]: got %.9g, want %.9g (bound %.3g)", what, (long long)m, (long long)n,
                 (double)got, (double)want, tol);
    }
  if (M == 1) { /* decode: the plain bf16 kernel's fma chain, bit for bit */
    float *plain = randoms(N, 0, 0);
    void *qw = pack(j->plain, IR_BF16, N, K, w), *qw2 = w2 ? pack(j->plain, IR_BF16, N, K, w2) : NULL;
    call(kernel(j->plain, key), op, x, qw, qw2, r, plain, 0, 1, 0, N);
    assert_memory_equal(plain, y, (size_t)N * sizeof *y);
    free(plain), free(qw), free(qw2);
  }
  free(pw), free(pw2), free(w), free(w2), free(x), free(r), free(y), free(wf), free(w2f);
}

static void matmul_all(void **state, ir_op op) {
  jits *j = host(state);
  for (int a = 0; a < COUNT(Ms); a++)
    for (int b = 0; b < COUNT(Ks); b++)
      for (int c = 0; c < COUNT(Ns); c++)
        matmul_case(j, op, Ms[a], Ks[b], Ns[c]);
}

static void test_matmul(void **state) { matmul_all(state, IR_MATMUL); }
static void test_matmul_add(void **state) { matmul_all(state, IR_MATMUL_ADD); }
static void test_matmul_swiglu(void **state) { matmul_all(state, IR_MATMUL_SWIGLU); }

/* Activations round to nearest, ties to even, before the products: with
 * weights 1 each output is the exact sum of the rounded x (K = 3: a pair and
 * a tail). bf16 keeps 7 fraction bits, so near 1 a step is 2^-7. */
static void test_rounding(void **state) {
  jits *j = host(state);
  const float x[2][3] = {{1 + 0.75f * 0x1p-7f, 1 + 0x1p-8f, 1 + 3 * 0x1p-8f},
                         {-(1 + 0.25f * 0x1p-7f), 1 - 0x1p-9f, 2 + 0x1p-7f}};
  const float want[2] = {(1 + 0x1p-7f) + 1 + (1 + 0x1p-6f), -1.0f + 1 + 2};
  uint16_t w[3] = {0x3f80, 0x3f80, 0x3f80};
  void *pw = pack(j->dot, IR_BF16, 1, 3, w);
  float y[2];
  ((cg_matmul_fn *)kernel(j->dot, (cg_kernel_key){.op = IR_MATMUL, .wtype = IR_BF16, .k = 3, .n = 1}))(
      &x[0][0], pw, y, 0, 2, 0, 1);
  assert_true(y[0] == want[0] && y[1] == want[1]);
  free(pw);
}

/* Threads split the columns on panel boundaries (and any row range of two or
 * more rows stays on vdpbf16ps): the same bits as one call. */
static void test_ranges(void **state) {
  jits *j = host(state);
  const int64_t M = 17, K = 101, N = 77;
  float *x = randoms(M * K, -1, 1), *wf, *wuf, *whole = randoms(M * N, 0, 0), *split = randoms(M * N, 0, 0);
  uint16_t *w = weights(IR_BF16, N * K, &wf), *wu = weights(IR_BF16, N * K, &wuf);
  void *pw = pack(j->dot, IR_BF16, N, K, w), *pwu = pack(j->dot, IR_BF16, N, K, wu);
  int64_t nr = cg_matmul_panel(j->dot);
  cg_matmul3_fn *fn = kernel(j->dot, (cg_kernel_key){.op = IR_MATMUL_SWIGLU, .wtype = IR_BF16, .k = K, .n = N});
  fn(x, pw, pwu, whole, 0, M, 0, N);
  const int64_t cuts[] = {0, nr, 2 * nr, N}, rows[] = {0, 2, 5, 17};
  for (int r = 0; r + 1 < COUNT(rows); r++)
    for (int c = 0; c + 1 < COUNT(cuts); c++)
      fn(x, pw, pwu, split, rows[r], rows[r + 1], cuts[c], cuts[c + 1]);
  assert_memory_equal(whole, split, (size_t)(M * N) * sizeof *whole);
  free(pw), free(pwu), free(w), free(wu), free(x), free(wf), free(wuf), free(whole), free(split);
}

/* A k-pair panel holds every weight once, zero past K and past N. */
static void test_pack(void **state) {
  jits *j = host(state);
  const int64_t N = 35, K = 7;
  int64_t nr = cg_matmul_panel(j->dot), panels = (N + nr - 1) / nr, kp = (K + 1) / 2;
  float *wf;
  uint16_t *w = weights(IR_BF16, N * K, &wf), *p = pack(j->dot, IR_BF16, N, K, w);
  assert_int_equal(cg_packed_bytes(j->dot, IR_BF16, N, K), (size_t)(panels * nr * 2 * kp) * 2);
  for (int64_t q = 0; q < panels; q++)
    for (int64_t i = 0; i < kp; i++)
      for (int64_t c = 0; c < nr; c++)
        for (int odd = 0; odd < 2; odd++) {
          int64_t n = q * nr + c, k = 2 * i + odd;
          uint16_t want = n < N && k < K ? w[n * K + k] : 0;
          assert_int_equal(p[((q * kp + i) * nr + c) * 2 + odd], want);
        }
  free(w), free(p), free(wf);
}

static void test_refusals(void **state) {
  (void)state;
  cg_jit *j;
  oc_error e = {{0}};
  check(cg_jit_new_for_cpu("haswell", "+avx2,+fma", &j, &e), &e);
  assert_int_equal(cg_jit_set_bf16_compute(j, true, &e), -1);
  assert_non_null(strstr(e.msg, "AVX512_BF16"));
  assert_false(cg_jit_bf16_compute(j));
  cg_jit_free(j);
  jits *h = *state;
  if (!h)
    return;
  check(cg_jit_new(&j, &e), &e);
  kernel(j, (cg_kernel_key){.op = IR_MATMUL, .wtype = IR_BF16, .k = 4, .n = 4});
  assert_int_equal(cg_jit_set_bf16_compute(j, true, &e), -1);
  assert_non_null(strstr(e.msg, "before the first kernel"));
  cg_jit_free(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_matmul),   cmocka_unit_test(test_matmul_add), cmocka_unit_test(test_matmul_swiglu),
      cmocka_unit_test(test_rounding), cmocka_unit_test(test_ranges),     cmocka_unit_test(test_pack),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, make, release);
}
