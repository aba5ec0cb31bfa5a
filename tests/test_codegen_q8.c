/* The q8 kernels (codegen/emit/emit_matmul_q8.c, codegen/panels/panel_q8.c,
 * panel_q4.c) against C references of the same quantized arithmetic: the
 * activation quantizer bit for bit, the q8 pack's round trip within half a
 * scale step, the q4 pack's codes in [-8, 7] with an error no larger than
 * plain round-to-nearest's, and every matmul (q8 and q4 weights)
 * output bit for bit (the int32 group dots are exact, the f32 chain over
 * groups is fixed), on odd sizes and tails, for the host (VNNI), a forced
 * AVX-512 without VNNI and a forced Haswell (AVX2); ranges split as threads
 * split them change no bit, nor does the instruction set. */
#include <math.h>

#include "jit_harness.h"

#define NQ8 3 /* jits: the host's, skylake-avx512 (no VNNI), haswell */
#define G32 CG_Q8_GROUP

static int make_q8_jits(void **state) {
  static cg_jit *jits[NQ8];
  oc_error e;
  check(cg_jit_new(&jits[0], &e), &e);
  check(cg_jit_new_for_cpu("skylake-avx512", "+avx512f,+avx512bw,+avx512vl,+avx512dq,+fma,+avx2,+f16c", &jits[1], &e), &e);
  check(cg_jit_new_for_cpu("haswell", "+avx2,+fma", &jits[2], &e), &e);
  *state = jits;
  return 0;
}

static int free_q8_jits(void **state) {
  cg_jit **jits = *state;
  for (int i = 0; i < NQ8; i++)
    cg_jit_free(jits[i]);
  return 0;
}

static int64_t groups(int64_t K) { return (K + G32 - 1) / G32; }

static ir_dtype wt = IR_I8; /* the weights the packs and matmul keys below take: IR_I8 or IR_Q4 */

/* The quantizer as codegen.h states it, one row. */
static void quantize_ref(const float *x, int64_t K, uint8_t *row) {
  int64_t G = groups(K);
  for (int64_t g = 0; g < G; g++) {
    float v[G32], a = 0;
    for (int i = 0; i < G32; i++) {
      v[i] = g * G32 + i < K ? x[g * G32 + i] : 0.0f;
      a = fmaxf(a, fabsf(v[i]));
    }
    float s = a / 127.0f, inv = a > 0 ? 127.0f / a : 0.0f;
    int32_t sum = 0;
    for (int i = 0; i < G32; i++) {
      int q = (int)rintf(v[i] * inv);
      row[g * G32 + i] = (uint8_t)(int8_t)q;
      sum += q;
    }
    int32_t corr = -128 * sum;
    memcpy(row + G * G32 + 4 * g, &s, 4);
    memcpy(row + G * (G32 + 4) + 4 * g, &corr, 4);
  }
}

static uint8_t *quantized(cg_jit *j, const float *x, int64_t M, int64_t K) {
  size_t rb = cg_q8_row_bytes(K);
  uint8_t *xq = malloc(M * rb), *want = malloc(rb);
  assert_non_null(xq), assert_non_null(want);
  cg_eltwise1_fn *fn = kernel(j, (cg_kernel_key){.op = CG_OP_Q8_QUANTIZE, .k = K});
  for (int64_t m = 0; m < M; m++) /* one row per call, as threads split rows */
    ((void (*)(const float *, void *, int64_t, int64_t))fn)(x, xq, m, m + 1);
  for (int64_t m = 0; m < M; m++) {
    quantize_ref(x + m * K, K, want);
    assert_memory_equal(xq + m * rb, want, rb);
  }
  free(want);
  return xq;
}

static void test_quantize(void **state) {
  cg_jit **jits = *state;
  const int64_t Ks[] = {1, 31, 32, 40, 256, 352, 1000};
  for (int j = 0; j < NQ8; j++)
    for (int c = 0; c < COUNT(Ks); c++) {
      float *x = randoms(3 * Ks[c], -4, 4);
      for (int64_t i = 0; i < Ks[c] && i < G32; i++) /* a group of zeros: scale 0 */
        x[Ks[c] + i] = 0;
      free(quantized(jits[j], x, 3, Ks[c]));
      free(x);
    }
}

