/* Every file the olmoc command writes (ir -o, --dump-dir, logits -o,
 * checkpoint -o, --emit-llvm) and its standard output: a full disk
 * (/dev/full), a directory that cannot be written and a write cut short
 * (a file size limit) each end in a message naming the file and the cause
 * and a non-zero exit, leave no partial or temporary file, and leave a file
 * that was there before as it was. Devices are written in place, never
 * replaced. Missing directories on the way are made. */
#include <stdbool.h>
#include <sys/stat.h>

#include "cli_harness.h"

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

/* /dev/full as the file written (logits -o, ir -o) and as standard output. */
static void test_disk_full(void **state) {
  (void)state;
  assert_int_equal(olmoc("logits -m tests/data/tiny --backend interp --ids 1,2 -o /dev/full"), 1);
  expect_output("olmoc logits: /dev/full: cannot write: No space left on device");
  assert_int_equal(olmoc("ir -m models/olmo2-1b -o /dev/full"), 1);
  expect_output("olmoc ir: /dev/full: cannot write: No space left on device");
  static const char *const to_stdout[] = {
      "run -p Hi -n 2 --temp 0 --backend interp", "tokenize Hello", "ir -m models/olmo2-1b",
      "perplexity -f models/olmo2-tiny/heldout.txt --max-tokens 40 --backend interp", "passes", "version",
  };
  for (size_t i = 0; i < sizeof to_stdout / sizeof *to_stdout; i++) {
    char args[512];
    snprintf(args, sizeof args, "%s >/dev/full", to_stdout[i]);
    assert_int_equal(olmoc(args), 1);
    expect_output("standard output: cannot write: No space left on device");
  }
  expect_device("/dev/full");
}

/* A reply nobody can read ends at the first lost write, with the error:
 * a model binary on /dev/full (it exited 0), and olmoc run with SIGPIPE
 * ignored once the reader is gone (it generated to the end and only the
 * final flush noticed). */
static void test_reader_gone(void **state) {
  (void)state;
  char args[1024];
  snprintf(args, sizeof args, "compile -o %s/tiny -q", tmpdir);
  assert_int_equal(olmoc(args), 0);
  snprintf(args, sizeof args, "%s/tiny -p x -n 200 --ignore-eos >/dev/full", tmpdir);
  assert_int_equal(shell(args), 1);
  expect_output("tiny: standard output: cannot write: No space left on device");
  snprintf(args, sizeof args,
           "bash -c \"trap '' PIPE; %s/olmoc run -p x -n 400 --ignore-eos | head -c 1 >/dev/null; "
           "exit \\${PIPESTATUS[0]}\"", OLMOC_BUILD_DIR);
  assert_int_equal(shell(args), 1);
  expect_output("olmoc run: standard output: cannot write: Broken pipe");
}

/* A command that must fail: its arguments and what its message says, with
 * DIR standing for the directory and CAUSE for the error's cause; `also`,
 * when not NULL, is said too. */
typedef struct failure {
  const char *args, *says, *also;
} failure;

/* s with each DIR replaced by dir and each CAUSE by cause, into buf[1024]. */
static const char *fill_in(const char *s, const char *dir, const char *cause, char *buf) {
  size_t n = 0;
  for (; *s && n < 1000; s++) {
    const char *with = !strncmp(s, "DIR", 3) ? dir : !strncmp(s, "CAUSE", 5) ? cause : NULL;
    if (with) {
      n += (size_t)snprintf(buf + n, 1024 - n, "%s", with);
      s += with == dir ? 2 : 4;
    } else {
      buf[n++] = *s;
    }
  }
  buf[n < 1024 ? n : 1023] = '\0';
  return buf;
}

static void expect_failures(const char *prefix, const failure *f, size_t n, const char *dir,
                            const char *cause) {
  char args[1024], says[1024];
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(olmoc_after(prefix, fill_in(f[i].args, dir, cause, args)), 1);
    expect_output(fill_in(f[i].says, dir, cause, says));
    if (f[i].also)
      expect_output(fill_in(f[i].also, dir, cause, says));
  }
}

/* A directory that cannot be written: nothing is created, and the message
 * names the path. As root, permissions do not stop a write, so the
 * "directory" is a regular file then. */
static void test_unwritable_directory(void **state) {
  (void)state;
  static const failure writers[] = {
      {"ir -m models/olmo2-1b -o DIR/g.ir", "DIR/g.ir: cannot create: CAUSE", NULL},
      {"logits -m tests/data/tiny --backend interp --ids 1,2 -o DIR/l.npy", "DIR/l.npy: cannot create: CAUSE", NULL},
      {"ir tests/data/ir/rmsnorm.ir --passes=dce --print-after-all --dump-dir DIR",
       "--dump-dir: DIR/01-dce.ir: cannot create: CAUSE", NULL},
      {"run -p Hi -n 1 --temp 0 --emit-llvm DIR", "--emit-llvm: DIR/cg_", "cannot create: CAUSE"},
      {"checkpoint -m tests/data/tiny -o DIR/ckpt", "DIR/ckpt: cannot create the directory: CAUSE", NULL},
  };
  char dir[256], cmd[1024];
  snprintf(dir, sizeof dir, "%s/locked", tmpdir);
  bool root = geteuid() == 0;
  if (root) {
    FILE *f = fopen(dir, "w");
    assert_non_null(f);
    fclose(f);
  } else {
    assert_int_equal(mkdir(dir, 0555), 0);
  }
  expect_failures("", writers, sizeof writers / sizeof *writers, dir,
                  root ? "Not a directory" : "Permission denied");
  if (root) {
    unlink(dir);
  } else {
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l >%s/count", dir, tmpdir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/count", tmpdir);
    size_t n;
    char *count = slurp(cmd, &n);
    assert_int_equal(atoi(count), 0); /* nothing created, not even a temporary */
    free(count);
    chmod(dir, 0755);
    rmdir(dir);
  }
}

