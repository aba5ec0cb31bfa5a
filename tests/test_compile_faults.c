/* `olmoc compile` against what else happens to its files, as real processes:
 * two compiles with --embed-weights to one OUT at once both finish and
 * leave a binary that runs (they once broke each other: a fixed
 * intermediate name, and the failing one unlinked the other's binary); a
 * compile that fails after linking leaves the file someone else had at OUT
 * as it was; and SIGINT, SIGTERM or SIGHUP at any moment (0.2 s in, while
 * the pack is being written, once the link's scratch directory exists,
 * while cc runs) kill the compile with nothing left: no temporary or partial
 * output beside OUT, nothing in $TMPDIR (the scratch directory and cc's own
 * temporaries). The moments are found by watching the process, not by
 * timing it; a compile that finishes first must leave its outputs whole. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

#include "cli_harness.h"

#define MODEL "models/olmo2-tiny"

/* Entries of dir other than . and .., a missing dir having none; the first
 * one's name into first[256] when first is not NULL. */
static int entries(const char *dir, char *first) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *x; d && (x = readdir(d));)
    if (strcmp(x->d_name, ".") && strcmp(x->d_name, "..")) {
      if (first && !n)
        snprintf(first, 256, "%s", x->d_name);
      n++;
    }
  if (d)
    closedir(d);
  return n;
}

/* Whether process pid has a file in dir open (an unnamed temporary shows
 * there as "dir/#123 (deleted)"). */
static bool has_open_in(pid_t pid, const char *dir) {
  char fds[64], link[400], target[4096];
  snprintf(fds, sizeof fds, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(fds);
  bool found = false;
  for (struct dirent *x; d && !found && (x = readdir(d));) {
    snprintf(link, sizeof link, "%s/%s", fds, x->d_name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0) {
      target[n] = '\0';
      found = !strncmp(target, dir, strlen(dir)) && target[strlen(dir)] == '/';
    }
  }
  if (d)
    closedir(d);
  return found;
}

static void run_rm(const char *dir) {
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* Starts `olmoc compile -q -m MODEL -o out EXTRA...` with TMPDIR=tmp, its
 * output into tmpdir/log. */
static pid_t start_compile(const char *tmp, const char *output, const char *const *extra) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char log[300];
    snprintf(log, sizeof log, "%s/log", tmpdir);
    if (!freopen(log, "a", stdout) || dup2(fileno(stdout), 2) < 0 || setenv("TMPDIR", tmp, 1))
      _exit(99);
    const char *argv[16] = {OLMOC_BUILD_DIR "/olmoc", "compile", "-q", "-m", MODEL, "-o", output};
    int n = 7;
    for (int i = 0; extra[i] && n < 15; i++)
      argv[n++] = extra[i];
    argv[n] = NULL;
    execv(argv[0], (char **)argv);
    _exit(98);
  }
  return pid;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Waits for pid (at most two minutes: then it is killed and the test fails). */
static int wait_for(pid_t pid) {
  int status;
  for (double t0 = now(); waitpid(pid, &status, WNOHANG) == 0; usleep(1000))
    if (now() - t0 > 120) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail_msg("olmoc compile did not end within two minutes");
    }
  return status;
}

/* ---- two compiles at once ---- */

static void test_concurrent_embed(void **state) {
  (void)state;
  char dir[300], tmp[300], output[400], cmd[700];
  snprintf(dir, sizeof dir, "%s/together", tmpdir);
  snprintf(tmp, sizeof tmp, "%s/together-tmp", tmpdir);
  snprintf(output, sizeof output, "%s/tiny", dir);
  assert_int_equal(mkdir(tmp, 0777), 0);
  static const char *const embed[] = {"--embed-weights", NULL};
  for (int round = 0; round < 3; round++) {
    pid_t a = start_compile(tmp, output, embed), b = start_compile(tmp, output, embed);
    int sa = wait_for(a), sb = wait_for(b);
    snprintf(cmd, sizeof cmd, "cat %s/log; : >%s/log", tmpdir, tmpdir);
    shell(cmd);
    if (!WIFEXITED(sa) || !WIFEXITED(sb) || WEXITSTATUS(sa) || WEXITSTATUS(sb))
      fail_msg("round %d: exit statuses %#x and %#x:\n%s", round, sa, sb, out);
    snprintf(cmd, sizeof cmd, "%s -p Hi -n 4 --temp 0 -t 1", output);
    if (shell(cmd) != 0 || strncmp(out, "Hi", 2) || strlen(out) < 8)
      fail_msg("round %d: the binary does not run:\n%s", round, out);
    char name[256];
    if (entries(dir, name) != 1 || strcmp(name, "tiny"))
      fail_msg("round %d: beside the binary: %s", round, name);
    assert_int_equal(entries(tmp, NULL), 0);
  }
  run_rm(dir);
  run_rm(tmp);
}

/* ---- a failure after the link ---- */

