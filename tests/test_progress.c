/* Progress (olmoc/progress.h): the bar's lines, pinned character for
 * character on a fake clock in both modes (when a step draws, how often,
 * its counts, rate and note); then the olmoc command's steps through a pipe
 * (plain lines, none for a step within the delay, none with -q) and on a
 * pseudo-terminal (the bar redrawn with a carriage return).
 * $OLMOC_PROGRESS_DELAY makes every step "long" (0) or short (1000). */
#include <errno.h>
#include <pty.h>
#include <sys/wait.h>

#include "cli_harness.h"
#include "olmoc/progress.h"

static double now;
static double fake_clock(void) { return now; }

/* A bar writing into memory on the fake clock. */
typedef struct capture {
  oc_progress_bar bar;
  const oc_progress *sink;
  char *text;
  size_t len;
  FILE *f;
} capture;

static void capture_open(capture *c, bool terminal, double delay) {
  c->f = open_memstream(&c->text, &c->len);
  assert_non_null(c->f);
  c->sink = oc_progress_bar_init(&c->bar, c->f, terminal, delay, fake_clock);
  now = 0;
}

/* What the bar has written so far, and a fresh start. */
static void expect_text(capture *c, const char *want) {
  fflush(c->f);
  assert_string_equal(c->text, want);
  rewind(c->f);
  c->text[0] = '\0';
}

static void capture_close(capture *c) {
  fclose(c->f);
  free(c->text);
}

/* Plain: nothing before the delay, then a line at most every 2 s, and a
 * last one unless the line before said as much; the rate is the step's
 * average. */
static void test_plain_lines(void **state) {
  (void)state;
  capture c;
  capture_open(&c, false, 1.0);
  oc_step s;
  oc_step_begin(&s, c.sink, "packing weights", 4, "tensors", "B");
  now = 0.5, oc_step_add(&s, 1, 1e9);
  expect_text(&c, "");
  now = 1.0, oc_step_add(&s, 1, 1e9);
  expect_text(&c, "packing weights [2/4 tensors] 2.0 GB/s, 1.0 s\n");
  now = 2.5, oc_step_add(&s, 1, 1e9);
  expect_text(&c, "");
  now = 3.0, oc_step_add(&s, 1, 1e9);
  expect_text(&c, "packing weights [4/4 tensors] 1.3 GB/s, 3.0 s\n");
  now = 3.5, oc_step_end(&s);
  expect_text(&c, "");
  now = 10, oc_step_begin(&s, c.sink, "writing checkpoint", 2, "tensors", "B");
  now = 11, oc_step_add(&s, 1, 5e8);
  expect_text(&c, "writing checkpoint [1/2 tensors] 500.0 MB/s, 1.0 s\n");
  now = 11.5, oc_step_add(&s, 1, 5e8);
  now = 12, oc_step_end(&s);
  expect_text(&c, "writing checkpoint [2/2 tensors] 500.0 MB/s, 2.0 s\n");
  capture_close(&c);
}

/* A step that ends within the delay prints nothing, in either mode; a step
 * that drew nothing before its end but lasted longer prints its final line. */
static void test_quick_step_silent(void **state) {
  (void)state;
  for (int terminal = 0; terminal < 2; terminal++) {
    capture c;
    capture_open(&c, terminal, 1.0);
    oc_step s;
    oc_step_begin(&s, c.sink, "compiling kernels", 3, "kernels", NULL);
    now = 0.3, oc_step_add(&s, 1, 0);
    now = 0.9, oc_step_add(&s, 2, 0);
    now = 0.95, oc_step_end(&s);
    expect_text(&c, "");
    oc_step_begin(&s, c.sink, "linking", 1, "binary", NULL);
    now = 0.96, oc_step_add(&s, 1, 0);
    now = 2.45, oc_step_end(&s);
    expect_text(&c, terminal ? "\rlinking [####################] 1/1 binary, 1.5 s\033[K\n"
                             : "linking [1/1 binary] 1.5 s\n");
    capture_close(&c);
  }
}

/* Terminal: the line is redrawn in place (carriage return, clear to the end
 * of the line) at most every 0.1 s, and the final one ends with a newline. */
static void test_terminal_bar(void **state) {
  (void)state;
  capture c;
  capture_open(&c, true, 1.0);
  oc_step s;
  oc_step_begin(&s, c.sink, "compiling kernels", 4, "kernels", NULL);
  now = 1.0, oc_step_add(&s, 1, 0);
  expect_text(&c, "\rcompiling kernels [#####---------------] 1/4 kernels, 1.0 s\033[K");
  now = 1.05, oc_step_add(&s, 1, 0);
  expect_text(&c, "");
  now = 1.2, oc_step_add(&s, 1, 0);
  expect_text(&c, "\rcompiling kernels [###############-----] 3/4 kernels, 1.2 s\033[K");
  now = 1.25, oc_step_end(&s);
  expect_text(&c, "\rcompiling kernels [###############-----] 3/4 kernels, 1.2 s\033[K\n");
  capture_close(&c);
}