/* Packs w [N,K] (f32) and reads it back as q [N,Kp] and scales [N,G]. */
static void packed(cg_jit *j, const float *w, int64_t N, int64_t K, void **pk, int8_t **q, float **s) {
  *pk = malloc(cg_packed_bytes(j, wt, N, K));
  *q = malloc((size_t)(N * groups(K) * G32));
  *s = malloc((size_t)(N * groups(K)) * sizeof **s);
  assert_non_null(*pk), assert_non_null(*q), assert_non_null(*s);
  cg_pack_quantized(j, wt, IR_F32, N, K, w, *pk);
  cg_unpack_quantized(j, wt, N, K, *pk, *q, *s);
}

static void test_pack_round_trip(void **state) {
  cg_jit **jits = *state;
  wt = IR_I8;
  const int64_t N = 37, K = 100;
  float *w = randoms(N * K, -0.05f, 0.05f);
  for (int64_t k = 0; k < K; k++) /* tiny values (subnormal f16 scales), zeros, large ones */
    w[k] *= 1e-4f, w[K + k] = 0, w[2 * K + k] *= 1e5f;
  for (int j = 0; j < NQ8; j++) {
    void *pk;
    int8_t *q;
    float *s;
    packed(jits[j], w, N, K, &pk, &q, &s);
    for (int64_t n = 0; n < N; n++)
      for (int64_t g = 0; g < groups(K); g++) {
        float a = 0, sc = s[n * groups(K) + g];
        for (int64_t k = g * G32; k < K && k < (g + 1) * G32; k++)
          a = fmaxf(a, fabsf(w[n * K + k]));
        /* the smallest f16 at or above a/127: within one f16 step of it */
        if (!(sc >= a / 127.0f && sc <= a / 127.0f * (1 + 0x1p-10f) + 0x1p-24f))
          fail_msg("scale of column %lld group %lld: %g for max %g", (long long)n, (long long)g, sc, a);
        for (int64_t i = 0; i < G32; i++) {
          int64_t k = g * G32 + i;
          int8_t v = q[(n * groups(K) + g) * G32 + i];
          assert_true(v != -128);
          if (k >= K)
            assert_int_equal(v, 0);
          else if (!(fabsf(w[n * K + k] - v * sc) <= 0.5f * sc * (1 + 1e-6f)))
            fail_msg("w[%lld,%lld] = %g comes back as %d * %g", (long long)n, (long long)k, w[n * K + k], v, sc);
        }
      }
    free(pk), free(q), free(s);
  }
  free(w);
}

/* y[m,n] by codegen.h's formula from the unpacked weights and quantized rows. */
static float matmul_ref(const uint8_t *xrow, const int8_t *q, const float *s, int64_t K, int64_t n) {
  int64_t G = groups(K);
  float acc = 0;
  for (int64_t g = 0; g < G; g++) {
    int32_t d = 0;
    for (int i = 0; i < G32; i++)
      d += (int8_t)xrow[g * G32 + i] * q[(n * G + g) * G32 + i];
    float sx;
    memcpy(&sx, xrow + G * G32 + 4 * g, 4);
    acc = fmaf((float)d, s[n * G + g] * sx, acc);
  }
  return acc;
}

typedef void q8_mm_fn(const void *xq, const void *w, float *y, int64_t m0, int64_t m1, int64_t n0, int64_t n1);
typedef void q8_mm3_fn(const void *xq, const void *w, const void *w2_or_r, float *y, int64_t m0, int64_t m1,
                       int64_t n0, int64_t n1);

/* Every op on one shape: the bits of the reference, also when the ranges are
 * cut at panels and rows; returns the plain matmul's y (for comparing jits). */
