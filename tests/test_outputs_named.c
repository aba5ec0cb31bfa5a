/* Outputs where the file system has no unnamed files (rt_unnamed_file is
 * replaced at link time by one that says EOPNOTSUPP), and the cleanup
 * handler, in child processes that signal themselves: a named temporary
 * PATH.tmp.XXXXXX exists while the file is written and is renamed into
 * place; SIGINT, SIGTERM and SIGHUP while it is written leave nothing, and
 * the process still dies of the signal; the same for a directory being
 * written (rt_output_dir); a signal while the signals are held waits until
 * the outputs are in place; a signal ignored when the handler was installed
 * (nohup) stays ignored. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "cli_harness.h"
#include "olmoc/cleanup.h"
#include "olmoc/output.h"

int __wrap_rt_unnamed_file(const char *dir, mode_t mode);
int __wrap_rt_unnamed_file(const char *dir, mode_t mode) {
  (void)dir, (void)mode;
  errno = EOPNOTSUPP;
  return -1;
}

static char dir[300]; /* tmpdir/d, made empty for each test */

static int setup(void **state) {
  if (make_tmpdir(state))
    return -1;
  snprintf(dir, sizeof dir, "%s/d", tmpdir);
  return 0;
}

static int fresh_dir(void **state) {
  (void)state;
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir %s", dir, dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* The names in dir, sorted, space-separated, into names[1024]. */
static const char *listing(char *names) {
  char cmd[700];
  snprintf(cmd, sizeof cmd, "ls %s | tr '\\n' ' ' >%s/listing", dir, tmpdir);
  assert_int_equal(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "%s/listing", tmpdir);
  size_t n;
  char *text = slurp(cmd, &n);
  snprintf(names, 1024, "%s", text);
  free(text);
  return names;
}

static const char *in_dir(const char *name) {
  static char path[400];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

/* Opens dir/name and writes text into it; fails the child's way (exit 3). */
static void start_output(rt_output *o, const char *name, const char *text) {
  oc_error e;
  if (rt_output_open(o, in_dir(name), &e) || fputs(text, o->f) < 0)
    _exit(3);
}

/* Runs body in a child with the handler installed; returns its wait status. */
static int in_child(void (*body)(int sig), int sig) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    oc_cleanup_on_signals();
    body(sig);
    _exit(0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return status;
}

static void expect_killed_by(int status, int sig) {
  if (!WIFSIGNALED(status) || WTERMSIG(status) != sig)
    fail_msg("expected death by signal %d, got status %#x", sig, status);
}

static void test_named_temporary(void **state) {
  (void)state;
  rt_output o;
  oc_error e;
  char names[1024];
  assert_int_equal(rt_output_open(&o, in_dir("out.txt"), &e), 0);
  assert_non_null(strstr(listing(names), "out.txt.tmp."));
  fputs("whole\n", o.f);
  assert_int_equal(rt_output_close(&o, &e), 0);
  assert_string_equal(listing(names), "out.txt ");
}

static void write_then_signal(int sig) {
  rt_output o;
  start_output(&o, "out.txt", "half of it");
  raise(sig);
  _exit(4); /* not reached: the handler re-raises with the default action */
}

static void test_signal_while_writing(void **state) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  char names[1024];
  for (int i = 0; i < 3; i++) {
    expect_killed_by(in_child(write_then_signal, sigs[i]), sigs[i]);
    assert_string_equal(listing(names), "");
    fresh_dir(state);
  }
}

static void write_dir_then_signal(int sig) {
  rt_output_dir d;
  rt_output o;
  oc_error e;
  if (rt_output_dir_open(&d, in_dir("ckpt"), &e))
    _exit(3);
  char path[400];
  snprintf(path, sizeof path, "%s/config.json", d.tmp);
  if (rt_output_open(&o, path, &e) || rt_output_close(&o, &e))
    _exit(3);
  raise(sig);
  _exit(4);
}

static void test_signal_while_writing_a_directory(void **state) {
  (void)state;
  char names[1024];
  expect_killed_by(in_child(write_dir_then_signal, SIGTERM), SIGTERM);
  assert_string_equal(listing(names), "");
}

/* Two outputs ready, a signal while held: both in place before it acts. */
static void commit_while_signalled(int sig) {
  rt_output a, b;
  oc_error e;
  start_output(&a, "a", "first\n");
  start_output(&b, "b", "second\n");
  rt_output *both[] = {&a, &b};
  if (rt_output_ready(&a, &e) || rt_output_ready(&b, &e))
    _exit(3);
  oc_cleanup_hold();
  raise(sig);
  if (rt_output_commit(both, 2, &e))
    _exit(3);
  oc_cleanup_release();
  _exit(4);
}

static void test_held_signal_waits(void **state) {
  (void)state;
  char names[1024];
  expect_killed_by(in_child(commit_while_signalled, SIGINT), SIGINT);
  assert_string_equal(listing(names), "a b ");
  size_t n;
  char *text = slurp(in_dir("b"), &n);
  assert_string_equal(text, "second\n");
  free(text);
}

static void ignored_signal(int sig) {
  rt_output o;
  oc_error e;
  start_output(&o, "out.txt", "whole\n");
  raise(sig);
  _exit(rt_output_close(&o, &e) ? 3 : 0);
}

static void test_ignored_signal(void **state) {
  (void)state;
  char names[1024];
  signal(SIGHUP, SIG_IGN); /* as nohup leaves it for the child */
  int status = in_child(ignored_signal, SIGHUP);
  signal(SIGHUP, SIG_DFL);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_string_equal(listing(names), "out.txt ");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_named_temporary, fresh_dir),
      cmocka_unit_test_setup(test_signal_while_writing, fresh_dir),
      cmocka_unit_test_setup(test_signal_while_writing_a_directory, fresh_dir),
      cmocka_unit_test_setup(test_held_signal_waits, fresh_dir),
      cmocka_unit_test_setup(test_ignored_signal, fresh_dir),
  };
  return cmocka_run_group_tests(tests, setup, remove_tmpdir);
}
