/* The tiny golden model (tests/data/tiny) through the JIT: the -O2 graph
 * lowered to LLVM kernels and run by the OpenMP executor, against PyTorch's
 * logits and the reference interpreter (both <= 1e-4 max abs), for a 7-token
 * prefill, three decode steps and a chunked prefill; bitwise the same logits
 * for 1, 2 and 3 threads; clean errors (context full, bad ids, unfused ops);
 * and `olmoc logits --backend jit` against `--backend interp`. */
#include <math.h>

#include "cli_harness.h"
#include "olmoc/codegen.h"
#include "olmoc/interp.h"
#include "olmoc/olmo2.h"
#include "olmoc/passes.h"
#include "olmoc/weights.h"

#define TINY "tests/data/tiny"
#define TOLERANCE 1e-4f

typedef struct fixture {
  olmo2_config config;
  ir_graph *graph; /* after -O2 */
  pass_result passes;
  rt_weights *weights, *golden;
  const int32_t *tokens; /* golden tokens [10] */
  cg_jit *jit;
  rt_program *program;
  ir_interp *interp;
  int64_t ctx, vocab;
} fixture;

static void check(int rc, const oc_error *e) {
  if (rc)
    fail_msg("%s", e->msg);
}

static int setup(void **state) {
  static fixture f;
  oc_error e;
  if (make_tmpdir(state))
    return -1;
  check(olmo2_config_load(TINY, &f.config, &e), &e);
  f.ctx = f.config.max_position_embeddings;
  f.vocab = f.config.vocab_size;
  check(olmo2_build_graph(&f.config, IR_F32, &f.graph, &e), &e);
  check(rt_weights_open(TINY, &f.weights, &e), &e);
  check(rt_weights_open(TINY "/golden.safetensors", &f.golden, &e), &e);
  f.tokens = rt_weights_find(f.golden, "tokens")->data;
  pass_options o = {.level = 2, .max_tokens = f.ctx, .max_ctx = f.ctx};
  check(pass_run_pipeline(f.graph, &o, &f.passes, &e), &e);
  assert_true(f.passes.planned);
  check(cg_jit_new(&f.jit, &e), &e);
  check(cg_lower(f.jit, f.graph, &f.passes.plan, f.ctx, rt_weights_lookup, f.weights, &f.program, &e), &e);
  check(ir_interp_new(f.graph, f.ctx, rt_weights_lookup, f.weights, &f.interp, &e), &e);
  check(ir_interp_use_arena(f.interp, f.passes.plan.offset, f.passes.plan.bytes,
                            f.passes.plan.arena_bytes, NULL, &e), &e);
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ir_interp_free(f->interp);
  rt_program_free(f->program);
  cg_jit_free(f->jit);
  pass_result_free(&f->passes);
  rt_weights_close(f->golden);
  rt_weights_close(f->weights);
  ir_graph_free(f->graph);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd);
}

static float max_abs(const float *a, const float *b, int64_t n) {
  float worst = 0;
  for (int64_t i = 0; i < n; i++)
    worst = fmaxf(worst, fabsf(a[i] - b[i]));
  return worst;
}

/* Runs tokens[first, first+T) on the JIT and on the interpreter (both at the
 * same position) and compares with `golden` rows from `row`; returns the
 * JIT's logits. */
static const float *run_and_compare(fixture *f, int first, int T, int threads, const char *golden,
                                    int row) {
  oc_error e;
  const rt_tensor *want = rt_weights_find(f->golden, golden);
  assert_non_null(want);
  assert_int_equal(rt_program_position(f->program), ir_interp_position(f->interp));
  const float *got = rt_program_run(f->program, f->tokens + first, T, threads, &e);
  if (!got)
    fail_msg("%s", e.msg);
  ir_binding in = {"tokens", {IR_I32, 1, {T}, f->tokens + first}};
  check(ir_interp_run(f->interp, T, &in, 1, &e), &e);
  const float *oracle = ir_interp_output(f->interp, "logits")->data;
  float vs_torch = max_abs(got, (const float *)want->data + row * f->vocab, T * f->vocab);
  float vs_interp = max_abs(got, oracle, T * f->vocab);
  printf("%s rows %d..%d, %d threads: max abs vs PyTorch %.3g, vs interpreter %.3g\n", golden, row,
         row + T - 1, threads, vs_torch, vs_interp);
  assert_true(vs_torch <= TOLERANCE);
  assert_true(vs_interp <= TOLERANCE);
  return got;
}

