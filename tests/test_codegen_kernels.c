/* The LLVM backend's rope, attention, gather and elementwise kernels against
 * C references that compute what the interpreter does (ir/interp_fused.c,
 * ir/interp_ops.c), on random inputs with odd sizes, for the host's vector
 * width and a forced AVX2 target; splitting a kernel's range into pieces (as
 * threads do) changes no bit; keys out of scope fail with a message. */
#include <math.h>

#include "jit_harness.h"

static float *copy(const float *a, int64_t n) {
  float *b = randoms(n, 0, 0);
  memcpy(b, a, (size_t)n * sizeof *a);
  return b;
}

static void near(float got, double want, double tol, const char *what, int64_t i) {
  if ((double)got == want || (isnan(want) && isnan(got)))
    return;
  if (!(fabs((double)got - want) <= tol))
    fail_msg("%s [%lld]: got %.9g, want %.9g (tolerance %.3g)", what, (long long)i, (double)got, want, tol);
}

/* ---- rope ---- */

static void rope_ref(const float *x, const float *cos, const float *sin, float *y, int64_t T, int64_t H,
                     int64_t D) {
  int64_t half = D / 2;
  for (int64_t t = 0; t < T; t++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t d = 0; d < D; d++) {
        int64_t at = (t * H + h) * D;
        float rot = d < half ? -x[at + d + half] : x[at + d - half];
        float a = (float)((double)x[at + d] * cos[t * D + d]);
        float b = (float)((double)rot * sin[t * D + d]);
        y[at + d] = (float)((double)a + b);
      }
}

static void rope_case(cg_jit *j, int64_t T, int64_t H, int64_t D) {
  int64_t n = T * H * D;
  float *x = randoms(n, -2, 2), *cos = randoms(T * D, -1, 1), *sin = randoms(T * D, -1, 1);
  float *want = randoms(n, 0, 0), *y = randoms(n, 0, 0), *inplace = copy(x, n);
  rope_ref(x, cos, sin, want, T, H, D);
  cg_rope_fn *fn = kernel(j, (cg_kernel_key){.op = IR_ROPE, .k = D, .n = H});
  fn(x, cos, sin, y, 0, T * H);
  assert_memory_equal(y, want, (size_t)n * sizeof *y); /* the same roundings: the same bits */
  for (int64_t r = 0; r < T * H; r += 2) /* in place, in pieces of two rows */
    fn(inplace, cos, sin, inplace, r, r + 2 < T * H ? r + 2 : T * H);
  assert_memory_equal(inplace, want, (size_t)n * sizeof *y);
  free(x), free(cos), free(sin), free(want), free(y), free(inplace);
}

static void test_rope(void **state) {
  cg_jit **jits = *state;
  const int64_t Ts[] = {1, 3}, Hs[] = {1, 4}, Ds[] = {2, 16, 24, 34, 128};
  for (int j = 0; j < NJITS; j++)
    for (int a = 0; a < COUNT(Ts); a++)
      for (int b = 0; b < COUNT(Hs); b++)
        for (int c = 0; c < COUNT(Ds); c++)
          rope_case(jits[j], Ts[a], Hs[b], Ds[c]);
  expect_error(jits[0], (cg_kernel_key){.op = IR_ROPE, .k = 15, .n = 2}, "must be even");
  expect_error(jits[0], (cg_kernel_key){.op = IR_ROPE, .k = 16, .n = 0}, "must both be positive");
}

/* ---- gather ---- */

static void gather_case(cg_jit *j, ir_dtype dt, int64_t V, int64_t D, int64_t T) {
  float *tf = randoms(V * D, -3, 3), *y = randoms(T * D, 0, 0), *split = randoms(T * D, 0, 0);
  uint16_t *tb = malloc((size_t)(V * D) * sizeof *tb);
  int32_t *ids = malloc((size_t)T * sizeof *ids);
  assert_non_null(tb), assert_non_null(ids);
  for (int64_t i = 0; i < V * D; i++) {
    uint32_t bits;
    memcpy(&bits, &tf[i], sizeof bits);
    tb[i] = (uint16_t)(bits >> 16);
    bits = (uint32_t)tb[i] << 16;
    if (dt == IR_BF16)
      memcpy(&tf[i], &bits, sizeof bits);
  }
  for (int64_t t = 0; t < T; t++)
    ids[t] = (int32_t)(t == 0 ? V - 1 : (int64_t)uniform(0, (float)V) % V);
  cg_gather_fn *fn = kernel(j, (cg_kernel_key){.op = IR_GATHER, .wtype = dt, .k = D});
  const void *table = dt == IR_BF16 ? (const void *)tb : tf;
  fn(table, ids, y, 0, T);
  for (int64_t t = 0; t < T; t++)
    assert_memory_equal(y + t * D, tf + ids[t] * D, (size_t)D * sizeof *y);
  for (int64_t t = 0; t < T; t++)
    fn(table, ids, split, t, t + 1);
  assert_memory_equal(split, y, (size_t)(T * D) * sizeof *y);
  free(tf), free(tb), free(ids), free(y), free(split);
}