static float *matmul_case(cg_jit *j, int64_t M, int64_t K, int64_t N) {
  float *x = randoms(M * K, -2, 2), *w = randoms(N * K, -0.2f, 0.2f), *w2 = randoms(N * K, -0.2f, 0.2f);
  float *r = randoms(M * N, -1, 1), *y = randoms(M * N, 0, 0), *y2 = randoms(M * N, 0, 0);
  float *want = randoms(M * N, 0, 0), *u = randoms(M * N, 0, 0), *sw = randoms(M * N, 0, 0);
  uint8_t *xq = quantized(j, x, M, K);
  void *pk, *pk2;
  int8_t *q, *q2;
  float *s, *s2;
  packed(j, w, N, K, &pk, &q, &s);
  packed(j, w2, N, K, &pk2, &q2, &s2);
  size_t rb = cg_q8_row_bytes(K), bytes = (size_t)(M * N) * sizeof(float);
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++)
      want[m * N + n] = matmul_ref(xq + m * rb, q, s, K, n);

  q8_mm_fn *mm = kernel(j, (cg_kernel_key){.op = IR_MATMUL, .wtype = wt, .k = K, .n = N});
  mm(xq, pk, y, 0, M, 0, N);
  assert_memory_equal(y, want, bytes);
  int64_t panel = cg_matmul_panel(j);
  for (int64_t m = 0; m < M; m++) /* one row at a time (the decode path), a panel at a time */
    for (int64_t n0 = 0; n0 < N; n0 += panel)
      mm(xq, pk, y2, m, m + 1, n0, n0 + panel < N ? n0 + panel : N);
  assert_memory_equal(y2, want, bytes);
  if (M > 2) { /* rows split unevenly, columns in two panel-aligned ranges */
    int64_t cut = N > panel ? panel : N;
    mm(xq, pk, y2, 0, 2, 0, cut), mm(xq, pk, y2, 2, M, 0, cut);
    mm(xq, pk, y2, 0, M, cut, N);
    assert_memory_equal(y2, want, bytes);
  }

  q8_mm3_fn *add = kernel(j, (cg_kernel_key){.op = IR_MATMUL_ADD, .wtype = wt, .k = K, .n = N});
  add(xq, pk, r, y2, 0, M, 0, N);
  for (int64_t i = 0; i < M * N; i++)
    want[i] = r[i] + y[i];
  assert_memory_equal(y2, want, bytes);

  /* swiglu: the swiglu kernel's bits over the two plain products */
  q8_mm3_fn *sg = kernel(j, (cg_kernel_key){.op = IR_MATMUL_SWIGLU, .wtype = wt, .k = K, .n = N});
  cg_swiglu_fn *swiglu = kernel(j, (cg_kernel_key){.op = IR_SWIGLU});
  mm(xq, pk2, u, 0, M, 0, N);
  swiglu(y, u, want, 0, M * N);
  sg(xq, pk, pk2, sw, 0, M, 0, N);
  assert_memory_equal(sw, want, bytes);

  free(x), free(w), free(w2), free(r), free(y2), free(want), free(u), free(sw), free(xq);
  free(pk), free(q), free(s), free(pk2), free(q2), free(s2);
  return y;
}

static void matmuls(cg_jit **jits) {
  const int64_t Ms[] = {1, 3, 7, 13}, Ks[] = {32, 40, 352}, Ns[] = {1, 17, 100};
  for (int a = 0; a < COUNT(Ms); a++)
    for (int b = 0; b < COUNT(Ks); b++)
      for (int c = 0; c < COUNT(Ns); c++) {
        float *y[NQ8];
        uint64_t seed = rng;
        for (int j = 0; j < NQ8; j++) {
          rng = seed; /* the same inputs for every jit */
          y[j] = matmul_case(jits[j], Ms[a], Ks[b], Ns[c]);
        }
        for (int j = 1; j < NQ8; j++) /* VNNI, vpmaddubsw at 512 and 256 bits: the same bits */
          assert_memory_equal(y[j], y[0], (size_t)(Ms[a] * Ns[c]) * sizeof(float));
        for (int j = 0; j < NQ8; j++)
          free(y[j]);
      }
}