/* A write cut short (a file size limit, as a full disk would) reports the
 * cause, leaves no temporary, and leaves the file that was there intact; a
 * checkpoint leaves no directory, or the one that was there as it was. */
static void test_write_cut_short(void **state) {
  (void)state;
  static const failure writers[] = {
      {"ir -m models/olmo2-1b -o DIR/g.ir", "DIR/g.ir: cannot write: CAUSE", NULL},
      {"logits -m models/olmo2-tiny --backend interp --ids 1,2,3 -o DIR/l.npy", "DIR/l.npy: cannot write: CAUSE", NULL},
      {"ir -m models/olmo2-1b -O2 --print-after=dce --dump-dir DIR -o /dev/null",
       "--dump-dir: DIR/03-dce.ir: cannot write: CAUSE", NULL},
      {"checkpoint -m tests/data/tiny --shards 1 -o DIR/ckpt",
       "DIR/ckpt/model.safetensors: write failed: CAUSE", NULL},
      {"checkpoint -m tests/data/tiny --shards 1 -o DIR/old", "DIR/old/model.safetensors: write failed: CAUSE", NULL},
  };
  static const char old[] = "the previous contents\n";
  static const char *const kept[] = {"cut/g.ir", "cut/l.npy", "cut/old/config.json"},
                           *const absent[] = {"03-dce.ir", "ckpt"};
  char dir[256], path[512];
  snprintf(dir, sizeof dir, "%s/cut", tmpdir);
  assert_int_equal(mkdir(dir, 0777), 0);
  snprintf(path, sizeof path, "%s/old", dir);
  assert_int_equal(mkdir(path, 0777), 0);
  for (int i = 0; i < 3; i++)
    tmp_file(kept[i], old, strlen(old));
  expect_failures(SMALL_DISK, writers, sizeof writers / sizeof *writers, dir, "File too large");
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, kept[i]);
    expect_file(path, old);
  }
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, absent[i]);
    assert_false(exists(path));
  }
  snprintf(path, sizeof path, "ls -A %s/old | wc -l >%s/count", dir, tmpdir);
  assert_int_equal(system(path), 0);
  snprintf(path, sizeof path, "%s/count", tmpdir);
  size_t n;
  char *count = slurp(path, &n);
  assert_int_equal(atoi(count), 1); /* config.json, as it was, alone */
  free(count);
  assert_int_equal(temporaries(dir), 0);
  snprintf(path, sizeof path, "rm -r %s", dir);
  assert_int_equal(system(path), 0);
}

/* Directories an output needs are made on the way, as `mkdir -p` makes them,
 * by every writer: a file, a dump directory, a compiled library. */
static void test_directories_made(void **state) {
  (void)state;
  static const struct {
    const char *args, *made;
  } writers[] = {
      {"ir -m models/olmo2-1b -o DIR/a/b/g.ir", "DIR/a/b/g.ir"},
      {"logits -m tests/data/tiny --ids 1,2 -o DIR/c/l.npy", "DIR/c/l.npy"},
      {"ir tests/data/ir/rmsnorm.ir --passes=dce --print-after-all --dump-dir DIR/d/e", "DIR/d/e/01-dce.ir"},
      {"run -p Hi -n 1 --temp 0 --emit-llvm DIR/f/g", "DIR/f/g/cg_gather_bf16_d256.ll"},
      {"checkpoint -m tests/data/tiny -o DIR/h/ckpt", "DIR/h/ckpt/config.json"},
      {"compile -m models/olmo2-tiny --emit lib -o DIR/m/tiny", "DIR/m/libtiny.so"},
  };
  char dir[256], args[1024], made[1024];
  snprintf(dir, sizeof dir, "%s/made", tmpdir);
  for (size_t i = 0; i < sizeof writers / sizeof *writers; i++) {
    assert_int_equal(olmoc(fill_in(writers[i].args, dir, "", args)), 0);
    assert_true(exists(fill_in(writers[i].made, dir, "", made)));
  }
  snprintf(args, sizeof args, "rm -r %s", dir);
  assert_int_equal(system(args), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_disk_full), cmocka_unit_test(test_reader_gone),
      cmocka_unit_test(test_unwritable_directory),
      cmocka_unit_test(test_write_cut_short),
      cmocka_unit_test(test_directories_made),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
