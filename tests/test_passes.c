/* The passes against the oracle: every registered pass alone, and the -O1 and
 * -O2 pipelines, leave the tiny model's logits within 1e-5 of the unfused
 * graph's (golden prompt and random tokens; prefill then decode through the
 * KV cache), and -O2 fuses every RMSNorm, RoPE, SwiGLU and attention of the
 * published 7B and 32B (GQA) graphs into exactly counted ops; a backend that
 * needs the memory plan gets plan-memory last in any pipeline. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "olmoc/interp.h"
#include "olmoc/olmo2.h"
#include "olmoc/passes.h"
#include "olmoc/weights.h"

#define TINY "tests/data/tiny"
#define TOLERANCE 1e-5f
#define STEPS 4 /* a prefill, then three single-token decode steps */

typedef struct fixture {
  olmo2_config config;
  rt_weights *weights, *golden;
  int32_t random_tokens[10];
  float *want[2][STEPS]; /* [golden|random][step]: the unfused graph's logits */
} fixture;

static const int step_tokens[STEPS] = {7, 1, 1, 1};

static void check(int rc, const oc_error *e) {
  if (rc)
    fail_msg("%s", e->msg);
}

static ir_graph *build(const olmo2_config *c, const pass_options *o) {
  ir_graph *g;
  oc_error e;
  pass_result r;
  check(olmo2_build_graph(c, IR_F32, &g, &e), &e);
  if (o) {
    int rc = pass_run_pipeline(g, o, &r, &e);
    pass_result_free(&r);
    check(rc, &e);
  }
  return g;
}

/* Runs the 7+1+1+1 token steps of `tokens` through g; each step's logits go
 * to out[step] (malloc'ed) when out is given, else are compared with want. */
static void run_steps(fixture *f, const ir_graph *g, const int32_t *tokens, float **out, float **want,
                      const char *what) {
  ir_interp *it;
  oc_error e;
  check(ir_interp_new(g, f->config.max_position_embeddings, rt_weights_lookup, f->weights, &it, &e), &e);
  int64_t V = f->config.vocab_size;
  for (int s = 0, first = 0; s < STEPS; first += step_tokens[s++]) {
    int T = step_tokens[s];
    ir_binding in = {"tokens", {IR_I32, 1, {T}, tokens + first}};
    check(ir_interp_run(it, T, &in, 1, &e), &e);
    const float *got = ir_interp_output(it, "logits")->data;
    if (out) {
      out[s] = malloc((size_t)(T * V) * sizeof **out);
      assert_non_null(out[s]);
      for (int64_t i = 0; i < T * V; i++)
        out[s][i] = got[i];
      continue;
    }
    float worst = 0;
    for (int64_t i = 0; i < T * V; i++)
      worst = fmaxf(worst, fabsf(got[i] - want[s][i]));
    if (!(worst <= TOLERANCE))
      fail_msg("%s, step %d: max abs difference %g from the unfused graph", what, s, worst);
  }
  ir_interp_free(it);
}

static const int32_t *golden_tokens(fixture *f) {
  const rt_tensor *t = rt_weights_find(f->golden, "tokens");
  assert_non_null(t);
  return t->data;
}

static int setup(void **state) {
  static fixture f;
  oc_error e;
  check(olmo2_config_load(TINY, &f.config, &e), &e);
  check(rt_weights_open(TINY, &f.weights, &e), &e);
  check(rt_weights_open(TINY "/golden.safetensors", &f.golden, &e), &e);
  srand(4);
  for (int i = 0; i < 10; i++)
    f.random_tokens[i] = rand() % (int)f.config.vocab_size;
  ir_graph *g = build(&f.config, NULL);
  run_steps(&f, g, golden_tokens(&f), f.want[0], NULL, "unfused");
  run_steps(&f, g, f.random_tokens, f.want[1], NULL, "unfused");
  ir_graph_free(g);
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  for (int k = 0; k < 2; k++)
    for (int s = 0; s < STEPS; s++)
      free(f->want[k][s]);
  rt_weights_close(f->golden);
  rt_weights_close(f->weights);
  return 0;
}