/* libx.so and x.weights were someone else's; x.h is a directory, so the
 * compile fails once it has linked the library: both files stay theirs. */
static void test_failure_leaves_others(void **state) {
  (void)state;
  static const char theirs[] = "someone else's file\n";
  char dir[300], path[400], args[700];
  snprintf(dir, sizeof dir, "%s/others", tmpdir);
  snprintf(path, sizeof path, "%s/x.h", dir);
  assert_int_equal(mkdir(dir, 0777), 0);
  assert_int_equal(mkdir(path, 0777), 0);
  static const char *const kept[] = {"others/libx.so", "others/x.weights"};
  for (int i = 0; i < 2; i++)
    tmp_file(kept[i], theirs, strlen(theirs));
  snprintf(args, sizeof args, "compile -q -m " MODEL " --emit lib -o %s/x", dir);
  assert_int_equal(olmoc(args), 1);
  expect_output("x.h: cannot open for writing: Is a directory");
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, kept[i]);
    expect_file(path, theirs);
  }
  assert_int_equal(entries(dir, NULL), 3); /* no temporary beside them */
  run_rm(dir);
}

/* ---- signals ---- */

typedef enum moment { AFTER_START, WRITING, SCRATCH, LINKING } moment;

static const char *const moment_names[] = {"0.2 s in", "while the pack is written",
                                           "once the scratch directory exists", "while cc runs"};

/* Whether the compile pid has reached moment m. */
static bool reached(moment m, pid_t pid, double t0, const char *dir, const char *tmp) {
  char scratch[256], log[700];
  switch (m) {
  case AFTER_START:
    return now() - t0 >= 0.2;
  case WRITING:
    return entries(dir, NULL) > 0 || has_open_in(pid, dir);
  case SCRATCH:
    return entries(tmp, NULL) > 0;
  case LINKING:
    if (!entries(tmp, scratch))
      return false;
    snprintf(log, sizeof log, "%s/%s/cc.log", tmp, scratch);
    return access(log, F_OK) == 0;
  }
  return true;
}

/* A compile of one kind of output, signalled at moment m: dead of sig (or
 * failed, or finished with every output whole), nothing else left. */
static void interrupt(int sig, moment m, const char *const *extra, const char *const *outputs) {
  char dir[300], tmp[300], output[400], name[256];
  snprintf(dir, sizeof dir, "%s/signalled", tmpdir);
  snprintf(tmp, sizeof tmp, "%s/signalled-tmp", tmpdir);
  snprintf(output, sizeof output, "%s/tiny", dir);
  assert_int_equal(mkdir(dir, 0777), 0);
  assert_int_equal(mkdir(tmp, 0777), 0);
  double t0 = now();
  pid_t pid = start_compile(tmp, output, extra);
  int status;
  bool ended = false;
  while (!(ended = waitpid(pid, &status, WNOHANG) == pid) && !reached(m, pid, t0, dir, tmp))
    if (now() - t0 > 120) {
      kill(pid, SIGKILL);
      fail_msg("olmoc compile did not reach the moment %s", moment_names[m]);
    }
  if (!ended) {
    kill(pid, sig);
    status = wait_for(pid);
  }
  int left = entries(dir, name), n = 0;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) { /* it finished first: all there */
    while (outputs[n])
      n++;
    for (int i = 0; i < n; i++) {
      char path[700];
      snprintf(path, sizeof path, "%s/%s", dir, outputs[i]);
      if (access(path, F_OK))
        fail_msg("signal %d %s: finished without %s", sig, moment_names[m], outputs[i]);
    }
  } else if (!(WIFSIGNALED(status) && WTERMSIG(status) == sig) && !WIFEXITED(status)) {
    fail_msg("signal %d %s: ended with status %#x", sig, moment_names[m], status);
  }
  if (left != n)
    fail_msg("signal %d %s: %d files beside OUT (%s), %d expected", sig, moment_names[m], left, name, n);
  if (entries(tmp, name))
    fail_msg("signal %d %s: %s left in $TMPDIR", sig, moment_names[m], name);
  run_rm(dir);
  run_rm(tmp);
}

static void test_signals(void **state) {
  (void)state;
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  static const char *const exe[] = {NULL}, *const embed[] = {"--embed-weights", NULL},
                           *const lib[] = {"--emit", "lib", NULL};
  static const char *const *const kinds[] = {exe, embed, lib};
  static const char *const exe_out[] = {"tiny", "tiny.weights", NULL}, *const embed_out[] = {"tiny", NULL},
                           *const lib_out[] = {"libtiny.so", "tiny.h", "tiny.weights", NULL};
  static const char *const *const outs[] = {exe_out, embed_out, lib_out};
  for (int s = 0; s < 3; s++)
    for (moment m = AFTER_START; m <= LINKING; m++)
      interrupt(sigs[s], m, kinds[(s + m) % 3], outs[(s + m) % 3]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_concurrent_embed),
      cmocka_unit_test(test_failure_leaves_others),
      cmocka_unit_test(test_signals),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