static void restart(fixture *f) {
  rt_program_rewind(f->program, 0);
  ir_interp_rewind(f->interp, 0);
}

static void test_prefill_then_decode(void **state) {
  fixture *f = *state;
  restart(f);
  run_and_compare(f, 0, 7, 2, "prefill_logits", 0);
  for (int step = 0; step < 3; step++) {
    assert_int_equal(rt_program_position(f->program), 7 + step);
    run_and_compare(f, 7 + step, 1, 2, "decode_logits", step);
  }
}

/* Every call's logits (prefill of 7, three decodes) for `threads` threads. */
static float *all_logits(fixture *f, int threads) {
  float *all = malloc((size_t)(10 * f->vocab) * sizeof *all);
  assert_non_null(all);
  restart(f);
  const float *l = run_and_compare(f, 0, 7, threads, "prefill_logits", 0);
  memcpy(all, l, (size_t)(7 * f->vocab) * sizeof *all);
  for (int step = 0; step < 3; step++) {
    l = run_and_compare(f, 7 + step, 1, threads, "decode_logits", step);
    memcpy(all + (7 + step) * f->vocab, l, (size_t)f->vocab * sizeof *all);
  }
  return all;
}

static void test_threads_bitwise(void **state) {
  fixture *f = *state;
  float *one = all_logits(f, 1), *two = all_logits(f, 2), *three = all_logits(f, 3);
  assert_memory_equal(one, two, (size_t)(10 * f->vocab) * sizeof *one);
  assert_memory_equal(one, three, (size_t)(10 * f->vocab) * sizeof *one);
  free(one);
  free(two);
  free(three);
}

/* Prefill in two chunks (4 then 3): the cache holds what one prefill computes,
 * so the second chunk's logits are the full prefill's rows 4..6, bit for bit. */
static void test_chunked_prefill(void **state) {
  fixture *f = *state;
  float *whole = all_logits(f, 2);
  restart(f);
  run_and_compare(f, 0, 4, 2, "prefill_logits", 0);
  const float *tail = run_and_compare(f, 4, 3, 2, "prefill_logits", 4);
  assert_memory_equal(tail, whole + 4 * f->vocab, (size_t)(3 * f->vocab) * sizeof *tail);
  const float *next = run_and_compare(f, 7, 1, 2, "decode_logits", 0);
  assert_memory_equal(next, whole + 7 * f->vocab, (size_t)f->vocab * sizeof *next);
  free(whole);
}

static void expect_error(const char *msg, const char *words) {
  if (!strstr(msg, words))
    fail_msg("error \"%s\" lacks \"%s\"", msg, words);
}

