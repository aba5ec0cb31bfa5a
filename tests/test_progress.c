/* Progress (olmoc/progress.h): the bar's lines, pinned character for
 * character on a fake clock in both modes (when a step draws, how often,
 * its counts, rate and note). */
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
  unsetenv("OLMOC_PROGRESS_DELAY");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_lines),
      cmocka_unit_test(test_quick_step_silent),
      cmocka_unit_test(test_terminal_bar),
      cmocka_unit_test(test_note_and_rate),
      cmocka_unit_test(test_silent_and_environment),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