static void same_logits(fixture *f, const pass_options *o, const char *what) {
  ir_graph *g = build(&f->config, o);
  run_steps(f, g, golden_tokens(f), NULL, f->want[0], what);
  run_steps(f, g, f->random_tokens, NULL, f->want[1], what);
  ir_graph_free(g);
}

static void test_each_pass_alone(void **state) {
  for (int i = 0; i < pass_registry_count; i++) {
    pass_options o = {.passes = pass_registry[i].name};
    same_logits(*state, &o, pass_registry[i].name);
  }
}

/* Each exact fusion after the ones it builds on. */
static void test_fusions_in_order(void **state) {
  static const char *const lists[] = {
      "fuse-rmsnorm,fuse-residual", "fuse-swiglu,fuse-matmul-swiglu",
      "fuse-rmsnorm,fuse-rope,fuse-attention", "fuse-elementwise,dce,cse"};
  for (size_t i = 0; i < sizeof lists / sizeof *lists; i++)
    same_logits(*state, &(pass_options){.passes = lists[i]}, lists[i]);
}

static void test_o1_and_o2(void **state) {
  same_logits(*state, &(pass_options){.level = 1}, "-O1");
  same_logits(*state, &(pass_options){.level = 2}, "-O2");
  same_logits(*state, &(pass_options){.level = 2, .disable = "fuse-rope,fuse-swiglu"},
              "-O2 without fuse-rope and fuse-swiglu");
}

/* A backend that needs the plan (the JIT) gets plan-memory last, whatever the
 * pipeline: appended unless it is already last, never dropped by --disable-pass. */
