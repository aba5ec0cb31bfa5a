/* The tiny golden model (tests/data/tiny) through the JIT: the graph after
 * -O0 (every primitive on its own kernel), -O1, -O2 and each single pass,
 * lowered to LLVM kernels for the host and for a forced AVX2 target and run by
 * the OpenMP executor, against PyTorch's logits and the reference interpreter
 * (both <= 1e-4 max abs), for a 7-token prefill, three decode steps and a
 * chunked prefill; bitwise the same logits for 1, 2 and 3 threads; clean
 * errors (context full, bad ids, a plan too small); `olmoc logits
 * --backend jit` against `--backend interp`; and the f32 checkpoint run with
 * --dtype bf16 (or --compute bf16) giving the bits of the same checkpoint
 * converted to bf16 first, untied and tied, and from f16 too, and its
 * refusals. */
#include <math.h>

#include "cli_harness.h"
#include "checkpoint_harness.h"
#include "olmoc/codegen.h"
#include "olmoc/interp.h"
#include "olmoc/ir_text.h"
#include "olmoc/olmo2.h"
#include "olmoc/passes.h"
#include "olmoc/weights.h"

#define TINY "tests/data/tiny"
#define TOLERANCE 1e-4f
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* One pipeline's graph on one JIT, beside the interpreter on the same graph. */
typedef struct backend {
  const char *what;
  ir_graph *graph;
  pass_result passes;
  rt_program *program;
  ir_interp *interp;
} backend;

typedef struct fixture {
  olmo2_config config;
  rt_weights *weights, *golden;
  const int32_t *tokens; /* golden tokens [10] */
  cg_jit *jit[2];        /* the host's, and haswell (AVX2) */
  backend o2;            /* -O2 on the host */
  int64_t ctx, vocab;
} fixture;

static void check(int rc, const oc_error *e) {
  if (rc)
    fail_msg("%s", e->msg);
}

/* The frontend's graph after the pipeline o (plan-memory appended, as for any
 * JIT run), lowered on jit, and the interpreter on its planned arena. */
static void open_backend(fixture *f, backend *b, const char *what, pass_options o, cg_jit *jit) {
  oc_error e;
  *b = (backend){.what = what};
  check(olmo2_build_graph(&f->config, IR_F32, &b->graph, &e), &e);
  o.max_tokens = o.max_ctx = f->ctx;
  o.need_plan = true;
  check(pass_run_pipeline(b->graph, &o, &b->passes, &e), &e);
  assert_true(b->passes.planned);
  check(cg_lower(jit, b->graph, &b->passes.plan, f->ctx, rt_weights_lookup, f->weights, &b->program, &e), &e);
  check(ir_interp_new(b->graph, f->ctx, rt_weights_lookup, f->weights, &b->interp, &e), &e);
  check(ir_interp_use_arena(b->interp, b->passes.plan.offset, b->passes.plan.bytes, b->passes.plan.arena_bytes,
                            NULL, &e), &e);
}

static void close_backend(backend *b) {
  ir_interp_free(b->interp);
  rt_program_free(b->program);
  pass_result_free(&b->passes);
  ir_graph_free(b->graph);
}

/* tests/data/tiny converted to a bf16 checkpoint, tied to its embedding in
 * f32 and in bf16, in f16 and that f16 converted to bf16 (in tmpdir, made
 * by setup). */
static char bf16[256], tied32[256], tied16[256], f16[256], f16_bf16[256];