static void test_matmul_q8(void **state) {
  wt = IR_I8;
  matmuls(*state);
}

static void test_matmul_q4(void **state) {
  wt = IR_Q4;
  matmuls(*state);
  wt = IR_I8;
}

/* Squared error of group g of column n under scale sc and codes q. */
static double group_error(const float *w, int64_t K, int64_t n, int64_t g, const int8_t *q, float sc) {
  double err = 0;
  for (int64_t k = g * G32; k < K && k < (g + 1) * G32; k++) {
    double d = w[n * K + k] - (double)q[k - g * G32] * sc;
    err += d * d;
  }
  return err;
}

/* q4: codes in [-8, 7] (0 past K), and each group's error at most that of
 * plain round-to-nearest (scale = the largest value / -8, in f16). */
static void test_pack_q4(void **state) {
  cg_jit **jits = *state;
  const int64_t N = 37, K = 100;
  float *w = randoms(N * K, -0.05f, 0.05f);
  for (int64_t k = 0; k < K; k++)
    w[k] *= 1e-4f, w[K + k] = 0, w[2 * K + k] *= 1e3f;
  wt = IR_Q4;
  for (int j = 0; j < NQ8; j++) {
    void *pk;
    int8_t *q;
    float *s;
    packed(jits[j], w, N, K, &pk, &q, &s);
    for (int64_t n = 0; n < N; n++)
      for (int64_t g = 0; g < groups(K); g++) {
        const int8_t *code = q + (n * groups(K) + g) * G32;
        float a = 0;
        for (int64_t k = g * G32; k < K && k < (g + 1) * G32; k++)
          a = fabsf(w[n * K + k]) > fabsf(a) ? w[n * K + k] : a;
        for (int i = 0; i < G32; i++) {
          assert_true(code[i] >= -8 && code[i] <= 7);
          if (g * G32 + i >= K)
            assert_int_equal(code[i], 0);
        }
        int8_t rtn[G32] = {0};
        float rs = (float)(_Float16)(a / -8.0f);
        for (int64_t k = g * G32; k < K && k < (g + 1) * G32; k++) {
          float r = rs != 0 ? rintf(w[n * K + k] / rs) : 0;
          rtn[k - g * G32] = (int8_t)(r > 7 ? 7 : r < -8 ? -8 : r);
        }
        double got = group_error(w, K, n, g, code, s[n * groups(K) + g]), plain = group_error(w, K, n, g, rtn, rs);
        if (!(got <= plain * (1 + 1e-5) + 1e-30)) /* the search sums its errors in f32 */
          fail_msg("column %lld group %lld: squared error %g, round-to-nearest's %g", (long long)n, (long long)g,
                   got, plain);
      }
    free(pk), free(q), free(s);
  }
  wt = IR_I8;
  free(w);
}

static void test_keys(void **state) {
  cg_jit **jits = *state;
  expect_error(jits[0], (cg_kernel_key){.op = CG_OP_Q8_QUANTIZE, .k = 0}, "must be positive");
  expect_error(jits[0], (cg_kernel_key){.op = IR_GATHER, .wtype = IR_I8, .k = 8}, "expected f32 or bf16");
  void *a = kernel(jits[0], (cg_kernel_key){.op = IR_MATMUL, .wtype = IR_I8, .k = 64, .n = 8});
  void *b = kernel(jits[0], (cg_kernel_key){.op = IR_MATMUL, .wtype = IR_F32, .k = 64, .n = 8});
  assert_ptr_not_equal(a, b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quantize),
      cmocka_unit_test(test_pack_round_trip),
      cmocka_unit_test(test_matmul_q8),
      cmocka_unit_test(test_pack_q4),
      cmocka_unit_test(test_matmul_q4),
      cmocka_unit_test(test_keys),
  };
  return cmocka_run_group_tests(tests, make_q8_jits, free_q8_jits);
}
