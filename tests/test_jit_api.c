/* The JIT's public C API (olmoc/olmoc.h) on the bundled model: the logits
 * of olmoc_eval are the pipeline's bits (the same as `olmoc logits`), the
 * greedy text of olmoc_generate is `olmoc run --temp 0`'s, the callback can
 * stop a generation, a bad option gets the command line's message, the
 * model widened to an f32 checkpoint and loaded with dtype "bf16" gives the
 * bundled bf16 model's bits, and the example program examples/jit_generate.c
 * prints what `olmoc run` prints. */
#include "cli_harness.h"
#include "checkpoint_harness.h"

#include "olmoc/driver.h"
#include "olmoc/olmoc.h"

#define MODEL "models/olmo2-tiny"
#define PROMPT "The jury said that the city is"

static olmoc_model *load(const olmoc_load_options *o) {
  olmoc_model *m;
  olmoc_status s = olmoc_load(MODEL, o, &m);
  if (s != OLMOC_OK)
    fail_msg("olmoc_load: %s (status %d)", olmoc_errmsg(m), (int)s);
  return m;
}

static size_t tokenize(olmoc_model *m, const char *text, int32_t *ids, size_t cap) {
  size_t n;
  assert_int_equal(olmoc_tokenize(m, text, strlen(text), ids, cap, &n), OLMOC_OK);
  assert_true(n > 0 && n <= cap);
  return n;
}

/* The logits of olmoc_eval against the driver's own model opened with the
 * same options: the same bits, for the JIT and the interpreter. */
static void eval_is_the_pipeline(const char *backend, drv_backend b) {
  olmoc_load_options o = olmoc_default_load_options();
  o.backend = backend;
  olmoc_model *m = load(&o);
  int32_t ids[64];
  size_t n = tokenize(m, PROMPT, ids, 64);
  const float *got;
  assert_int_equal(olmoc_eval(m, ids, n, &got), OLMOC_OK);
  assert_int_equal(olmoc_position(m), (int64_t)n);
  drv_config c;
  drv_model dm;
  oc_error e;
  assert_int_equal(drv_configure(&(drv_request){0}, b, &c, &e), 0);
  if (drv_model_open(&dm, MODEL, &c, false, &e))
    fail_msg("%s", e.msg);
  const float *want = dm.model.forward(dm.model.self, ids, (int64_t)n, &e);
  assert_non_null(want);
  assert_memory_equal(got, want, n * (size_t)olmoc_vocab_size(m) * sizeof *got);
  drv_model_close(&dm);
  olmoc_free(m);
}

static void test_eval_jit(void **state) {
  (void)state;
  eval_is_the_pipeline(NULL, DRV_JIT);
}

static void test_eval_interp(void **state) {
  (void)state;
  eval_is_the_pipeline("interp", DRV_INTERP);
}

typedef struct collected {
  char text[4096];
  size_t len;
  olmoc_model *m;
  int stop_after; /* 0: never */
  int seen;
} collected;

static int collect(void *user, int32_t id) {
  collected *c = user;
  size_t len;
  const char *bytes = olmoc_token_bytes(c->m, id, &len);
  assert_non_null(bytes);
  assert_true(c->len + len < sizeof c->text);
  memcpy(c->text + c->len, bytes, len);
  c->text[c->len += len] = '\0';
  return ++c->seen == c->stop_after;
}

static void test_generate_is_run(void **state) {
  (void)state;
  olmoc_model *m = load(NULL);
  int32_t ids[64];
  size_t n = tokenize(m, "The jury said", ids, 64);
  olmoc_sampling greedy = {.temperature = 0, .top_p = 1, .repetition_penalty = 1};
  collected c = {.m = m};
  olmoc_generation g;
  assert_int_equal(olmoc_generate(m, ids, n, &greedy, 24, collect, &c, &g), OLMOC_OK);
  assert_int_equal(g.prompt_tokens, (int64_t)n);
  assert_int_equal(g.generated_tokens, 24);
  assert_int_equal(g.stop, OLMOC_STOP_LENGTH);
  assert_int_equal(olmoc_position(m), (int64_t)n + 23); /* the last token is chosen, not run */
  assert_int_equal(olmoc("run -p 'The jury said' -n 24 --temp 0 2>/dev/null"), 0);
  char want[4200];
  snprintf(want, sizeof want, "The jury said%s", c.text);
  assert_string_equal(out, want);

  /* the callback stops it, and a rewound cache gives the same tokens */
  olmoc_reset(m);
  collected stopped = {.m = m, .stop_after = 3};
  assert_int_equal(olmoc_generate(m, ids, n, &greedy, 24, collect, &stopped, &g), OLMOC_OK);
  assert_int_equal(g.stop, OLMOC_STOP_CALLER);
  assert_int_equal(g.generated_tokens, 3);
  assert_memory_equal(stopped.text, c.text, stopped.len);
  olmoc_free(m);
}