static void test_errors(void **state) {
  fixture *f = *state;
  oc_error e = {{0}};
  int32_t ids[64] = {0};
  restart(f);
  assert_non_null(rt_program_run(f->program, ids, f->ctx - 2, 2, &e));
  assert_null(rt_program_run(f->program, ids, 3, 2, &e));
  expect_error(e.msg, "context full: P + T = 62 + 3 = 65 exceeds the 64 positions");
  assert_int_equal(rt_program_position(f->program), f->ctx - 2);
  assert_non_null(rt_program_run(f->program, ids, 2, 2, &e)); /* exactly full */
  assert_null(rt_program_run(f->program, ids, 1, 1, &e));
  expect_error(e.msg, "context full");
  restart(f);
  ids[1] = (int32_t)f->vocab;
  assert_null(rt_program_run(f->program, ids, 2, 2, &e));
  expect_error(e.msg, "token id 256 is outside the model's vocabulary of 256");
  assert_null(rt_program_run(f->program, ids, 0, 2, &e));
  expect_error(e.msg, "at least one token");
  assert_int_equal(rt_program_position(f->program), 0);

  /* an unfused graph: the plan is there, kernels for its primitives are not */
  ir_graph *g;
  pass_result r;
  rt_program *p = NULL;
  check(olmo2_build_graph(&f->config, IR_F32, &g, &e), &e);
  pass_options o = {.passes = "plan-memory", .max_tokens = 8, .max_ctx = 8};
  check(pass_run_pipeline(g, &o, &r, &e), &e);
  assert_int_equal(cg_lower(f->jit, g, &r.plan, 8, rt_weights_lookup, f->weights, &p, &e), -1);
  assert_null(p);
  expect_error(e.msg, "the JIT has no kernel for op");
  expect_error(e.msg, "--backend interp");
  assert_int_equal(cg_lower(f->jit, g, &r.plan, 16, rt_weights_lookup, f->weights, &p, &e), -1);
  expect_error(e.msg, "memory plan");
  pass_result_free(&r);
  ir_graph_free(g);
}

/* The command line: --backend jit against --backend interp, and its errors. */
static void test_cli_backends(void **state) {
  (void)state;
  const char *ids = "--ids 104,59,101,250,152,19,148";
  const char *backends[] = {"--backend interp", "--backend jit -t 1", "--backend jit -t 2"};
  float *logits[3];
  size_t n[3];
  for (int i = 0; i < 3; i++) {
    char args[512], path[256];
    snprintf(path, sizeof path, "%s/%d.npy", tmpdir, i);
    snprintf(args, sizeof args, "logits -m " TINY " %s %s -o %s", backends[i], ids, path);
    assert_int_equal(olmoc(args), 0);
    expect_output("f32[7,256]");
    char *npy = slurp(path, &n[i]);
    size_t header = 10 + (size_t)(unsigned char)npy[8] + 256u * (unsigned char)npy[9];
    assert_int_equal(n[i] - header, 7 * 256 * sizeof(float));
    logits[i] = malloc(7 * 256 * sizeof(float));
    memcpy(logits[i], npy + header, 7 * 256 * sizeof(float));
    free(npy);
  }
  float worst = max_abs(logits[0], logits[1], 7 * 256);
  printf("olmoc logits: jit vs interp max abs %.3g\n", worst);
  assert_true(worst <= TOLERANCE);
  assert_memory_equal(logits[1], logits[2], 7 * 256 * sizeof(float));
  for (int i = 0; i < 3; i++)
    free(logits[i]);

  assert_int_equal(olmoc("logits -m " TINY " --backend jit -O0 --ids 1 -o /dev/null"), 1);
  expect_output("the JIT backend runs the fused graph of -O2, and -O0 leaves ops");
  assert_int_equal(olmoc("logits -m " TINY " --backend gpu --ids 1 -o /dev/null"), 1);
  expect_output("--backend: expected jit or interp, found 'gpu'");
  assert_int_equal(olmoc("logits -m " TINY " --backend jit --passes=dce --ids 1 -o /dev/null"), 1);
  expect_output("the JIT backend needs the memory plan");
  assert_int_equal(olmoc("logits -m " TINY " --backend jit --ids 1,256 -o /dev/null"), 1);
  expect_output("token id 256 is outside the model's vocabulary of 256");
  assert_int_equal(olmoc("logits -m " TINY " --backend jit -O1 --ids 1 -o /dev/null"), 1);
  expect_output("use -O2, or --backend interp");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prefill_then_decode),
      cmocka_unit_test(test_threads_bitwise),
      cmocka_unit_test(test_chunked_prefill),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_cli_backends),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
