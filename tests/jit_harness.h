/* Shared by the kernel tests: two JITs (the host's, and a forced Haswell for
 * the AVX2 path) made once per test program, and getting a kernel or failing
 * the test with the backend's message. Included once per test program. */
#ifndef OLMOC_TESTS_JIT_HARNESS_H
#define OLMOC_TESTS_JIT_HARNESS_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "olmoc/codegen.h"

#define NJITS 2 /* the host's, and haswell (AVX2) */
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static inline void check(int rc, const oc_error *e) {
  if (rc)
    fail_msg("%s", e->msg);
}

static inline int make_jits(void **state) {
  static cg_jit *jits[NJITS];
  oc_error e;
  check(cg_jit_new(&jits[0], &e), &e);
  check(cg_jit_new_for_cpu("haswell", "+avx2,+fma", &jits[1], &e), &e);
  *state = jits;
  return 0;
}

static inline int free_jits(void **state) {
  cg_jit **jits = *state;
  for (int i = 0; i < NJITS; i++)
    cg_jit_free(jits[i]);
  return 0;
}

static inline void *kernel(cg_jit *j, cg_kernel_key key) {
  void *fn = NULL;
  oc_error e;
  check(cg_kernel_get(j, &key, &fn, &e), &e);
  return fn;
}

static inline void expect_error(cg_jit *j, cg_kernel_key key, const char *part) {
  void *fn = NULL;
  oc_error e = {{0}};
  assert_int_equal(cg_kernel_get(j, &key, &fn, &e), -1);
  assert_null(fn);
  if (!strstr(e.msg, part))
    fail_msg("error \"%s\" does not mention \"%s\"", e.msg, part);
}

/* Deterministic inputs: xorshift64*, the same sequence on every run. */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static inline float uniform(float lo, float hi) {
  rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
  uint64_t r = rng * 2685821657736338717u;
  return lo + (hi - lo) * (float)((r >> 40) / 16777216.0);
}

static inline float *randoms(int64_t n, float lo, float hi) {
  float *a = malloc((size_t)(n ? n : 1) * sizeof *a);
  assert_non_null(a);
  for (int64_t i = 0; i < n; i++)
    a[i] = uniform(lo, hi);
  return a;
}

static inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* n random weights in dtype dt (bf16: truncated), and their f32 values in *as_f32. */
static inline void *weights(ir_dtype dt, int64_t n, float **as_f32) {
  float *f = randoms(n, -1, 1);
  *as_f32 = f;
  if (dt == IR_F32)
    return f;
  uint16_t *h = malloc((size_t)n * sizeof *h);
  assert_non_null(h);
  for (int64_t i = 0; i < n; i++) {
    uint32_t bits;
    memcpy(&bits, &f[i], sizeof bits);
    h[i] = (uint16_t)(bits >> 16);
    f[i] = bf16_to_f32(h[i]);
  }
  return h;
}

/* w[N,K] packed for j's kernels (freed by the caller). */
static inline void *pack(cg_jit *j, ir_dtype dt, int64_t N, int64_t K, const void *w) {
  void *p = malloc(cg_packed_bytes(j, dt, N, K));
  assert_non_null(p);
  cg_pack_matrix(j, dt, N, K, w, p);
  return p;
}

/* The dot product of x and w in double, as the interpreter sums it, and
 * sum_k |x_k w_k| in *abs (what error bounds scale with). */
static inline double dot_double(const float *x, const float *w, int64_t K, double *abs) {
  double s = 0;
  *abs = 0;
  for (int64_t k = 0; k < K; k++) {
    s += (double)x[k] * w[k];
    *abs += fabs((double)x[k] * w[k]);
  }
  return s;
}

#endif
