/* The memory planner and its checker: small graphs whose best arena is known
 * (ping-pong chain, diamond, in place, reshape views), hand-broken plans the
 * checker must reject, the published OLMo 2 configs within 10% of the lower
 * bound at T = 1 and 512, and the tiny model's logits through the interpreter
 * on a planned arena bit-identical to those with one allocation per value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "olmoc/interp.h"
#include "olmoc/olmo2.h"
#include "olmoc/plan.h"
#include "olmoc/weights.h"

#define TINY "tests/data/tiny"
#define KB 1024 /* bytes of one f32[4,64] value */

static void ok(int rc, const oc_error *e) {
  if (rc)
    fail_msg("unexpected error: %s", e->msg);
}

static ir_type f32(int64_t rows, int64_t cols) {
  return (ir_type){IR_F32, {2, {ir_const_dim(rows), ir_const_dim(cols)}}};
}

/* Plans g (which must verify) for T <= 1, checks the plan, and returns it. */
static pass_plan plan_of(ir_graph *g) {
  oc_error e;
  pass_plan p;
  ok(ir_graph_status(g, &e), &e);
  ok(ir_verify(g, &e), &e);
  ok(pass_plan_memory(g, 1, 16, &p, &e), &e);
  ok(pass_plan_check(g, &p, &e), &e);
  return p;
}

/* softmax^4: each value dies when the next is made, so two buffers take turns. */
static void test_chain_ping_pong(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int s[5];
  s[0] = ir_input(g, "x", f32(4, 64));
  for (int i = 1; i < 5; i++)
    s[i] = ir_unary(g, IR_SOFTMAX, s[i - 1]);
  int out = ir_output(g, "y", s[4]);
  pass_plan p = plan_of(g);
  assert_int_equal(p.offset[s[0]], -1); /* inputs live with the caller */
  assert_int_equal(p.alias_of[out], s[4]);
  assert_int_equal(p.offset[out], p.offset[s[4]]);
  assert_int_equal(p.naive_bytes, 4 * KB);
  assert_int_equal(p.lower_bound, 2 * KB);
  assert_int_equal(p.arena_bytes, 2 * KB);
  assert_int_equal(p.offset[s[1]], p.offset[s[3]]);
  assert_int_equal(p.offset[s[2]], p.offset[s[4]]);
  assert_int_not_equal(p.offset[s[1]], p.offset[s[2]]);
  pass_plan_free(&p);
  ir_graph_free(g);
}

/* a feeds b and c, which meet in d = concat(b, c): the peak is b, c, d. */
static void test_diamond(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int x = ir_input(g, "x", f32(4, 64));
  int a = ir_unary(g, IR_SOFTMAX, x);
  int b = ir_unary(g, IR_SOFTMAX, a);
  int c = ir_unary(g, IR_REDUCE_SUM, a);
  (void)c;
  int c2 = ir_unary(g, IR_SOFTMAX, a);
  int d = ir_concat(g, b, c2, 0);
  ir_output(g, "y", d);
  pass_plan p = plan_of(g);
  /* live: a [1,4], b [2,5], c [3,3], c2 [4,5], d [5,end]: at 4, a+b+c2 = 3 KB;
   * at 5, b+c2+d = 4 KB */
  assert_int_equal(p.lower_bound, 4 * KB);
  assert_int_equal(p.arena_bytes, 4 * KB);
  assert_int_equal(p.naive_bytes, 5 * KB + 16);
  pass_plan_free(&p);
  ir_graph_free(g);
}

/* neg and exp over values that die at them reuse their bytes; a value read
 * later, or a broadcast input of another shape, is not overwritten. */
static void test_in_place(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int x = ir_input(g, "x", f32(4, 64));
  int a = ir_unary(g, IR_SOFTMAX, x);
  int b = ir_unary(g, IR_NEG, a);   /* a dies here: in place */
  int c = ir_unary(g, IR_EXP, b);   /* b dies here: in place */
  int d = ir_unary(g, IR_SIGMOID, c); /* c is read again below: not in place */
  int r = ir_unary(g, IR_REDUCE_SUM, c); /* [4,1] */
  int m = ir_binary(g, IR_MUL, r, d); /* r dies here but is [4,1]: in place over d */
  int s = ir_binary(g, IR_ADD, m, c); /* both die here: in place over m */
  ir_output(g, "y", s);
  pass_plan p = plan_of(g);
  assert_int_equal(p.offset[b], p.offset[a]);
  assert_int_equal(p.offset[c], p.offset[a]);
  assert_int_not_equal(p.offset[d], p.offset[c]);
  assert_int_equal(p.offset[m], p.offset[d]);
  assert_int_not_equal(p.offset[m], p.offset[r]);
  assert_int_equal(p.offset[s], p.offset[m]);
  assert_int_equal(p.arena_bytes, 2 * KB + 64);
  assert_int_equal(p.lower_bound, 2 * KB + 64);
  pass_plan_free(&p);
  ir_graph_free(g);
}

