/* The whole tiny OLMo 2 (2 layers, hidden 64, 4 heads, 2 KV heads) through the
 * frontend, the safetensors loader and the reference interpreter, against
 * logits from the independent PyTorch implementation in tools/golden/: a
 * 7-token prefill, then three single-token decode steps through the KV cache. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "olmoc/interp.h"
#include "olmoc/olmo2.h"
#include "olmoc/check_weights.h"
#include "olmoc/weights.h"

#define TINY "tests/data/tiny"
#define TOLERANCE 1e-4f

typedef struct fixture {
  olmo2_config config;
  ir_graph *graph;
  rt_weights *weights, *golden;
  ir_interp *interp;
} fixture;

static void check(int rc, const oc_error *e) {
  if (rc)
    fail_msg("%s", e->msg);
}

static int setup(void **state) {
  static fixture f;
  oc_error e;
  check(olmo2_config_load(TINY, &f.config, &e), &e);
  check(olmo2_build_graph(&f.config, IR_F32, &f.graph, &e), &e);
  check(rt_weights_open(TINY, &f.weights, &e), &e);
  check(drv_check_weights(f.weights, f.graph, &e), &e);
  check(rt_weights_open(TINY "/golden.safetensors", &f.golden, &e), &e);
  check(ir_interp_new(f.graph, f.config.max_position_embeddings, rt_weights_lookup, f.weights,
                      &f.interp, &e), &e);
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ir_interp_free(f->interp);
  rt_weights_close(f->golden);
  rt_weights_close(f->weights);
  ir_graph_free(f->graph);
  return 0;
}

/* Runs tokens[first, first+T) and compares each row of logits with `golden` rows from `row`. */
static void run_and_compare(fixture *f, int first, int T, const char *golden, int row) {
  const rt_tensor *tokens = rt_weights_find(f->golden, "tokens");
  const rt_tensor *want = rt_weights_find(f->golden, golden);
  assert_non_null(tokens);
  assert_non_null(want);
  int64_t V = f->config.vocab_size;
  assert_int_equal(want->dims[1], V);
  ir_binding in = {"tokens", {IR_I32, 1, {T}, (const int32_t *)tokens->data + first}};
  oc_error e;
  check(ir_interp_run(f->interp, T, &in, 1, &e), &e);
  const ir_tensor *logits = ir_interp_output(f->interp, "logits");
  assert_non_null(logits);
  assert_int_equal(logits->dims[0], T);
  assert_int_equal(logits->dims[1], V);
  const float *got = logits->data, *ref = (const float *)want->data + row * V;
  float worst = 0;
  for (int64_t i = 0; i < T * V; i++)
    worst = fmaxf(worst, fabsf(got[i] - ref[i]));
  printf("%s rows %d..%d: max abs error %.3g\n", golden, row, row + T - 1, worst);
  assert_true(worst <= TOLERANCE);
}

static void test_prefill_then_decode(void **state) {
  fixture *f = *state;
  ir_interp_rewind(f->interp, 0);
  run_and_compare(f, 0, 7, "prefill_logits", 0);
  for (int step = 0; step < 3; step++) {
    assert_int_equal(ir_interp_position(f->interp), 7 + step);
    run_and_compare(f, 7 + step, 1, "decode_logits", step);
  }
}

/* The cache must hold exactly what a fresh prefill computes: prefill in two
 * chunks (4 then 3 tokens) and the logits of the second chunk still match. */
static void test_chunked_prefill(void **state) {
  fixture *f = *state;
  ir_interp_rewind(f->interp, 0);
  run_and_compare(f, 0, 4, "prefill_logits", 0);
  run_and_compare(f, 4, 3, "prefill_logits", 4);
  run_and_compare(f, 7, 1, "decode_logits", 0);
}

/* Rewinding forgets the last positions: running them again gives the same logits. */
static void test_rewind(void **state) {
  fixture *f = *state;
  ir_interp_rewind(f->interp, 0);
  run_and_compare(f, 0, 7, "prefill_logits", 0);
  ir_interp_rewind(f->interp, 5);
  assert_int_equal(ir_interp_position(f->interp), 5);
  run_and_compare(f, 5, 2, "prefill_logits", 5);
  run_and_compare(f, 7, 1, "decode_logits", 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prefill_then_decode),
      cmocka_unit_test(test_chunked_prefill),
      cmocka_unit_test(test_rewind),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