/* Threads as the command line bounds them: negative or above 1024 refused
 * by name; above the cores run as many as the cores (100000 once overflowed
 * the stack in the OpenMP runtime); the logits the same bits whatever. */
static void test_threads(void **state) {
  (void)state;
  olmoc_model *m = load(NULL);
  int32_t ids[64];
  size_t n = tokenize(m, PROMPT, ids, 64), bytes = n * (size_t)olmoc_vocab_size(m) * sizeof(float);
  assert_int_equal(olmoc_set_threads(m, -1), OLMOC_ERROR_ARGUMENT);
  assert_non_null(strstr(olmoc_errmsg(m), "threads: -1 is negative"));
  assert_int_equal(olmoc_set_threads(m, 100000), OLMOC_ERROR_ARGUMENT);
  assert_non_null(strstr(olmoc_errmsg(m), "threads: 100000 is more than 1024"));
  const float *got;
  assert_int_equal(olmoc_set_threads(m, 1), OLMOC_OK);
  assert_int_equal(olmoc_eval(m, ids, n, &got), OLMOC_OK);
  float *one = malloc(bytes);
  assert_non_null(one);
  memcpy(one, got, bytes);
  assert_int_equal(olmoc_set_threads(m, 1024), OLMOC_OK);
  assert_int_equal(olmoc_rewind(m, 0), OLMOC_OK);
  assert_int_equal(olmoc_eval(m, ids, n, &got), OLMOC_OK);
  assert_memory_equal(got, one, bytes);
  free(one);
  olmoc_free(m);
}

static void test_context(void **state) {
  (void)state;
  olmoc_load_options o = olmoc_default_load_options();
  o.context = 8;
  olmoc_model *m = load(&o);
  assert_int_equal(olmoc_context_size(m), 8);
  int32_t ids[64];
  size_t n = tokenize(m, "The jury said that the city is not at all what it was", ids, 64);
  assert_true(n > 8);
  olmoc_sampling greedy = {.temperature = 0, .top_p = 1, .repetition_penalty = 1};
  assert_int_equal(olmoc_generate(m, ids, n, &greedy, 4, NULL, NULL, NULL), OLMOC_ERROR_CONTEXT);
  if (!strstr(olmoc_errmsg(m), "the KV cache has room for 8 more"))
    fail_msg("errmsg: %s", olmoc_errmsg(m));
  olmoc_generation g;
  assert_int_equal(olmoc_generate(m, ids, 4, &greedy, -1, NULL, NULL, &g), OLMOC_OK);
  assert_int_equal(g.stop, OLMOC_STOP_CONTEXT);
  olmoc_free(m);
}

/* A mistake in the options: the status, and the message `olmoc run` gives. */
static void refused(olmoc_load_options o, const char *run_args, const char *words) {
  olmoc_model *m;
  assert_int_equal(olmoc_load(MODEL, &o, &m), OLMOC_ERROR_ARGUMENT);
  if (!strstr(olmoc_errmsg(m), words))
    fail_msg("errmsg: %s, expected %s", olmoc_errmsg(m), words);
  const float *logits;
  int32_t id = 1;
  assert_int_equal(olmoc_eval(m, &id, 1, &logits), OLMOC_ERROR_ARGUMENT);
  olmoc_free(m);
  if (run_args) {
    char args[256];
    snprintf(args, sizeof args, "run -p Hi -n 1 %s", run_args);
    assert_int_equal(olmoc(args), 1);
    expect_output(words);
  }
}

static void test_bad_options(void **state) {
  (void)state;
  olmoc_load_options o = olmoc_default_load_options();
  o.dtype = "q3";
  refused(o, "--dtype q3", "--dtype: expected f32, bf16, q8 or q4, found 'q3'");
  o = olmoc_default_load_options(), o.dtype = "f16";
  refused(o, "--dtype f16", "--dtype: expected q8, q4 or the checkpoint's own bf16, found 'f16'");
  o = olmoc_default_load_options(), o.backend = "gpu";
  refused(o, "--backend gpu", "--backend: expected jit or interp, found 'gpu'");
  o = olmoc_default_load_options(), o.backend = "interp", o.kv_cache = "bf16";
  refused(o, "--backend interp --kv-cache bf16", "--kv-cache bf16 is the JIT's cache layout: add --backend jit");
  o = olmoc_default_load_options(), o.target = "sse2";
  refused(o, "--target sse2", "--target: expected native or avx2, found 'sse2'");
  o = olmoc_default_load_options(), o.opt_level = "3";
  refused(o, NULL, "opt_level: expected 0, 1 or 2, found '3'");
  o = olmoc_default_load_options(), o.opt_level = "1", o.passes = "dce";
  refused(o, "-O1 --passes dce", "give one of -O0, -O1, -O2 and --passes");
  o = olmoc_default_load_options(), o.threads = -1;
  refused(o, NULL, "must not be negative");
}

