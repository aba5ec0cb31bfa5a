/* Every file the olmoc command writes (ir -o, --dump-dir, logits -o,
 * checkpoint -o, --emit-llvm) and its standard output: a full disk
 * (/dev/full), a directory that cannot be written and a write cut short
 * (a file size limit) each end in a message naming the file and the cause
 * and a non-zero exit, leave no partial or temporary file, and leave a file
 * that was there before as it was. Devices are written in place, never
 * replaced. */
#include <stdbool.h>
#include <sys/stat.h>

#include "cli_harness.h"

/* Runs `sh -c 'PREFIX exec olmoc ARGS'` with stderr (and stdout unless ARGS
 * redirects it) captured into `out`; returns the exit code. */
static int olmoc_sh(const char *prefix, const char *args) {
  char cmd[4096], log[256];
  snprintf(log, sizeof log, "%s/log", tmpdir);
  snprintf(cmd, sizeof cmd, "sh -c '%s exec %s/olmoc %s' >%s 2>&1", prefix, OLMOC_BUILD_DIR, args,
           log);
  int status = system(cmd);
  FILE *f = fopen(log, "rb");
  assert_non_null(f);
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  fclose(f);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Writes above 8 KiB fail with EFBIG ("File too large"), the signal ignored. */
#define SMALL_DISK "trap \"\" XFSZ; ulimit -f 16;"

/* Files in dir whose name has ".tmp." in it. */
static int temporaries(const char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "ls -a %s | grep -c '[.]tmp[.]' >%s/count", dir, tmpdir);
  system(cmd);
  snprintf(cmd, sizeof cmd, "%s/count", tmpdir);
  size_t n;
  char *text = slurp(cmd, &n);
  int count = atoi(text);
  free(text);
  return count;
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static void expect_device(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_true(S_ISCHR(st.st_mode));
}

/* /dev/full: every writer, and standard output of every command. */
static void test_disk_full(void **state) {
  (void)state;
  assert_int_equal(olmoc("logits -m tests/data/tiny --ids 1,2 -o /dev/full"), 1);
  expect_output("olmoc logits: /dev/full: cannot write: No space left on device");
  assert_int_equal(olmoc("ir -m models/olmo2-1b -o /dev/full"), 1);
  expect_output("olmoc ir: /dev/full: cannot write: No space left on device");
  static const char *const to_stdout[] = {
      "run -p Hi -n 2 --temp 0 --backend interp", "tokenize Hello", "ir -m models/olmo2-1b",
      "perplexity -f models/olmo2-tiny/heldout.txt --max-tokens 40", "passes", "version",
  };
  for (size_t i = 0; i < sizeof to_stdout / sizeof *to_stdout; i++) {
    char args[512];
    snprintf(args, sizeof args, "%s >/dev/full", to_stdout[i]);
    assert_int_equal(olmoc_sh("", args), 1);
    expect_output("standard output: cannot write: No space left on device");
  }
  expect_device("/dev/full");
}

/* A directory that cannot be written: nothing is created, and the message
 * names the path. As root, permissions do not stop a write, so the
 * "directory" is a regular file then. */
static void test_unwritable_directory(void **state) {
  (void)state;
  char dir[256], args[1024], path[512];
  snprintf(dir, sizeof dir, "%s/locked", tmpdir);
  if (geteuid() == 0) {
    FILE *f = fopen(dir, "w");
    assert_non_null(f);
    fclose(f);
  } else {
    assert_int_equal(mkdir(dir, 0555), 0);
  }
  const char *cause = geteuid() == 0 ? "Not a directory" : "Permission denied";
  snprintf(args, sizeof args, "ir -m models/olmo2-1b -o %s/g.ir", dir);
  assert_int_equal(olmoc(args), 1);
  snprintf(path, sizeof path, "%s/g.ir: cannot create: %s", dir, cause);
  expect_output(path);
  snprintf(args, sizeof args, "logits -m tests/data/tiny --ids 1,2 -o %s/l.npy", dir);
  assert_int_equal(olmoc(args), 1);
  snprintf(path, sizeof path, "%s/l.npy: cannot create: %s", dir, cause);
  expect_output(path);
  snprintf(args, sizeof args, "ir tests/data/ir/rmsnorm.ir --passes=dce --print-after-all --dump-dir %s", dir);
  assert_int_equal(olmoc(args), 1);
  snprintf(path, sizeof path, "--dump-dir: %s/01-dce.ir: cannot create: %s", dir, cause);
  expect_output(path);
  snprintf(args, sizeof args, "run -p Hi -n 1 --temp 0 --emit-llvm %s", dir);
  assert_int_equal(olmoc(args), 1);
  snprintf(path, sizeof path, "--emit-llvm: %s/cg_", dir);
  expect_output(path);
  expect_output(cause);
  snprintf(args, sizeof args, "checkpoint -m tests/data/tiny -o %s/ckpt", dir);
  assert_int_equal(olmoc(args), 1);
  expect_output(geteuid() == 0 ? "ckpt: cannot create the directory: Not a directory"
                               : "ckpt: cannot create the directory: Permission denied");
  if (geteuid() == 0) {
    unlink(dir);
  } else {
    snprintf(args, sizeof args, "ls -A %s | wc -l >%s/count", dir, tmpdir);
    assert_int_equal(system(args), 0);
    snprintf(path, sizeof path, "%s/count", tmpdir);
    size_t n;
    char *count = slurp(path, &n);
    assert_int_equal(atoi(count), 0); /* nothing created, not even a temporary */
    free(count);
    chmod(dir, 0755);
    rmdir(dir);
  }
}

/* A write cut short (a file size limit, as a full disk would) reports the
 * cause, leaves no temporary, and leaves the file that was there intact. */
static void test_write_cut_short(void **state) {
  (void)state;
  char dir[256], args[1024], path[512];
  snprintf(dir, sizeof dir, "%s/cut", tmpdir);
  assert_int_equal(mkdir(dir, 0777), 0);
  static const char old[] = "the previous contents\n";
  static const char *const files[] = {"g.ir", "l.npy"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(old, f);
    fclose(f);
  }
  snprintf(args, sizeof args, "ir -m models/olmo2-1b -o %s/g.ir", dir);
  assert_int_equal(olmoc_sh(SMALL_DISK, args), 1);
  snprintf(path, sizeof path, "%s/g.ir: cannot write: File too large", dir);
  expect_output(path);
  snprintf(args, sizeof args, "logits -m models/olmo2-tiny --ids 1,2,3 -o %s/l.npy", dir);
  assert_int_equal(olmoc_sh(SMALL_DISK, args), 1);
  snprintf(path, sizeof path, "%s/l.npy: cannot write: File too large", dir);
  expect_output(path);
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    size_t n;
    char *text = slurp(path, &n);
    assert_string_equal(text, old);
    free(text);
  }
  snprintf(args, sizeof args, "ir -m models/olmo2-1b -O2 --print-after=dce --dump-dir %s -o /dev/null", dir);
  assert_int_equal(olmoc_sh(SMALL_DISK, args), 1);
  snprintf(path, sizeof path, "--dump-dir: %s/03-dce.ir: cannot write: File too large", dir);
  expect_output(path);
  snprintf(path, sizeof path, "%s/03-dce.ir", dir);
  assert_false(exists(path));
  snprintf(args, sizeof args, "checkpoint -m tests/data/tiny --shards 1 -o %s/ckpt", dir);
  assert_int_equal(olmoc_sh(SMALL_DISK, args), 1);
  snprintf(path, sizeof path, "%s/ckpt/model.safetensors: write failed: File too large", dir);
  expect_output(path);
  snprintf(path, sizeof path, "%s/ckpt/model.safetensors", dir);
  assert_false(exists(path));
  snprintf(path, sizeof path, "%s/ckpt", dir);
  assert_int_equal(temporaries(path), 0);
  assert_int_equal(temporaries(dir), 0);
  snprintf(args, sizeof args, "rm -r %s", dir);
  assert_int_equal(system(args), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_disk_full),
      cmocka_unit_test(test_unwritable_directory),
      cmocka_unit_test(test_write_cut_short),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
