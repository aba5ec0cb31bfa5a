/* The driver's options (driver/options.c): what drv_configure makes of a
 * request for each backend, what drv_weights_dtype makes of stored weights,
 * and that every command that opens a model (run, logits, perplexity,
 * bench, compile) gives the same message for the same mistake. */
#include "cli_harness.h"

#include "olmoc/driver.h"

static drv_config configure(drv_request r, drv_backend b) {
  drv_config c;
  oc_error e;
  if (drv_configure(&r, b, &c, &e))
    fail_msg("%s", e.msg);
  return c;
}

static void refused(drv_request r, drv_backend b, const char *words) {
  drv_config c;
  oc_error e = {{0}};
  assert_int_equal(drv_configure(&r, b, &c, &e), -1);
  if (!strstr(e.msg, words))
    fail_msg("message '%s', expected '%s'", e.msg, words);
}

static void test_defaults(void **state) {
  (void)state;
  drv_config c = configure((drv_request){0}, DRV_JIT);
  assert_int_equal(c.backend, DRV_JIT);
  assert_int_equal(c.level, 2);
  assert_null(c.passes);
  assert_true(c.threads >= 1);
  assert_string_equal(c.target, "native");
  assert_int_equal(c.weights, DRV_AS_STORED);
  assert_false(c.bf16_compute);
  assert_false(c.kv_bf16);
  assert_int_equal(c.ctx, 0);
  c = configure((drv_request){.backend = "jit", .o0 = true, .threads = 1, .dtype = "q8", .compute = "bf16",
                              .kv_cache = "bf16", .target = "avx2", .ctx = 64},
                DRV_INTERP);
  assert_int_equal(c.backend, DRV_JIT);
  assert_int_equal(c.level, 0);
  assert_int_equal(c.threads, 1);
  assert_string_equal(c.notice, "");
  assert_int_equal(c.weights, DRV_Q8);
  assert_true(c.bf16_compute && c.kv_bf16);
  assert_string_equal(c.target, "avx2");
  assert_int_equal(c.ctx, 64);
  assert_int_equal(configure((drv_request){.backend = "interp"}, DRV_JIT).backend, DRV_INTERP);
  /* more threads than processors: the processors, with a notice saying so */
  c = configure((drv_request){.threads = 1000}, DRV_JIT);
  assert_int_equal(c.threads, rt_default_threads());
  char notice[192];
  snprintf(notice, sizeof notice, "-t 1000: this machine runs %d threads at once; using %d", c.threads, c.threads);
  assert_string_equal(c.notice, notice);
  assert_int_equal(configure((drv_request){.o1 = true}, DRV_OBJECT).level, 1);
}

static void test_refusals(void **state) {
  (void)state;
  refused((drv_request){.o0 = true, .passes = "dce"}, DRV_JIT, "give one of -O0, -O1, -O2 and --passes");
  refused((drv_request){.backend = "gpu"}, DRV_JIT, "--backend: expected jit or interp, found 'gpu'");
  refused((drv_request){.backend = "jit"}, DRV_OBJECT, "--backend: a compiled model runs its own kernels");
  refused((drv_request){.dtype = "q3"}, DRV_OBJECT, "--dtype: expected f32, bf16, q8 or q4, found 'q3'");
  refused((drv_request){.compute = "f16"}, DRV_JIT, "--compute: expected f32 or bf16, found 'f16'");
  refused((drv_request){.kv_cache = "q8"}, DRV_JIT, "--kv-cache: expected f32 or bf16, found 'q8'");
  refused((drv_request){.target = "arm"}, DRV_OBJECT, "--target: expected native or avx2, found 'arm'");
  refused((drv_request){.pack_weights = "disk"}, DRV_JIT, "--pack-weights");
  refused((drv_request){.emit_llvm = "/tmp"}, DRV_INTERP, "--emit-llvm writes the JIT's kernels");
  refused((drv_request){.target = "avx2"}, DRV_INTERP, "--target picks the JIT's instruction set");
  refused((drv_request){.pack_weights = "file"}, DRV_INTERP, "--pack-weights places the JIT's packed weights");
  refused((drv_request){.dtype = "q8"}, DRV_INTERP, "--dtype q8 runs on the JIT's int8 kernels");
  refused((drv_request){.kv_cache = "bf16"}, DRV_INTERP, "--kv-cache bf16 is the JIT's cache layout");
  refused((drv_request){.compute = "bf16"}, DRV_INTERP, "--compute bf16 runs on the JIT's vdpbf16ps kernels");
  refused((drv_request){.threads = -2}, DRV_JIT, "must not be negative");
}

static void weights(drv_request r, drv_backend b, ir_dtype stored, bool convert, ir_dtype want, bool want_q8) {
  drv_config c = configure(r, b);
  ir_dtype dtype;
  bool q8;
  oc_error e;
  if (drv_weights_dtype(&c, stored, convert, &dtype, &q8, &e))
    fail_msg("%s", e.msg);
  assert_int_equal(dtype, want);
  assert_int_equal(q8, want_q8);
}

