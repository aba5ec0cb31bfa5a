/* `olmoc ir` with passes and `olmoc passes`, run as a user would: the stats
 * table names every pass and the memory table, --print-after-all dumps a
 * hand-written graph after each pass (to stderr or numbered files), and a
 * wrong pass name is a clear usage error. */
#include "cli_harness.h"
#include "olmoc/passes.h"

static void test_stats_on_7b(void **state) {
  (void)state;
  assert_int_equal(olmoc("ir -m models/olmo2-7b -O2 --print-stats --emit summary"), 0);
  for (int i = 0; i < pass_registry_count; i++)
    expect_output(pass_registry[i].name);
  expect_output("fuse-rmsnorm             2516     1870      129");
  expect_output("fuse-attention           1486     1229       32");
  expect_output("planned MiB");
  expect_output("rmsnorm:65 rmsnorm_add:64 rope:64 matmul_swiglu:32 attention:32");
}

static void test_print_after_all(void **state) {
  (void)state;
  assert_int_equal(olmoc("ir tests/data/ir/rmsnorm.ir --passes=fuse-rmsnorm --print-after-all"), 0);
  expect_output("# *** IR after pass 1: fuse-rmsnorm ***");
  expect_output("%2 = rmsnorm %0, %1 {value=1e-06} : f32[T,64]");
  char args[512], path[512];
  snprintf(args, sizeof args,
           "ir tests/data/ir/rmsnorm.ir --passes=dce,fuse-rmsnorm --print-after-all --dump-dir %s",
           tmpdir);
  assert_int_equal(olmoc(args), 0);
  snprintf(path, sizeof path, "%s/02-fuse-rmsnorm.ir", tmpdir);
  assert_int_equal(access(path, R_OK), 0);
  snprintf(path, sizeof path, "%s/01-dce.ir", tmpdir);
  assert_int_equal(access(path, R_OK), 0);
  assert_int_equal(olmoc("ir tests/data/ir/mlp.ir -O2 --print-after=fuse-elementwise"), 0);
  expect_output("# *** IR after pass 10: fuse-elementwise ***");
  assert_int_equal(olmoc("ir tests/data/ir/mlp.ir -O1 --disable-pass=dce --disable-pass=cse --print-stats"), 0);
  assert_null(strstr(out, "\ndce "));
  expect_output("fuse-swiglu");
}

static void test_bad_pass_names(void **state) {
  (void)state;
  assert_int_equal(olmoc("ir tests/data/ir/rmsnorm.ir --passes=fuse-rmsnorm,fuse-nothing"), 1);
  expect_output("--passes: unknown pass 'fuse-nothing' (`olmoc passes` lists them)");
  assert_int_equal(olmoc("ir tests/data/ir/rmsnorm.ir --disable-pass=nope"), 1);
  expect_output("--disable-pass: unknown pass 'nope'");
  assert_int_equal(olmoc("ir tests/data/ir/rmsnorm.ir -O2 --passes=dce"), 2);
  expect_output("give either -O or --passes=, not both");
  assert_int_equal(olmoc("ir tests/data/ir/rmsnorm.ir --passes=dce --print-after-all --dump-dir /dev/null/dir"), 1);
  expect_output("--dump-dir: /dev/null/dir/01-dce.ir: cannot create: Not a directory");
}

static void test_passes_list(void **state) {
  (void)state;
  assert_int_equal(olmoc("passes"), 0);
  for (int i = 0; i < pass_registry_count; i++) {
    expect_output(pass_registry[i].name);
    expect_output(pass_registry[i].summary);
  }
  assert_int_equal(olmoc("passes extra"), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stats_on_7b),
      cmocka_unit_test(test_print_after_all),
      cmocka_unit_test(test_bad_pass_names),
      cmocka_unit_test(test_passes_list),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