/* The bundled model's weights widened to f32 (exactly) and rounded back at
 * load by dtype "bf16" (to the same bits): the bundled model's logits, on
 * the JIT; the interpreter, which reads weights as stored, refuses. */
static void test_bf16_from_f32(void **state) {
  (void)state;
  char f32[256];
  snprintf(f32, sizeof f32, "%s/f32", tmpdir);
  write_checkpoint(MODEL, f32, IR_F32, false);
  olmoc_model *m = load(NULL), *w;
  olmoc_load_options o = olmoc_default_load_options();
  o.dtype = "bf16";
  assert_int_equal(olmoc_load(f32, &o, &w), OLMOC_OK);
  int32_t ids[64];
  size_t n = tokenize(m, PROMPT, ids, 64), bytes = n * (size_t)olmoc_vocab_size(m) * sizeof(float);
  const float *want, *got;
  assert_int_equal(olmoc_eval(m, ids, n, &want), OLMOC_OK);
  assert_int_equal(olmoc_eval(w, ids, n, &got), OLMOC_OK);
  assert_memory_equal(got, want, bytes);
  olmoc_free(w);
  olmoc_free(m);
  o.backend = "interp";
  assert_int_equal(olmoc_load(f32, &o, &w), OLMOC_ERROR_ARGUMENT);
  if (!strstr(olmoc_errmsg(w), "--dtype bf16 rounds these f32 weights as the JIT packs them: add --backend jit"))
    fail_msg("errmsg: %s", olmoc_errmsg(w));
  olmoc_free(w);
}

static void test_missing_checkpoint(void **state) {
  (void)state;
  olmoc_model *m;
  assert_int_equal(olmoc_load("/nonexistent/model", NULL, &m), OLMOC_ERROR_WEIGHTS);
  if (!strstr(olmoc_errmsg(m), "/nonexistent/model"))
    fail_msg("errmsg: %s", olmoc_errmsg(m));
  const float *logits;
  int32_t id = 1;
  assert_int_equal(olmoc_eval(m, &id, 1, &logits), OLMOC_ERROR_ARGUMENT);
  if (!strstr(olmoc_errmsg(m), "/nonexistent/model")) /* not "needs ids": the open's message stays */
    fail_msg("errmsg after eval: %s", olmoc_errmsg(m));
  olmoc_free(m);
  assert_int_equal(olmoc_load(NULL, NULL, &m), OLMOC_ERROR_ARGUMENT);
  olmoc_free(m);
}

static void test_example(void **state) {
  (void)state;
  char cmd[1024], log[300];
  snprintf(log, sizeof log, "%s/example", tmpdir);
  snprintf(cmd, sizeof cmd, "%s/jit_generate " MODEL " 'The jury said' 24 >%s 2>%s.err", OLMOC_BUILD_DIR, log, log);
  assert_int_equal(system(cmd), 0);
  size_t n;
  char *text = slurp(log, &n);
  assert_int_equal(olmoc("run -p 'The jury said' -n 24 --temp 0 2>/dev/null"), 0);
  assert_true(n > 0 && text[n - 1] == '\n');
  text[n - 1] = '\0';
  assert_string_equal(text, out);
  free(text);
  snprintf(log + strlen(log), sizeof log - strlen(log), ".err");
  char *err = slurp(log, &n);
  if (!strstr(err, "generated 24 tokens") || !strstr(err, "log-likelihood of the last"))
    fail_msg("stderr: %s", err);
  free(err);
  snprintf(cmd, sizeof cmd, "%s/jit_generate /nonexistent 'Hi' >/dev/null 2>%s", OLMOC_BUILD_DIR, log);
  assert_int_not_equal(system(cmd), 0);
  err = slurp(log, &n);
  if (!strstr(err, "/nonexistent"))
    fail_msg("stderr: %s", err);
  free(err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_eval_jit),        cmocka_unit_test(test_eval_interp),
      cmocka_unit_test(test_generate_is_run), cmocka_unit_test(test_context),
      cmocka_unit_test(test_bad_options),     cmocka_unit_test(test_missing_checkpoint),
      cmocka_unit_test(test_example),         cmocka_unit_test(test_threads),
      cmocka_unit_test(test_bf16_from_f32),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