static void weights_refused(drv_request r, ir_dtype stored, bool convert, const char *words) {
  drv_config c = configure(r, convert ? DRV_OBJECT : DRV_JIT);
  ir_dtype dtype;
  bool q8;
  oc_error e = {{0}};
  assert_int_equal(drv_weights_dtype(&c, stored, convert, &dtype, &q8, &e), -1);
  if (!strstr(e.msg, words))
    fail_msg("message '%s', expected '%s'", e.msg, words);
}

static void test_weights_dtype(void **state) {
  (void)state;
  /* the JIT and the interpreter: as stored, or q8 from it; the JIT rounds
   * f32 and f16 to bf16 (--compute bf16 alone asks for bf16 too) */
  weights((drv_request){0}, DRV_JIT, IR_F16, false, IR_F16, false);
  weights((drv_request){.dtype = "bf16"}, DRV_INTERP, IR_BF16, false, IR_BF16, false);
  weights((drv_request){.dtype = "q8"}, DRV_JIT, IR_BF16, false, IR_BF16, true);
  weights((drv_request){.dtype = "bf16", .compute = "bf16"}, DRV_JIT, IR_BF16, false, IR_BF16, false);
  weights((drv_request){.dtype = "bf16"}, DRV_JIT, IR_F32, false, IR_BF16, false);
  weights((drv_request){.dtype = "bf16"}, DRV_JIT, IR_F16, false, IR_BF16, false);
  weights((drv_request){.compute = "bf16"}, DRV_JIT, IR_F32, false, IR_BF16, false);
  weights((drv_request){.dtype = "bf16", .compute = "bf16"}, DRV_JIT, IR_F32, false, IR_BF16, false);
  /* compile: converted to f32 or bf16; f16 becomes f32 */
  weights((drv_request){0}, DRV_OBJECT, IR_F16, true, IR_F32, false);
  weights((drv_request){.dtype = "bf16"}, DRV_OBJECT, IR_F32, true, IR_BF16, false);
  weights((drv_request){.dtype = "f32"}, DRV_OBJECT, IR_BF16, true, IR_F32, false);
  weights((drv_request){.dtype = "q8"}, DRV_OBJECT, IR_BF16, true, IR_BF16, true);
  weights((drv_request){.compute = "bf16"}, DRV_OBJECT, IR_F32, true, IR_BF16, false);
  weights_refused((drv_request){.dtype = "f32"}, IR_BF16, false,
                  "--dtype: expected q8, q4 or the checkpoint's own bf16, found 'f32'");
  weights_refused((drv_request){.dtype = "f16"}, IR_F32, false,
                  "--dtype: expected bf16, q8, q4 or the checkpoint's own f32, found 'f16'");
  weights_refused((drv_request){.dtype = "f16"}, IR_BF16, true,
                  "--dtype: expected f32, bf16, q8 or q4, found 'f16'");
  weights_refused((drv_request){.compute = "bf16", .dtype = "f32"}, IR_F32, false,
                  "--compute bf16 needs bf16 weights, and these are f32: give --dtype bf16 or none");
  weights_refused((drv_request){.compute = "bf16", .dtype = "f32"}, IR_BF16, true,
                  "--compute bf16 needs bf16 weights, and these are f32: give --dtype bf16 or none");
  weights_refused((drv_request){.compute = "bf16", .dtype = "q8"}, IR_BF16, true,
                  "--compute bf16 needs bf16 weights, and these are q8");
  /* the interpreter reads weights as stored */
  drv_config c = configure((drv_request){.backend = "interp", .dtype = "bf16"}, DRV_JIT);
  ir_dtype dtype;
  bool q8;
  oc_error e = {{0}};
  assert_int_equal(drv_weights_dtype(&c, IR_F32, false, &dtype, &q8, &e), -1);
  assert_string_equal(e.msg, "--dtype bf16 rounds these f32 weights as the JIT packs them: add --backend jit "
                             "(the interpreter reads weights as stored)");
}

/* The same mistake on every command that opens a model: the same words. */
static void same_everywhere(const char *mistake, const char *words) {
  static const char *commands[] = {
      "run -p Hi -n 1",
      "logits --backend jit --ids 1,2 -o /dev/null",
      "perplexity --backend jit -f models/olmo2-tiny/heldout.txt --max-tokens 16",
      "bench -m tests/data/dolma-tiny",
      "compile -o /nonexistent/never",
  };
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
    char args[512];
    snprintf(args, sizeof args, "%s %s", commands[i], mistake);
    int rc = olmoc(args);
    if (rc == 0 || !strstr(out, words))
      fail_msg("olmoc %s: exit %d, output lacks \"%s\":\n%.2000s", args, rc, words, out);
  }
}

static void test_one_message_per_mistake(void **state) {
  (void)state;
  same_everywhere("--dtype q3", "--dtype: expected f32, bf16, q8 or q4, found 'q3'");
  same_everywhere("--compute fp8", "--compute: expected f32 or bf16, found 'fp8'");
  same_everywhere("--kv-cache int4", "--kv-cache: expected f32 or bf16, found 'int4'");
  same_everywhere("--target sse2", "--target: expected native or avx2, found 'sse2'");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_weights_dtype),
      cmocka_unit_test(test_one_message_per_mistake),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