/* A running figure in the note and a rate of tokens, as perplexity draws them. */
static void test_note_and_rate(void **state) {
  (void)state;
  capture c;
  capture_open(&c, false, 0);
  oc_step s;
  oc_step_begin(&s, c.sink, "perplexity", 12, "windows", "tok");
  snprintf(s.note, sizeof s.note, "%.4f", 118.42129);
  now = 0.5, oc_step_add(&s, 3, 768);
  expect_text(&c, "perplexity [3/12 windows] 118.4213, 1536.0 tok/s, 0.5 s\n");
  now = 1, oc_step_end(&s); /* the line before showed these 3 windows: no repeat */
  expect_text(&c, "");
  capture_close(&c);
  capture_open(&c, false, 0);
  oc_step_begin(&s, c.sink, "reading", 2, "files", "B");
  now = 1, oc_step_add(&s, 1, 2.5e6), oc_step_add(&s, 1, 2.5e6);
  oc_step_end(&s);
  expect_text(&c, "reading [1/2 files] 2.5 MB/s, 1.0 s\nreading [2/2 files] 5.0 MB/s, 1.0 s\n");
  capture_close(&c);
}

/* No sink: the step counts, nothing is called. -q gives no sink; the delay
 * comes from the environment, a bad value falling back to the default. */
static void test_silent_and_environment(void **state) {
  (void)state;
  oc_step s;
  oc_step_begin(&s, NULL, "packing weights", 2, "tensors", "B");
  oc_step_add(&s, 2, 10);
  oc_step_end(&s);
  assert_int_equal(s.done, 2);
  oc_progress_bar b;
  assert_null(oc_progress_stderr(&b, true));
  static const struct {
    const char *value;
    double delay;
  } cases[] = {{NULL, OC_PROGRESS_DELAY}, {"0", 0}, {"2.5", 2.5}, {"-1", OC_PROGRESS_DELAY},
               {"soon", OC_PROGRESS_DELAY}, {"", OC_PROGRESS_DELAY}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    if (cases[i].value)
      setenv("OLMOC_PROGRESS_DELAY", cases[i].value, 1);
    else
      unsetenv("OLMOC_PROGRESS_DELAY");
    const oc_progress *p = oc_progress_stderr(&b, false);
    assert_ptr_equal(p, &b.sink);
    assert_true(b.delay == cases[i].delay);
    assert_ptr_equal(b.out, stderr);
  }
  setenv("OLMOC_PROGRESS_DELAY", HARNESS_PROGRESS_DELAY, 1);
}

/* ---- the olmoc command ---- */

/* The last line of `out` that starts with prefix, or fails. */
static const char *last_line(const char *prefix) {
  const char *last = NULL;
  for (const char *at = out; (at = strstr(at, prefix)); at++)
    if (at == out || at[-1] == '\n' || at[-1] == '\r')
      last = at;
  if (!last)
    fail_msg("no line starting \"%s\" in:\n%.3000s", prefix, out);
  return last;
}

/* Through a pipe, every step long: plain lines, the last of each step with
 * all its units done; no carriage return. */
static void test_pipe_lines(void **state) {
  (void)state;
  assert_int_equal(olmoc_after("OLMOC_PROGRESS_DELAY=0", "run -p Hi -n 2 --temp 0"), 0);
  expect_output("packing weights [1/29 tensors] "); /* 4 layers of 7 matrices, and lm_head */
  assert_true(!strncmp(last_line("packing weights ["), "packing weights [29/29 tensors] ", 32));
  const char *compiled = last_line("compiling kernels [");
  int done, total;
  assert_int_equal(sscanf(compiled, "compiling kernels [%d/%d kernels]", &done, &total), 2);
  assert_true(total > 0 && done == total);
  assert_null(strchr(out, '\r'));
  expect_output("generation: 2 tokens"); /* the timings, as always */
  /* quick steps print nothing; neither does -q or --quiet */
  const char *quiet[][2] = {{"OLMOC_PROGRESS_DELAY=1000", ""}, {"OLMOC_PROGRESS_DELAY=0", "-q"},
                            {"OLMOC_PROGRESS_DELAY=0", "--quiet"}};
  for (size_t i = 0; i < sizeof quiet / sizeof *quiet; i++) {
    char args[256];
    snprintf(args, sizeof args, "run -p Hi -n 2 --temp 0 %s", quiet[i][1]);
    assert_int_equal(olmoc_after(quiet[i][0], args), 0);
    assert_null(strstr(out, "packing weights"));
    assert_null(strstr(out, "compiling kernels"));
    expect_output("generation: 2 tokens");
  }
}

