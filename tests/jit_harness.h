/* Shared by the kernel tests: two JITs (the host's, and a forced Haswell for
 * the AVX2 path) made once per test program, and getting a kernel or failing
 * the test with the backend's message. Included once per test program. */
#ifndef OLMOC_TESTS_JIT_HARNESS_H
#define OLMOC_TESTS_JIT_HARNESS_H

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

#endif
