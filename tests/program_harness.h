/* Shared by the tests that compare programs bit for bit: failing on a
 * status with its message, and a prompt's logits and one decode step's after
 * it, from one program, in one buffer the caller frees. Included once per
 * test program, after cmocka. */
#ifndef OLMOC_TESTS_PROGRAM_HARNESS_H
#define OLMOC_TESTS_PROGRAM_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "olmoc/executor.h"

static inline void check(int rc, const oc_error *e) {
  if (rc)
    fail_msg("%s", e->msg);
}

static inline void expect_error(const char *msg, const char *words) {
  if (!strstr(msg, words))
    fail_msg("error \"%s\" lacks \"%s\"", msg, words);
}

/* f32[(n+1), V]: the logits of ids[0..n) run at once, then of `next` (2 threads). */
static inline float *prompt_then_step(rt_program *p, const int32_t *ids, int64_t n, int32_t next, int64_t V) {
  oc_error e;
  float *all = malloc((size_t)((n + 1) * V) * sizeof *all);
  assert_non_null(all);
  const float *l = rt_program_run(p, ids, n, 2, &e);
  if (!l)
    fail_msg("%s", e.msg);
  memcpy(all, l, (size_t)(n * V) * sizeof *all);
  if (!(l = rt_program_run(p, &next, 1, 2, &e)))
    fail_msg("%s", e.msg);
  memcpy(all + n * V, l, (size_t)V * sizeof *all);
  return all;
}

#endif