/* `olmoc checkpoint` and `olmoc compile` (weights, kernels, link, embedding)
 * and the compiled binary reading its weights, all through a pipe. */
static void test_writers(void **state) {
  (void)state;
  char args[1024];
  snprintf(args, sizeof args, "checkpoint -m tests/data/tiny --shards 2 -o %s/ckpt", tmpdir);
  assert_int_equal(olmoc_after("OLMOC_PROGRESS_DELAY=0", args), 0);
  const char *wrote = last_line("writing checkpoint [");
  int done, total;
  assert_int_equal(sscanf(wrote, "writing checkpoint [%d/%d tensors]", &done, &total), 2);
  assert_true(total > 10 && done == total);
  assert_int_equal(olmoc_after("OLMOC_PROGRESS_DELAY=0", strcat(args, " -q")), 0);
  assert_null(strstr(out, "writing checkpoint"));

  snprintf(args, sizeof args, "quantize -m models/olmo2-tiny -o %s/q4", tmpdir);
  assert_int_equal(olmoc_after("OLMOC_PROGRESS_DELAY=0", args), 0);
  assert_true(!strncmp(last_line("quantizing weights ["), "quantizing weights [47/47 tensors] ", 35));
  assert_int_equal(olmoc_after("OLMOC_PROGRESS_DELAY=0", strcat(args, " -q")), 0);
  assert_null(strstr(out, "quantizing weights"));

  snprintf(args, sizeof args, "compile --embed-weights -o %s/tiny", tmpdir);
  assert_int_equal(olmoc_after("OLMOC_PROGRESS_DELAY=0", args), 0);
  assert_true(!strncmp(last_line("packing weights ["), "packing weights [29/29 tensors] ", 32));
  last_line("compiling kernels [");
  assert_true(!strncmp(last_line("linking ["), "linking [1/1 binary] ", 21));
  const char *embedded = last_line("embedding weights [");
  assert_int_equal(sscanf(embedded, "embedding weights [%d/%d MiB]", &done, &total), 2);
  assert_true(total >= 8 && done == total); /* the bundled model's 8 MB, and the program's */
  expect_output("models/olmo2-tiny for "); /* the summary, as always */
  snprintf(args, sizeof args, "OLMOC_PROGRESS_DELAY=0 %s/tiny -p Hi -n 2 --temp 0 >%s/log 2>&1", tmpdir, tmpdir);
  assert_int_equal(system(args), 0);
  snprintf(args, sizeof args, "%s/log", tmpdir);
  size_t n;
  char *log = slurp(args, &n);
  snprintf(out, sizeof out, "%s", log);
  free(log);
  wrote = last_line("reading weights [");
  assert_int_equal(sscanf(wrote, "reading weights [%d/%d sections]", &done, &total), 2);
  assert_true(total == 49 && done == total); /* 29 matrices, the embedding, 17 norms, 2 rope tables */
  snprintf(args, sizeof args, "OLMOC_PROGRESS_DELAY=0 %s/tiny -q -p Hi -n 2 --temp 0 2>&1 | grep -c weights",
           tmpdir);
  assert_int_not_equal(system(args), 0); /* grep found nothing */
}

/* On a pseudo-terminal the bar is redrawn in place: a carriage return
 * before each drawing, the line cleared after it, a newline at the end. */
static void test_terminal(void **state) {
  (void)state;
  int master;
  pid_t pid = forkpty(&master, NULL, NULL, NULL);
  assert_true(pid >= 0);
  if (pid == 0) {
    setenv("OLMOC_PROGRESS_DELAY", "0", 1);
    execl(OLMOC_BUILD_DIR "/olmoc", "olmoc", "run", "-p", "Hi", "-n", "2", "--temp", "0", (char *)NULL);
    _exit(127);
  }
  size_t n = 0;
  for (;;) {
    ssize_t k = read(master, out + n, sizeof out - 1 - n);
    if (k > 0)
      n += (size_t)k;
    else if (k < 0 && errno == EINTR)
      continue;
    else
      break; /* EIO: the child closed the terminal */
  }
  out[n] = '\0';
  close(master);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  expect_output("\rpacking weights [");
  expect_output("\rpacking weights [####################] 29/29 tensors, ");
  expect_output("\rcompiling kernels [");
  expect_output("\033[K\r\n"); /* a step's last drawing ends its line (the terminal adds \r) */
  expect_output("generation: 2 tokens");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_lines),
      cmocka_unit_test(test_quick_step_silent),
      cmocka_unit_test(test_terminal_bar),
      cmocka_unit_test(test_note_and_rate),
      cmocka_unit_test(test_silent_and_environment),
      cmocka_unit_test(test_pipe_lines),
      cmocka_unit_test(test_writers),
      cmocka_unit_test(test_terminal),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