/* A reshape is its input's bytes, so the input lives as long as the view. */
static void test_reshape_alias(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int x = ir_input(g, "x", f32(4, 64));
  int a = ir_unary(g, IR_SOFTMAX, x);
  int v = ir_reshape(g, a, (ir_shape){2, {ir_const_dim(16), ir_const_dim(16)}});
  int s = ir_unary(g, IR_SOFTMAX, v);
  int xv = ir_reshape(g, x, (ir_shape){2, {ir_const_dim(16), ir_const_dim(16)}});
  int t = ir_binary(g, IR_MATMUL, s, xv);
  ir_output(g, "y", t);
  pass_plan p = plan_of(g);
  assert_int_equal(p.alias_of[v], a);
  assert_int_equal(p.offset[v], p.offset[a]);
  assert_int_equal(p.alias_of[xv], x);
  assert_int_equal(p.offset[xv], -1); /* a view of the caller's input */
  assert_int_not_equal(p.offset[s], p.offset[a]);
  assert_int_equal(p.naive_bytes, 3 * KB);
  assert_int_equal(p.arena_bytes, 2 * KB);
  pass_plan_free(&p);
  ir_graph_free(g);
}

/* Hand-broken plans of the ping-pong chain: the message names what is wrong. */
static void test_checker_rejects(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int s[4];
  s[0] = ir_input(g, "x", f32(4, 64));
  for (int i = 1; i < 4; i++)
    s[i] = ir_unary(g, IR_SOFTMAX, s[i - 1]);
  ir_output(g, "y", s[3]);
  pass_plan p = plan_of(g);
  oc_error e;
  int64_t saved = p.offset[s[2]];

  p.offset[s[2]] = p.offset[s[1]] + 512; /* s1 and s2 are both live at s2 */
  assert_int_equal(pass_plan_check(g, &p, &e), -1);
  assert_non_null(strstr(e.msg, "node %1 (softmax"));
  assert_non_null(strstr(e.msg, "node %2 (softmax"));
  assert_non_null(strstr(e.msg, "share bytes"));

  p.offset[s[2]] = p.arena_bytes; /* past the end */
  assert_int_equal(pass_plan_check(g, &p, &e), -1);
  assert_non_null(strstr(e.msg, "node %2 (softmax) at [2048, 3072) runs past the arena's end at 2048"));

  p.offset[s[2]] = saved + 32; /* misaligned */
  assert_int_equal(pass_plan_check(g, &p, &e), -1);
  assert_non_null(strstr(e.msg, "not a multiple of 64"));

  p.offset[s[2]] = -1; /* not placed */
  assert_int_equal(pass_plan_check(g, &p, &e), -1);
  assert_non_null(strstr(e.msg, "node %2 (softmax) is computed but has no place"));

  p.offset[s[2]] = saved;
  p.bytes[s[2]] = 100; /* too small */
  assert_int_equal(pass_plan_check(g, &p, &e), -1);
  assert_non_null(strstr(e.msg, "given 100 bytes but needs 1024"));

  p.bytes[s[2]] = KB;
  p.alias_of[s[2]] = s[1]; /* softmax is no view */
  assert_int_equal(pass_plan_check(g, &p, &e), -1);
  assert_non_null(strstr(e.msg, "node %2 (softmax) is planned as a view of %1"));

  p.alias_of[s[2]] = -1;
  ok(pass_plan_check(g, &p, &e), &e);
  pass_plan_free(&p);
  ir_graph_free(g);
}