static int setup(void **state) {
  static fixture f;
  oc_error e;
  if (make_tmpdir(state))
    return -1;
  snprintf(bf16, sizeof bf16, "%s/bf16", tmpdir);
  snprintf(tied32, sizeof tied32, "%s/tied-f32", tmpdir);
  snprintf(tied16, sizeof tied16, "%s/tied-bf16", tmpdir);
  snprintf(f16, sizeof f16, "%s/f16", tmpdir);
  snprintf(f16_bf16, sizeof f16_bf16, "%s/f16-bf16", tmpdir);
  write_checkpoint(TINY, bf16, IR_BF16, false);
  write_checkpoint(TINY, tied32, IR_F32, true);
  write_checkpoint(TINY, tied16, IR_BF16, true);
  write_checkpoint(TINY, f16, IR_F16, false);
  write_checkpoint(f16, f16_bf16, IR_BF16, false);
  check(olmo2_config_load(TINY, &f.config, &e), &e);
  f.ctx = f.config.max_position_embeddings;
  f.vocab = f.config.vocab_size;
  check(rt_weights_open(TINY, &f.weights, &e), &e);
  check(rt_weights_open(TINY "/golden.safetensors", &f.golden, &e), &e);
  f.tokens = rt_weights_find(f.golden, "tokens")->data;
  check(cg_jit_new(&f.jit[0], &e), &e);
  check(cg_jit_new_for_cpu("haswell", "+avx2,+fma", &f.jit[1], &e), &e);
  open_backend(&f, &f.o2, "-O2", (pass_options){.level = 2}, f.jit[0]);
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  close_backend(&f->o2);
  cg_jit_free(f->jit[0]);
  cg_jit_free(f->jit[1]);
  rt_weights_close(f->golden);
  rt_weights_close(f->weights);
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
static const float *run_and_compare(fixture *f, backend *b, int first, int T, int threads, const char *golden,
                                    int row) {
  oc_error e;
  const rt_tensor *want = rt_weights_find(f->golden, golden);
  assert_non_null(want);
  assert_int_equal(rt_program_position(b->program), ir_interp_position(b->interp));
  const float *got = rt_program_run(b->program, f->tokens + first, T, threads, &e);
  if (!got)
    fail_msg("%s", e.msg);
  ir_binding in = {"tokens", {IR_I32, 1, {T}, f->tokens + first}};
  check(ir_interp_run(b->interp, T, &in, 1, &e), &e);
  const float *oracle = ir_interp_output(b->interp, "logits")->data;
  float vs_torch = max_abs(got, (const float *)want->data + row * f->vocab, T * f->vocab);
  float vs_interp = max_abs(got, oracle, T * f->vocab);
  printf("%s: %s rows %d..%d, %d threads: max abs vs PyTorch %.3g, vs interpreter %.3g\n", b->what, golden, row,
         row + T - 1, threads, vs_torch, vs_interp);
  assert_true(vs_torch <= TOLERANCE);
  assert_true(vs_interp <= TOLERANCE);
  return got;
}

static void restart(backend *b) {
  rt_program_rewind(b->program, 0);
  ir_interp_rewind(b->interp, 0);
}

static void prefill_then_decode(fixture *f, backend *b) {
  restart(b);
  run_and_compare(f, b, 0, 7, 2, "prefill_logits", 0);
  for (int step = 0; step < 3; step++) {
    assert_int_equal(rt_program_position(b->program), 7 + step);
    run_and_compare(f, b, 7 + step, 1, 2, "decode_logits", step);
  }
}

/* -O0 (the frontend's primitives), -O1 and -O2, on the host and on AVX2. */
static void test_levels_and_targets(void **state) {
  fixture *f = *state;
  for (int j = 0; j < 2; j++)
    for (int level = 0; level <= 2; level++) {
      char what[32];
      snprintf(what, sizeof what, "-O%d %s", level, j ? "avx2" : "host");
      backend b;
      open_backend(f, &b, what, (pass_options){.level = level}, f->jit[j]);
      prefill_then_decode(f, &b);
      close_backend(&b);
    }
}

/* The KV caches' layout per step: head-major (kv_heads set) where only the
 * fused attention reads them, the IR's [ctx][KV][D] where primitive ops do. */
static int64_t kv_heads_of(const rt_program *p, int *appends) {
  int64_t heads = -1;
  *appends = 0;
  for (int64_t i = 0; i < rt_program_steps(p); i++) {
    const rt_step *s = rt_program_step(p, i);
    if (s->call != RT_CALL_KV_APPEND)
      continue;
    assert_true(heads < 0 || s->kv_heads == heads);
    heads = s->kv_heads;
    (*appends)++;
  }
  return heads;
}

static void test_cache_layout(void **state) {
  fixture *f = *state;
  int appends;
  assert_int_equal(kv_heads_of(f->o2.program, &appends), f->config.num_key_value_heads);
  assert_int_equal(appends, 2 * f->config.num_hidden_layers);
  backend o0;
  open_backend(f, &o0, "-O0", (pass_options){.level = 0}, f->jit[0]);
  assert_int_equal(kv_heads_of(o0.program, &appends), 0);
  assert_int_equal(appends, 2 * f->config.num_hidden_layers);
  close_backend(&o0);
}

/* A graph where one K cache feeds two attentions and the second one's V
 * cache is also read by a transpose and a matmul: the V cache keeps the IR's layout, so
 * the K cache and the first attention's V cache must too (a kernel reads k
 * and v in one layout). JIT and interpreter agree on prefill and decode. */
static const char mixed_ir[] =
    "%tok = input \"tokens\" : i32[T]\n"
    "%emb = weight \"emb\" : f32[16,8]\n"
    "%x = gather %emb, %tok : f32[T,8]\n"
    "%h = reshape %x : f32[T,2,4]\n"
    "%kc = kv_cache \"k\" : f32[P,2,4]\n"
    "%k = kv_append %kc, %h : f32[P+T,2,4]\n"
    "%vc = kv_cache \"v\" : f32[P,2,4]\n"
    "%v = kv_append %vc, %h : f32[P+T,2,4]\n"
    "%a = attention %h, %k, %v {value=0.5} : f32[T,2,4]\n"
    "%v2c = kv_cache \"v2\" : f32[P,2,4]\n"
    "%v2 = kv_append %v2c, %h : f32[P+T,2,4]\n"
    "%b = attention %h, %k, %v2 {value=0.5} : f32[T,2,4]\n"
    "%v2a = transpose %v2 {perm=[1,2,0]} : f32[2,4,P+T]\n"
    "%gram = matmul %v2a, %v2a : f32[2,4,4]\n"
    "%rows = reduce_sum %gram : f32[2,4,1]\n"
    "%s = reshape %rows : f32[1,2,4]\n"
    "%ab = add %a, %b : f32[T,2,4]\n"
    "%abs = add %ab, %s : f32[T,2,4]\n"
    "%flat = reshape %abs : f32[T,8]\n"
    "%head = weight \"head\" : f32[16,8]\n"
    "%y = matmul %flat, %head : f32[T,16]\n"
    "%logits = output \"logits\" %y : f32[T,16]\n";

static float mixed_weights[2][16 * 8];

static int mixed_lookup(void *ctx, const char *name, ir_tensor *out, oc_error *e) {
  (void)ctx;
  int which = !strcmp(name, "emb") ? 0 : !strcmp(name, "head") ? 1 : -1;
  if (which < 0)
    return oc_fail(e, "no weight '%s'", name);
  *out = (ir_tensor){IR_F32, 2, {16, 8}, mixed_weights[which]};
  return 0;
}

static void test_mixed_cache_layouts(void **state) {
  (void)state;
  for (int i = 0; i < 2 * 16 * 8; i++)
    mixed_weights[i / 128][i % 128] = (float)((i * 37) % 23) / 23.0f - 0.5f;
  oc_error e;
  ir_graph *g;
  pass_result r;
  cg_jit *jit;
  rt_program *p;
  ir_interp *it;
  check(ir_parse(mixed_ir, "mixed.ir", &g, &e), &e);
  pass_options o = {.passes = "plan-memory", .max_tokens = 8, .max_ctx = 8, .need_plan = true};
  check(pass_run_pipeline(g, &o, &r, &e), &e);
  check(cg_jit_new(&jit, &e), &e);
  check(cg_lower(jit, g, &r.plan, 8, mixed_lookup, NULL, &p, &e), &e);
  int appends;
  assert_int_equal(kv_heads_of(p, &appends), 0);
  assert_int_equal(appends, 3);
  check(ir_interp_new(g, 8, mixed_lookup, NULL, &it, &e), &e);
  static const int32_t tokens[] = {3, 1, 4, 1, 5};
  for (int first = 0, T = 3; first < 5; first += T, T = 1) {
    const float *got = rt_program_run(p, tokens + first, T, 2, &e);
    if (!got)
      fail_msg("%s", e.msg);
    ir_binding in = {"tokens", {IR_I32, 1, {T}, tokens + first}};
    check(ir_interp_run(it, T, &in, 1, &e), &e);
    assert_true(max_abs(got, ir_interp_output(it, "logits")->data, T * 16) <= 1e-4f);
  }
  ir_interp_free(it);
  rt_program_free(p);
  cg_jit_free(jit);
  pass_result_free(&r);
  ir_graph_free(g);
}

/* Each pass alone (then plan-memory): the partly fused graphs run too. */
static void test_single_passes(void **state) {
  fixture *f = *state;
  for (int i = 0; i < pass_registry_count; i++) {
    backend b;
    open_backend(f, &b, pass_registry[i].name, (pass_options){.passes = pass_registry[i].name}, f->jit[0]);
    prefill_then_decode(f, &b);
    close_backend(&b);
  }
}

/* Every call's logits (prefill of 7, three decodes) for `threads` threads. */
static float *all_logits(fixture *f, backend *b, int threads) {
  float *all = malloc((size_t)(10 * f->vocab) * sizeof *all);
  assert_non_null(all);
  restart(b);
  const float *l = run_and_compare(f, b, 0, 7, threads, "prefill_logits", 0);
  memcpy(all, l, (size_t)(7 * f->vocab) * sizeof *all);
  for (int step = 0; step < 3; step++) {
    l = run_and_compare(f, b, 7 + step, 1, threads, "decode_logits", step);
    memcpy(all + (7 + step) * f->vocab, l, (size_t)f->vocab * sizeof *all);
  }
  return all;
}

static void threads_bitwise(fixture *f, backend *b) {
  float *one = all_logits(f, b, 1), *two = all_logits(f, b, 2), *three = all_logits(f, b, 3);
  assert_memory_equal(one, two, (size_t)(10 * f->vocab) * sizeof *one);
  assert_memory_equal(one, three, (size_t)(10 * f->vocab) * sizeof *one);
  free(one);
  free(two);
  free(three);
}

static void test_threads_bitwise(void **state) {
  fixture *f = *state;
  threads_bitwise(f, &f->o2);
  backend o0;
  open_backend(f, &o0, "-O0", (pass_options){.level = 0}, f->jit[0]);
  threads_bitwise(f, &o0);
  close_backend(&o0);
}

/* Prefill in two chunks (4 then 3): the cache holds what one prefill computes,
 * so the second chunk's logits are the full prefill's rows 4..6, bit for bit. */
static void test_chunked_prefill(void **state) {
  fixture *f = *state;
  backend *b = &f->o2;
  float *whole = all_logits(f, b, 2);
  restart(b);
  run_and_compare(f, b, 0, 4, 2, "prefill_logits", 0);
  const float *tail = run_and_compare(f, b, 4, 3, 2, "prefill_logits", 4);
  assert_memory_equal(tail, whole + 4 * f->vocab, (size_t)(3 * f->vocab) * sizeof *tail);
  const float *next = run_and_compare(f, b, 7, 1, 2, "decode_logits", 0);
  assert_memory_equal(next, whole + 7 * f->vocab, (size_t)f->vocab * sizeof *next);
  free(whole);
}

static void expect_error(const char *msg, const char *words) {
  if (!strstr(msg, words))
    fail_msg("error \"%s\" lacks \"%s\"", msg, words);
}

/* The executor refuses a kv_append that does not fit its cache, whoever
 * built it (lowering, or a damaged program file). */
static void test_kv_append_checks(void **state) {
  (void)state;
  oc_error e = {{0}};
  rt_program *p;
  int64_t cache;
  check(rt_program_new(64, 4, 8, &p, &e), &e);
  check(rt_program_add_cache(p, 8, true, &cache, &e), &e);
  rt_step s = {.call = RT_CALL_KV_APPEND, .n_args = 2, .work = {0, 1, 0}, .grain = 1, .row_floats = 8,
               .kv_heads = 2, .what = "kv_append",
               .arg = {{RT_ARG_ARENA, 0, NULL, 0}, {RT_ARG_CACHE, cache, NULL, 0}}};
  check(rt_program_add_step(p, &s, &e), &e);
  s.row_floats = 6, s.kv_heads = 0;
  assert_int_equal(rt_program_add_step(p, &s, &e), -1);
  expect_error(e.msg, "step kv_append: rows of 6 values in 0 heads do not fit KV cache 0 (rows of 8)");
  s.row_floats = 8, s.kv_heads = 3;
  assert_int_equal(rt_program_add_step(p, &s, &e), -1);
  expect_error(e.msg, "rows of 8 values in 3 heads do not fit");
  s.kv_heads = 2, s.arg[1] = (rt_arg){.kind = RT_ARG_ARENA};
  assert_int_equal(rt_program_add_step(p, &s, &e), -1);
  expect_error(e.msg, "kv_append writes to a KV cache, its second argument");
  rt_program_free(p);
}

static void test_errors(void **state) {
  fixture *f = *state;
  rt_program *program = f->o2.program;
  oc_error e = {{0}};
  int32_t ids[64] = {0};
  restart(&f->o2);
  assert_non_null(rt_program_run(program, ids, f->ctx - 2, 2, &e));
  assert_null(rt_program_run(program, ids, 3, 2, &e));
  expect_error(e.msg, "context full: P + T = 62 + 3 = 65 exceeds the 64 positions");
  assert_int_equal(rt_program_position(program), f->ctx - 2);
  assert_non_null(rt_program_run(program, ids, 2, 2, &e)); /* exactly full */
  assert_null(rt_program_run(program, ids, 1, 1, &e));
  expect_error(e.msg, "context full");
  restart(&f->o2);
  ids[1] = (int32_t)f->vocab;
  assert_null(rt_program_run(program, ids, 2, 2, &e));
  expect_error(e.msg, "token id 256 is outside the model's vocabulary of 256");
  assert_null(rt_program_run(program, ids, 0, 2, &e));
  expect_error(e.msg, "at least one token");
  assert_int_equal(rt_program_position(program), 0);

  /* the unfused graph lowers; a plan for 8 positions does not serve 16 */
  ir_graph *g;
  pass_result r;
  rt_program *p = NULL;
  check(olmo2_build_graph(&f->config, IR_F32, &g, &e), &e);
  pass_options o = {.passes = "plan-memory", .max_tokens = 8, .max_ctx = 8};
  check(pass_run_pipeline(g, &o, &r, &e), &e);
  check(cg_lower(f->jit[0], g, &r.plan, 8, rt_weights_lookup, f->weights, &p, &e), &e);
  rt_program_free(p);
  p = NULL;
  assert_int_equal(cg_lower(f->jit[0], g, &r.plan, 16, rt_weights_lookup, f->weights, &p, &e), -1);
  assert_null(p);
  expect_error(e.msg, "memory plan");
  pass_result_free(&r);
  ir_graph_free(g);
}

/* f32[7,256] logits of the golden prompt from `olmoc logits -m MODEL ARGS`. */
static float *model_logits(const char *model, const char *args, int i) {
  char cmd[1024], path[256];
  snprintf(path, sizeof path, "%s/%d.npy", tmpdir, i);
  snprintf(cmd, sizeof cmd, "logits -m %s %s --ids 104,59,101,250,152,19,148 -o %s", model, args, path);
  if (olmoc(cmd))
    fail_msg("olmoc %s:\n%s", cmd, out);
  expect_output("f32[7,256]");
  size_t n;
  char *npy = slurp(path, &n);
  size_t header = 10 + (size_t)(unsigned char)npy[8] + 256u * (unsigned char)npy[9];
  assert_int_equal(n - header, 7 * 256 * sizeof(float));
  float *logits = malloc(7 * 256 * sizeof(float));
  memcpy(logits, npy + header, 7 * 256 * sizeof(float));
  free(npy);
  return logits;
}

static float *cli_logits(const char *args, int i) { return model_logits(TINY, args, i); }

/* The command line: --backend jit against --backend interp, and its errors. */
static void test_cli_backends(void **state) {
  (void)state;
  const char *args[] = {"--backend interp", "--backend jit -t 1", "--backend jit -t 2", "--backend interp -O0",
                        "--backend jit -O0", "--backend jit -O1", "--backend jit --passes=dce",
                        "--backend jit --target avx2"};
  float *logits[COUNT(args)];
  for (int i = 0; i < COUNT(args); i++)
    logits[i] = cli_logits(args[i], i);
  for (int i = 1; i < COUNT(args); i++) {
    float worst = max_abs(logits[0], logits[i], 7 * 256);
    printf("olmoc logits %s vs --backend interp: max abs %.3g\n", args[i], worst);
    assert_true(worst <= TOLERANCE);
  }
  assert_memory_equal(logits[1], logits[2], 7 * 256 * sizeof(float));
  for (int i = 0; i < COUNT(args); i++)
    free(logits[i]);

  assert_int_equal(olmoc("logits -m " TINY " --backend gpu --ids 1 -o /dev/null"), 1);
  expect_output("--backend: expected jit or interp, found 'gpu'");
  assert_int_equal(olmoc("logits -m " TINY " --backend jit --ids 1,256 -o /dev/null"), 1);
  expect_output("token id 256 is outside the model's vocabulary of 256");
  assert_int_equal(olmoc("logits -m " TINY " --backend jit --target sse2 --ids 1 -o /dev/null"), 1);
  expect_output("--target: expected native or avx2, found 'sse2'");
  assert_int_equal(olmoc("logits -m " TINY " --backend interp --target avx2 --ids 1 -o /dev/null"), 1);
  expect_output("--target picks the JIT's instruction set: it needs --backend jit");
}

/* ---- an f32 checkpoint run in bf16 ---- */

/* The logits of `-m A ARGS_A` and `-m B ARGS_B`, bit for bit. */
static void same_bits(const char *a, const char *args_a, const char *b, const char *args_b) {
  float *x = model_logits(a, args_a, 0), *y = model_logits(b, args_b, 1);
  if (memcmp(x, y, 7 * 256 * sizeof *x))
    fail_msg("-m %s %s and -m %s %s: logits differ (max abs %.3g)", a, args_a, b, args_b, max_abs(x, y, 7 * 256));
  free(x), free(y);
}

/* tests/data/tiny (f32) with --dtype bf16 gives what the same weights
 * converted to a bf16 checkpoint give: the matmul weights rounded as they
 * are packed (into memory or streamed into a file, panels of 16 or 8
 * columns), the embedding and the norms rounded where they are copied;
 * unfused and fused, on 1 and 2 threads, with the head tied to the
 * embedding too, and from f16. --compute bf16 alone rounds them as
 * --dtype bf16 does. */
static void test_bf16_from_f32(void **state) {
  (void)state;
  static const char *modes[] = {"-t 1", "-O0", "--target avx2", "--pack-weights file"};
  for (int i = 0; i < COUNT(modes); i++) {
    char args[128];
    snprintf(args, sizeof args, "--dtype bf16 %s", modes[i]);
    same_bits(TINY, args, bf16, modes[i]);
  }
  same_bits(TINY, "--dtype bf16 -t 2", bf16, "-t 1");
  same_bits(tied32, "--dtype bf16", tied16, "");
  same_bits(tied32, "--dtype bf16 -O0", tied16, "-O0");
  same_bits(f16, "--dtype bf16", f16_bf16, "");
  float *f32 = model_logits(TINY, "", 0), *rounded = model_logits(TINY, "--dtype bf16", 1);
  assert_true(memcmp(f32, rounded, 7 * 256 * sizeof *f32) != 0); /* the rounding happened */
  free(f32), free(rounded);
  if (!has_bf16_dot())
    return;
  same_bits(TINY, "--dtype bf16 --compute bf16 -t 1", bf16, "--compute bf16 -t 1");
  same_bits(TINY, "--compute bf16 -t 2", bf16, "--compute bf16 -t 1");
  same_bits(tied32, "--compute bf16", tied16, "--compute bf16");
  same_bits(f16, "--compute bf16", f16_bf16, "--compute bf16");
}

static void test_bf16_from_f32_refusals(void **state) {
  (void)state;
  assert_int_equal(olmoc("logits -m " TINY " --backend interp --dtype bf16 --ids 1 -o /dev/null"), 1);
  expect_output("--dtype bf16 rounds these f32 weights as the JIT packs them: add --backend jit");
  assert_int_equal(olmoc("logits -m " TINY " --dtype f16 --ids 1 -o /dev/null"), 1);
  expect_output("--dtype: expected bf16, q8, q4 or the checkpoint's own f32, found 'f16'");
  assert_int_equal(olmoc("logits -m " TINY " --dtype f32 --compute bf16 --ids 1 -o /dev/null"), 1);
  expect_output("--compute bf16 needs bf16 weights, and these are f32: give --dtype bf16 or none");
  char args[512];
  snprintf(args, sizeof args, "logits -m %s --dtype f32 --ids 1 -o /dev/null", bf16);
  assert_int_equal(olmoc(args), 1);
  expect_output("--dtype: expected q8, q4 or the checkpoint's own bf16, found 'f32'");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_levels_and_targets),
      cmocka_unit_test(test_single_passes),
      cmocka_unit_test(test_cache_layout),
      cmocka_unit_test(test_mixed_cache_layouts),
      cmocka_unit_test(test_kv_append_checks),
      cmocka_unit_test(test_threads_bitwise),
      cmocka_unit_test(test_chunked_prefill),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_cli_backends),
      cmocka_unit_test(test_bf16_from_f32),
      cmocka_unit_test(test_bf16_from_f32_refusals),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