static void test_gather(void **state) {
  cg_jit **jits = *state;
  const int64_t Ds[] = {1, 16, 24, 37, 128}, Ts[] = {1, 3, 7};
  for (int j = 0; j < NJITS; j++)
    for (int d = 0; d < 2; d++)
      for (int a = 0; a < COUNT(Ds); a++)
        for (int b = 0; b < COUNT(Ts); b++)
          gather_case(jits[j], d ? IR_BF16 : IR_F32, 11, Ds[a], Ts[b]);
  expect_error(jits[0], (cg_kernel_key){.op = IR_GATHER, .wtype = IR_I32, .k = 4}, "expected f32 or bf16");
  expect_error(jits[0], (cg_kernel_key){.op = IR_GATHER, .wtype = IR_F32}, "must be positive");
}

/* ---- attention ---- */

/* The interpreter's attention (two passes, double sums) for one (t,h) pair,
 * and per output a tolerance: the scores carry an f32 dot's error (bounded as
 * for matmul, 1e-6 * sqrt(D) * sum |q k| * scale), which becomes a relative
 * error of the weights p_j; so tol = (2 * max score error + 1e-6) * sum_j p_j |v_j|. */
static void attention_ref(const float *q, const float *k, const float *v, float scale, int64_t H,
                          int64_t KV, int64_t D, int64_t P, int64_t t, int64_t h, float *y, double *tol) {
  int64_t g = h / (H / KV), S = P + t + 1;
  float *p = randoms(S, 0, 0);
  double err = 0;
  float max = -INFINITY;
  for (int64_t j = 0; j < S; j++) {
    const float *qr = q + (t * H + h) * D, *kr = k + (j * KV + g) * D;
    double s = 0, abs = 0;
    for (int64_t d = 0; d < D; d++)
      s += (double)qr[d] * kr[d], abs += fabs((double)qr[d] * kr[d]);
    p[j] = (float)((double)(float)s * scale);
    err = fmax(err, 1e-6 * sqrt((double)D) * abs * fabs(scale));
    max = fmaxf(max, p[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j < S; j++)
    sum += exp((double)p[j] - max);
  for (int64_t j = 0; j < S; j++)
    p[j] = (float)(exp((double)p[j] - max) / sum);
  for (int64_t d = 0; d < D; d++) {
    double s = 0, abs = 0;
    for (int64_t j = 0; j < S; j++)
      s += (double)p[j] * v[(j * KV + g) * D + d], abs += p[j] * fabs(v[(j * KV + g) * D + d]);
    y[d] = (float)s;
    tol[d] = (2 * err + 1e-6) * abs + 1e-30;
  }
  free(p);
}

/* The caches of S written positions, k and v as [S][KV][D], in a kernel's
 * layout and dtype for a context of ctx positions (bf16: x's values are
 * bf16 already, so the high halves are exact); the positions past S hold
 * NaN, so a kernel that reads them fails. */
static void *cache_of(const float *x, int64_t S, int64_t ctx, int64_t KV, int64_t D, bool head_major, bool bf16) {
  int64_t n = ctx * KV * D;
  float *c = randoms(n, NAN, NAN);
  uint16_t *h = (uint16_t *)c; /* bf16: the first half of the same buffer */
  for (int64_t i = 0; bf16 && i < n; i++)
    h[i] = 0x7fc0; /* NaN */
  for (int64_t j = 0; j < S; j++)
    for (int64_t g = 0; g < KV; g++)
      for (int64_t d = 0, at = (head_major ? g * ctx + j : j * KV + g) * D; d < D; d++) {
        float v = x[(j * KV + g) * D + d];
        uint32_t bits;
        memcpy(&bits, &v, sizeof bits);
        if (bf16)
          h[at + d] = (uint16_t)(bits >> 16);
        else
          c[at + d] = v;
      }
  return c;
}

/* x's values truncated to bf16 in place. */
static void to_bf16_values(float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t bits;
    memcpy(&bits, &x[i], sizeof bits);
    x[i] = bf16_to_f32((uint16_t)(bits >> 16));
  }
}

static void attention_case(cg_jit *j, int64_t T, int64_t P, int64_t H, int64_t KV, int64_t D, float scale,
                           float range) {
  int64_t S = P + T, ctx = S + 5, n = T * H * D;
  float *q = randoms(n, -range, range), *k = randoms(S * KV * D, -range, range), *v = randoms(S * KV * D, -2, 2);
  to_bf16_values(k, S * KV * D); /* one reference serves f32 and bf16 caches */
  to_bf16_values(v, S * KV * D);
  float *y = randoms(n, 0, 0), *split = randoms(n, 0, 0), *want = randoms(n, 0, 0);
  double *tol = malloc((size_t)n * sizeof *tol);
  assert_non_null(tol);
  for (int64_t t = 0; t < T; t++)
    for (int64_t h = 0; h < H; h++)
      attention_ref(q, k, v, scale, H, KV, D, P, t, h, want + (t * H + h) * D, tol + (t * H + h) * D);
  for (int layout = 0; layout < 4; layout++) { /* head-major or not, bf16 or not */
    bool head_major = layout & 1, bf16 = layout & 2;
    float *kc = cache_of(k, S, ctx, KV, D, head_major, bf16), *vc = cache_of(v, S, ctx, KV, D, head_major, bf16);
    cg_attention_fn *fn = kernel(j, (cg_kernel_key){.op = IR_ATTENTION, .k = D, .n = H, .kv = KV, .scale = scale,
                                                    .kv_head_major = head_major, .kv_bf16 = bf16});
    fn(q, kc, vc, y, T, P, ctx, 0, T * H);
    char what[160];
    snprintf(what, sizeof what, "attention vw=%d T=%lld P=%lld H=%lld KV=%lld D=%lld scale=%g %s %s",
             cg_jit_vector_width(j), (long long)T, (long long)P, (long long)H, (long long)KV, (long long)D,
             (double)scale, head_major ? "head-major" : "position-major", bf16 ? "bf16" : "f32");
    for (int64_t i = 0; i < n; i++)
      near(y[i], want[i], tol[i], what, i);
    for (int64_t p = T * H; p > 0; p -= 3) /* pieces of three pairs, last first: tiles and single pairs */
      fn(q, kc, vc, split, T, P, ctx, p > 3 ? p - 3 : 0, p);
    assert_memory_equal(split, y, (size_t)n * sizeof *y);
    free(kc), free(vc);
  }
  free(q), free(k), free(v), free(y), free(split), free(want), free(tol);
}

static void test_attention(void **state) {
  cg_jit **jits = *state;
  const int64_t Ts[] = {1, 3, 9}, Ps[] = {0, 5, 17}, KVs[] = {1, 2, 4}, Ds[] = {16, 20, 24, 128};
  for (int j = 0; j < NJITS; j++)
    for (int a = 0; a < COUNT(Ts); a++)
      for (int b = 0; b < COUNT(Ps); b++)
        for (int c = 0; c < COUNT(KVs); c++)
          for (int d = 0; d < COUNT(Ds); d++) {
            attention_case(jits[j], Ts[a], Ps[b], 4, KVs[c], Ds[d], (float)(1 / sqrt((double)Ds[d])), 1);
            attention_case(jits[j], Ts[a], Ps[b], 4, KVs[c], Ds[d], 1.0f, 2); /* peaked: the max moves */
          }
  attention_case(jits[0], 2, 300, 2, 1, 128, 0.0883883f, 1); /* a long cache */
  attention_case(jits[0], 37, 0, 3, 3, 64, 0.125f, 1);       /* prefill, tiles of 4 and their tails */
  expect_error(jits[0], (cg_kernel_key){.op = IR_ATTENTION, .k = 16, .n = 4, .kv = 3, .scale = 1}, "must divide");
  expect_error(jits[0], (cg_kernel_key){.op = IR_ATTENTION, .k = 16, .n = 4, .kv = 0, .scale = 1}, "must divide");
  expect_error(jits[0], (cg_kernel_key){.op = IR_ATTENTION, .k = 16, .n = 4, .kv = 4, .scale = NAN}, "scale");
  expect_error(jits[0], (cg_kernel_key){.op = IR_ATTENTION, .k = 640, .n = 4, .kv = 4, .scale = 1}, "512");
}

/* ---- elementwise ---- */

static ir_shape shape(int rank, const int64_t *dims) { /* -1 stands for T */
  ir_dim d[IR_MAX_DIMS];
  for (int i = 0; i < rank; i++)
    d[i] = dims[i] < 0 ? IR_DIM_T : ir_const_dim(dims[i]);
  return ir_shape_of(rank, d);
}
#define SHAPE(...) shape(COUNT(((int64_t[]){__VA_ARGS__})), (int64_t[]){__VA_ARGS__})
#define SCALAR_SHAPE shape(0, NULL)

/* The interpreter's elementwise: each input read through broadcast strides,
 * each op rounded to f32. */
static void eltwise_ref(const cg_kernel_key *k, int64_t T, float *const *in, float *y) {
  ir_expr_tok tok[IR_EXPR_MAX];
  int count = ir_expr_parse(k->expr, k->n_in, tok, NULL);
  const ir_shape *o = &k->out;
  int64_t st[IR_MAX_INPUTS][IR_MAX_DIMS], od[IR_MAX_DIMS], total = 1;
  for (int d = 0; d < o->rank; d++)
    total *= od[d] = ir_dim_eval(o->dim[d], T, 0);
  for (int i = 0; i < k->n_in; i++) {
    const ir_shape *t = &k->in[i];
    int64_t s = 1;
    for (int d = o->rank - 1; d >= 0; d--) {
      int j = d - (o->rank - t->rank);
      int64_t dim = j < 0 ? 1 : ir_dim_eval(t->dim[j], T, 0);
      st[i][d] = dim == 1 ? 0 : s;
      s *= dim;
    }
  }
  for (int64_t at = 0; at < total; at++) {
    int64_t idx[IR_MAX_INPUTS] = {0}, rem = at;
    for (int d = o->rank - 1; d >= 0; d--) {
      int64_t c = rem % od[d];
      rem /= od[d];
      for (int i = 0; i < k->n_in; i++)
        idx[i] += c * st[i][d];
    }
    float stack[IR_EXPR_MAX];
    int sp = 0;
    for (int t = 0; t < count; t++) {
      if (tok[t].op == IR_INPUT) {
        stack[sp++] = in[tok[t].input][idx[tok[t].input]];
        continue;
      }
      int arity = ir_op_table[tok[t].op].arity;
      sp -= arity;
      stack[sp] = (float)ir_op_apply(tok[t].op, stack[sp], arity > 1 ? stack[sp + 1] : 0);
      sp++;
    }
    y[at] = stack[0];
  }
}

static void call_eltwise(void *fn, int n, float *const *in, float *y, int64_t r0, int64_t r1) {
  switch (n) {
  case 1: ((cg_eltwise1_fn *)fn)(in[0], y, r0, r1); break;
  case 2: ((cg_eltwise2_fn *)fn)(in[0], in[1], y, r0, r1); break;
  case 3: ((cg_eltwise3_fn *)fn)(in[0], in[1], in[2], y, r0, r1); break;
  default: ((cg_eltwise4_fn *)fn)(in[0], in[1], in[2], in[3], y, r0, r1); break;
  }
}

/* Inputs in [lo, hi]; rel = 0 asks for the interpreter's bits. */
static void eltwise_case(cg_jit *j, cg_kernel_key key, int64_t T, float lo, float hi, double rel) {
  key.op = IR_ELTWISE;
  int64_t total = ir_shape_numel(&key.out, T, 0), C = key.out.rank ? key.out.dim[key.out.rank - 1].c : 1;
  float *in[IR_MAX_INPUTS];
  for (int i = 0; i < key.n_in; i++)
    in[i] = randoms(ir_shape_numel(&key.in[i], T, 0), lo, hi);
  float *want = randoms(total, 0, 0), *y = randoms(total, 0, 0), *split = randoms(total, 0, 0);
  eltwise_ref(&key, T, in, want);
  void *fn = kernel(j, key);
  call_eltwise(fn, key.n_in, in, y, 0, total / C);
  char what[160];
  snprintf(what, sizeof what, "elementwise \"%s\" vw=%d T=%lld", key.expr, cg_jit_vector_width(j), (long long)T);
  for (int64_t i = 0; i < total; i++)
    near(y[i], want[i], rel * fabs(want[i]), what, i);
  for (int64_t r = 0; r < total / C; r++) /* row by row */
    call_eltwise(fn, key.n_in, in, split, r, r + 1);
  assert_memory_equal(split, y, (size_t)total * sizeof *y);
  if (ir_shape_eq(&key.in[0], &key.out)) { /* in place over input 0 */
    call_eltwise(fn, key.n_in, in, in[0], 0, total / C);
    assert_memory_equal(in[0], y, (size_t)total * sizeof *y);
  }
  for (int i = 0; i < key.n_in; i++)
    free(in[i]);
  free(want), free(y), free(split);
}

static void test_elementwise(void **state) {
  cg_jit **jits = *state;
  const int64_t Ds[] = {1, 16, 24, 37, 128}, Ts[] = {1, 3};
  for (int j = 0; j < NJITS; j++)
    for (int a = 0; a < COUNT(Ds); a++)
      for (int b = 0; b < COUNT(Ts); b++) {
        int64_t D = Ds[a], T = Ts[b];
        /* full, trailing [D], trailing [1,4,D] with period 4, per row [T,4,1]: exact */
        eltwise_case(jits[j], (cg_kernel_key){.expr = "%0 %1 mul %2 sub %3 div neg %0 add", .n_in = 4,
                     .in = {SHAPE(-1, 4, D), SHAPE(D), SHAPE(1, 4, D), SHAPE(-1, 4, 1)}, .out = SHAPE(-1, 4, D)},
                     T, 0.5f, 2, 0);
        /* sqrt, rsqrt, a scalar, per row with period [4,1] */
        eltwise_case(jits[j], (cg_kernel_key){.expr = "%0 sqrt %1 add rsqrt %2 mul", .n_in = 3,
                     .in = {SHAPE(-1, 4, D), SCALAR_SHAPE, SHAPE(4, 1)}, .out = SHAPE(-1, 4, D)},
                     T, 0.1f, 3, 0);
        /* the rmsnorm chain as -O1 leaves it: x * rsqrt(mean + eps) with mean [T,1], eps [1] */
        eltwise_case(jits[j], (cg_kernel_key){.expr = "%0 %1 %2 add rsqrt mul", .n_in = 3,
                     .in = {SHAPE(-1, D), SHAPE(-1, 1), SHAPE(1)}, .out = SHAPE(-1, D)}, T, 0.1f, 3, 0);
        /* exp and sigmoid, in products only (no cancellation): the polynomial exp's error */
        eltwise_case(jits[j], (cg_kernel_key){.expr = "%0 %0 sigmoid mul %1 neg exp mul", .n_in = 2,
                     .in = {SHAPE(-1, D), SHAPE(-1, D)}, .out = SHAPE(-1, D)}, T, -8, 8, 2e-6);
      }
  eltwise_case(jits[0], (cg_kernel_key){.expr = "%0 exp", .n_in = 1, .in = {SCALAR_SHAPE}, .out = SCALAR_SHAPE},
               1, -3, 3, 1e-6);

  cg_jit *j = jits[0];
  int compiles = cg_jit_compile_count(j);
  cg_kernel_key key = {.op = IR_ELTWISE, .expr = "%0 %1 mul", .n_in = 2, .in = {SHAPE(-1, 4, 16), SHAPE(-1, 3, 16)},
                       .out = SHAPE(-1, 4, 16)};
  expect_error(j, key, "input %1 f32[T,3,16] does not broadcast to the output f32[T,4,16]");
  key.in[1] = SHAPE(-1, 1, 16); /* any numpy broadcast is read (test_codegen_shaped checks the values) */
  assert_false(cg_kernel_shaped(&key));
  key.in[0] = key.in[1] = key.out = SHAPE(4, -1); /* a symbolic dim past the first: the shaped form */
  assert_true(cg_kernel_shaped(&key));
  key.expr = "%0 %1 pow", key.out = key.in[0] = key.in[1] = SHAPE(4, 4);
  expect_error(j, key, "'pow' is not a primitive elementwise op");
  key.expr = NULL;
  expect_error(j, key, "no expr");
  assert_int_equal(cg_jit_compile_count(j), compiles);
  /* the cache keeps its own copy of the expr: a key equal in text finds the kernel */
  char text[32];
  snprintf(text, sizeof text, "%%0 %%0 mul");
  cg_kernel_key sq = {.op = IR_ELTWISE, .expr = text, .n_in = 1, .in = {SHAPE(-1, 8)}, .out = SHAPE(-1, 8)};
  void *fn = kernel(j, sq);
  strcpy(text, "%0 neg");
  sq.expr = "%0 %0 mul";
  assert_ptr_equal(kernel(j, sq), fn);
  assert_int_equal(cg_jit_compile_count(j), compiles + 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rope),
      cmocka_unit_test(test_gather),
      cmocka_unit_test(test_attention),
      cmocka_unit_test(test_elementwise),
  };
  return cmocka_run_group_tests(tests, make_jits, free_jits);
}