static void test_backend_plan(void **state) {
  fixture *f = *state;
  static const struct {
    pass_options o;
    const char *runs;
  } cases[] = {
      {{.level = 0}, "plan-memory"},
      {{.level = 1}, "fold-constants cse dce fuse-rmsnorm fuse-rope fuse-attention fuse-swiglu fuse-residual plan-memory"},
      {{.level = 2, .disable = "fuse-elementwise"},
       "fold-constants cse dce fuse-rmsnorm fuse-rope fuse-attention fuse-swiglu fuse-matmul-swiglu fuse-residual "
       "plan-memory"},
      {{.level = 2, .disable = "plan-memory,fuse-matmul-swiglu,fuse-elementwise"},
       "fold-constants cse dce fuse-rmsnorm fuse-rope fuse-attention fuse-swiglu fuse-residual plan-memory"},
      {{.passes = "plan-memory,dce"}, "plan-memory dce plan-memory"},
      {{.passes = "dce,plan-memory"}, "dce plan-memory"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ir_graph *g;
    pass_result r;
    oc_error e;
    pass_options o = cases[i].o;
    o.need_plan = true;
    o.max_tokens = o.max_ctx = 16;
    check(olmo2_build_graph(&f->config, IR_F32, &g, &e), &e);
    check(pass_run_pipeline(g, &o, &r, &e), &e);
    char runs[512] = "";
    for (int k = 0; k < r.n; k++)
      snprintf(runs + strlen(runs), sizeof runs - strlen(runs), "%s%s", k ? " " : "", r.rec[k].name);
    assert_string_equal(runs, cases[i].runs);
    assert_true(r.planned);
    assert_int_equal(r.plan.n, g->n);
    pass_result_free(&r);
    ir_graph_free(g);
  }
}

/* The fused graph still matches the PyTorch golden logits. */
static void test_o2_matches_golden(void **state) {
  fixture *f = *state;
  const rt_tensor *pre = rt_weights_find(f->golden, "prefill_logits");
  assert_non_null(pre);
  ir_graph *g = build(&f->config, &(pass_options){.level = 2});
  ir_interp *it;
  oc_error e;
  check(ir_interp_new(g, 64, rt_weights_lookup, f->weights, &it, &e), &e);
  ir_binding in = {"tokens", {IR_I32, 1, {7}, golden_tokens(f)}};
  check(ir_interp_run(it, 7, &in, 1, &e), &e);
  const float *got = ir_interp_output(it, "logits")->data, *ref = pre->data;
  for (int64_t i = 0; i < 7 * f->config.vocab_size; i++)
    assert_true(fabsf(got[i] - ref[i]) <= 1e-4f);
  ir_interp_free(it);
  ir_graph_free(g);
}

static int count(const ir_graph *g, ir_op op) {
  int n = 0;
  for (int i = 0; i < g->n; i++)
    n += g->nodes[i].op == op;
  return n;
}

/* After -O2: the exact op counts of a graph with L layers, and none of the
 * primitives the passes take. */
static void expect_fused(const char *dir, int L, bool gqa) {
  olmo2_config c;
  oc_error e;
  check(olmo2_config_load(dir, &c, &e), &e);
  ir_graph *raw = build(&c, NULL);
  assert_int_equal(count(raw, IR_REPEAT), gqa ? 2 * L : 0);
  ir_graph *g = build(&c, &(pass_options){.level = 2});
  /* q_norm, k_norm per layer, the final norm; post-attention and
   * post-feedforward norms carry their residual add */
  assert_int_equal(count(g, IR_RMSNORM), 2 * L + 1);
  assert_int_equal(count(g, IR_RMSNORM_ADD), 2 * L);
  assert_int_equal(count(g, IR_ROPE), 2 * L);
  assert_int_equal(count(g, IR_ATTENTION), L);
  assert_int_equal(count(g, IR_MATMUL_SWIGLU), L);
  assert_int_equal(count(g, IR_SWIGLU), 0);
  /* q, k, v, o and down per layer, and the lm_head */
  assert_int_equal(count(g, IR_MATMUL), 5 * L + 1);
  assert_int_equal(count(g, IR_KV_APPEND), 2 * L);
  assert_int_equal(count(g, IR_RESHAPE), 4 * L + 2); /* q, k, v heads, attention out; cos, sin */
  assert_int_equal(count(g, IR_ELTWISE), 0);
  static const ir_op gone[] = {IR_SOFTMAX, IR_CAUSAL_MASK, IR_RSQRT, IR_REDUCE_MEAN, IR_SIGMOID,
                               IR_NEG, IR_CONCAT, IR_SLICE, IR_TRANSPOSE, IR_REPEAT, IR_ADD,
                               IR_MUL, IR_CONST};
  for (size_t i = 0; i < sizeof gone / sizeof *gone; i++)
    if (count(g, gone[i]))
      fail_msg("%s: %d %s left after -O2", dir, count(g, gone[i]), ir_op_table[gone[i]].name);
  /* per layer: the counts above and 11 weights, 2 caches; besides: tokens,
   * 3 weights, gather, positions, 2 tables and their reshapes, final norm,
   * lm_head matmul, output */
  assert_int_equal(g->n, (5 + 2 + 2 + 2 + 1 + 1 + 2 + 4 + 11 + 2) * L + 13);
  ir_graph_free(raw);
  ir_graph_free(g);
}

static void test_7b_counts(void **state) {
  (void)state;
  expect_fused("models/olmo2-7b", 32, false);
}

static void test_32b_counts(void **state) {
  (void)state;
  expect_fused("models/olmo2-32b", 64, true);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_each_pass_alone), cmocka_unit_test(test_fusions_in_order),
      cmocka_unit_test(test_o1_and_o2),       cmocka_unit_test(test_o2_matches_golden),
      cmocka_unit_test(test_7b_counts),       cmocka_unit_test(test_32b_counts),
      cmocka_unit_test(test_backend_plan),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
