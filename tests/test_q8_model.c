/* --dtype q8 on the bundled model (models/olmo2-tiny, bf16): held-out
 * perplexity within 1% of the checkpoint's own dtype, the same logits bits on
 * 1 and 2 threads, and clear refusals of what q8 does not do. */
#include <math.h>

#include "cli_harness.h"

#define MODEL "models/olmo2-tiny"

static double perplexity_printed(void) {
  const char *at = strstr(out, "perplexity: ");
  if (!at)
    fail_msg("no perplexity in:\n%s", out);
  return atof(at + strlen("perplexity: "));
}

static void test_heldout_perplexity(void **state) {
  (void)state;
  assert_int_equal(olmoc("perplexity -f " MODEL "/heldout.txt --ctx 256 --backend jit"), 0);
  double own = perplexity_printed();
  assert_int_equal(olmoc("perplexity -f " MODEL "/heldout.txt --ctx 256 --backend jit --dtype q8"), 0);
  double q8 = perplexity_printed();
  printf("held-out perplexity, --ctx 256: bf16 %.4f, q8 %.4f (%+.3f%%)\n", own, q8, 100 * (q8 / own - 1));
  assert_true(fabs(q8 - own) <= 0.01 * own);
}

/* The logits of `olmoc logits ARGS` into tmpdir/NAME.npy, as bytes. */
static char *logits(const char *args, const char *name, size_t *n) {
  char cmd[1024], path[256];
  snprintf(path, sizeof path, "%s/%s.npy", tmpdir, name);
  snprintf(cmd, sizeof cmd, "logits -m " MODEL " --backend jit --dtype q8 %s -o %s", args, path);
  assert_int_equal(olmoc(cmd), 0);
  return slurp(path, n);
}

static void test_threads_same_bits(void **state) {
  (void)state;
  size_t n1, n2;
  char *one = logits("--ids 5,17,300,4000,1,2,3,99,512,7,7,7,1000,2048,3333,12,13 -t 1", "t1", &n1);
  char *two = logits("--ids 5,17,300,4000,1,2,3,99,512,7,7,7,1000,2048,3333,12,13 -t 2", "t2", &n2);
  assert_int_equal(n1, n2);
  assert_memory_equal(one, two, n1);
  free(one), free(two);
}

static void test_refusals(void **state) {
  (void)state;
  assert_int_equal(olmoc("perplexity -f " MODEL "/heldout.txt --dtype q8"), 1);
  expect_output("add --backend jit");
  assert_int_equal(olmoc("run -p Hi -n 1 --dtype f16"), 1);
  expect_output("expected q8 or the checkpoint's own bf16, found 'f16'");
  assert_int_equal(olmoc("run -p Hi -n 4 --temp 0 --dtype q8"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_heldout_perplexity),
      cmocka_unit_test(test_threads_same_bits),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