/* Every published config, decode and a 512-token prefill chunk. */
static void test_published_configs(void **state) {
  (void)state;
  static const char *models[] = {"models/olmo2-1b", "models/olmo2-7b", "models/olmo2-13b",
                                 "models/olmo2-32b"};
  for (int m = 0; m < 4; m++) {
    olmo2_config c;
    ir_graph *g;
    oc_error e;
    ok(olmo2_config_load(models[m], &c, &e), &e);
    ok(olmo2_build_graph(&c, IR_F32, &g, &e), &e);
    for (int64_t T = 1; T <= 512; T += 511) {
      pass_plan p;
      ok(pass_plan_memory(g, T, 4096, &p, &e), &e);
      ok(pass_plan_check(g, &p, &e), &e);
      double ratio = (double)p.arena_bytes / (double)p.lower_bound;
      printf("%s T=%lld: naive %.1f MiB, planned %.1f MiB, lower bound %.1f MiB, ratio %.4f\n",
             models[m], (long long)T, p.naive_bytes / 1048576.0, p.arena_bytes / 1048576.0,
             p.lower_bound / 1048576.0, ratio);
      assert_true(p.lower_bound > 0);
      assert_true(p.arena_bytes >= p.lower_bound);
      assert_true(ratio <= 1.10);
      assert_true(p.naive_bytes > p.arena_bytes);
      pass_plan_free(&p);
    }
    ir_graph_free(g);
  }
}

/* Prefill 7 tokens then decode 3, returning all 10 rows of logits in out. */
static void run_tiny(ir_interp *it, const int32_t *tokens, int64_t V, float *out) {
  oc_error e;
  ir_interp_rewind(it, 0);
  for (int first = 0, T = 7; first < 10; first += T, T = 1) {
    ir_binding in = {"tokens", {IR_I32, 1, {T}, tokens + first}};
    ok(ir_interp_run(it, T, &in, 1, &e), &e);
    const ir_tensor *logits = ir_interp_output(it, "logits");
    assert_non_null(logits);
    assert_int_equal(logits->dims[0], T);
    memcpy(out + first * V, logits->data, (size_t)(T * V) * sizeof *out);
  }
}

static void test_interp_on_arena(void **state) {
  (void)state;
  olmo2_config c;
  ir_graph *g;
  rt_weights *w;
  oc_error e;
  ok(olmo2_config_load(TINY, &c, &e), &e);
  ok(olmo2_build_graph(&c, IR_F32, &g, &e), &e);
  ok(rt_weights_open(TINY, &w, &e), &e);
  ir_interp *plain, *planned;
  ok(ir_interp_new(g, 64, rt_weights_lookup, w, &plain, &e), &e);
  ok(ir_interp_new(g, 64, rt_weights_lookup, w, &planned, &e), &e);
  pass_plan p;
  ok(pass_plan_memory(g, 7, 64, &p, &e), &e);
  ok(pass_plan_check(g, &p, &e), &e);
  ok(ir_interp_use_arena(planned, p.offset, p.bytes, p.arena_bytes, NULL, &e), &e);

  static const int32_t tokens[10] = {72, 101, 108, 108, 111, 32, 119, 111, 114, 108} /* "Hello worl" */;
  int64_t V = c.vocab_size;
  float *want = test_malloc((size_t)(10 * V) * sizeof *want);
  float *got = test_malloc((size_t)(10 * V) * sizeof *got);
  run_tiny(plain, tokens, V, want);
  run_tiny(planned, tokens, V, got);
  assert_memory_equal(want, got, (size_t)(10 * V) * sizeof *got);
  printf("tiny: arena %lld bytes (naive %lld, lower bound %lld)\n", (long long)p.arena_bytes,
         (long long)p.naive_bytes, (long long)p.lower_bound);

  /* a call larger than the plan allows fails cleanly */
  ir_interp_rewind(planned, 0);
  int32_t eight[8] = {0};
  ir_binding in = {"tokens", {IR_I32, 1, {8}, eight}};
  assert_int_equal(ir_interp_run(planned, 8, &in, 1, &e), -1);
  assert_non_null(strstr(e.msg, "the memory plan gives it"));
  /* and without the arena the same interpreter runs it */
  ok(ir_interp_use_arena(planned, NULL, NULL, 0, NULL, &e), &e);
  ok(ir_interp_run(planned, 8, &in, 1, &e), &e);

  test_free(want);
  test_free(got);
  pass_plan_free(&p);
  ir_interp_free(plain);
  ir_interp_free(planned);
  rt_weights_close(w);
  ir_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chain_ping_pong),  cmocka_unit_test(test_diamond),
      cmocka_unit_test(test_in_place),         cmocka_unit_test(test_reshape_alias),
      cmocka_unit_test(test_checker_rejects),  cmocka_unit_test(test_published_configs),
      cmocka_unit_test(test_interp_on_arena),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
