/* Shared by the tests that run the olmoc command as a user would: a scratch
 * directory per test program, running `olmoc ARGS` with its stdout and stderr
 * captured, and checks on what it printed. Included once per test program.
 * Whether a step prints progress depends on how long it takes, and what a
 * test reads must not: its commands show none unless the test sets
 * OLMOC_PROGRESS_DELAY=0 itself (make_tmpdir sets it to 1e9 seconds). */
#ifndef OLMOC_TESTS_CLI_HARNESS_H
#define OLMOC_TESTS_CLI_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "olmoc/codegen.h"

static char tmpdir[] = "/tmp/olmoc_cli_XXXXXX";
static char out[1 << 20]; /* the last command's stdout and stderr */

/* Runs the shell command cmd, which sends its output to LOG (tmpdir/log),
 * and reads that into `out`; returns the exit code. */
static inline int run_logged(const char *cmd, const char *log) {
  int status = system(cmd);
  FILE *f = fopen(log, "rb");
  assert_non_null(f);
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  fclose(f);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs `olmoc ARGS` in the shell after the shell commands PREFIX (a ulimit,
 * say), with stdout and stderr captured into `out` (ARGS may send stdout
 * elsewhere: `>/dev/full`); returns the exit code. */
static inline int olmoc_after(const char *prefix, const char *args) {
  char cmd[4096], log[256];
  snprintf(log, sizeof log, "%s/log", tmpdir);
  snprintf(cmd, sizeof cmd, "%s %s/olmoc >%s 2>&1 %s", prefix, OLMOC_BUILD_DIR, log, args);
  return run_logged(cmd, log);
}

/* Runs the shell command CMD (a model binary, a pipeline) with what it
 * writes to stdout and stderr, where it does not send them elsewhere,
 * captured into `out`; returns the exit code. */
static inline int shell(const char *cmd) {
  char full[4096], log[256];
  snprintf(log, sizeof log, "%s/log", tmpdir);
  snprintf(full, sizeof full, "( %s ) >%s 2>&1", cmd, log);
  return run_logged(full, log);
}

/* Runs `olmoc ARGS` with stdout and stderr captured into `out`; returns the exit code. */
static inline int olmoc(const char *args) { return olmoc_after("", args); }

static inline void expect_output(const char *words) {
  if (!strstr(out, words))
    fail_msg("output lacks \"%s\":\n%.3000s", words, out);
}

/* The whole file, NUL-terminated. */
static inline char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  rewind(f);
  char *buf = malloc(*n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, *n, f), *n);
  buf[*n] = '\0';
  fclose(f);
  return buf;
}

/* tmpdir/name holding n bytes of data; returns its path (static: the next
 * call overwrites it). */
static inline const char *tmp_file(const char *name, const char *data, size_t n) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  fclose(f);
  return path;
}

/* Fails unless the file at path holds exactly text. */
static inline void expect_file(const char *path, const char *text) {
  size_t n;
  char *got = slurp(path, &n);
  if (n != strlen(text) || memcmp(got, text, n))
    fail_msg("%s holds \"%.200s\", not \"%s\"", path, got, text);
  free(got);
}

#define HARNESS_PROGRESS_DELAY "1e9"

static inline int make_tmpdir(void **state) {
  (void)state;
  return setenv("OLMOC_PROGRESS_DELAY", HARNESS_PROGRESS_DELAY, 1) || !mkdtemp(tmpdir) ? -1 : 0;
}

static inline int remove_tmpdir(void **state) {
  (void)state;
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Whether this CPU has vdpbf16ps (--compute bf16); says so when it skips. */
static inline bool has_bf16_dot(void) {
  cg_host h;
  cg_host_detect(&h);
  if (!h.avx512bf16)
    print_message("skipped: this CPU has no AVX512_BF16\n");
  return h.avx512bf16;
}

#endif
