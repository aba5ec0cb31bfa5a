/* The text files commands evaluate (tokenize -f, perplexity -f): a NUL byte
 * or ill-formed UTF-8 is refused with exit status 1 and a message naming the
 * file and the offset (from 0) and value of the first bad byte, whatever the
 * kind of ill-formedness; --allow-invalid-utf8 reads the bytes as the
 * tokenizer always has (the same ids as the bytes given on the command line,
 * the same perplexity as the text with U+FFFD in their place). */
#include "cli_harness.h"

typedef struct bad_text {
  const char *data;
  size_t n;
  const char *says; /* after "FILE: " */
} bad_text;

#define BAD(text, says) {text, sizeof text - 1, says}
static const bad_text bad[] = {
    BAD("Hello \xff world", "byte 6 is not UTF-8 (0xff)"),
    BAD("ab\xe2\x82", "byte 2 is not UTF-8 (0xe2)"),             /* cut short by the end */
    BAD("ab\xe2\x82x", "byte 2 is not UTF-8 (0xe2)"),            /* a continuation missing */
    BAD("\xc3\xa9t\xc3\xa9 \xc0\xaf", "byte 6 is not UTF-8 (0xc0)"), /* an overlong '/' after two é */
    BAD("x\xed\xa0\x80", "byte 1 is not UTF-8 (0xed)"),          /* a surrogate */
    BAD("x\xf4\x90\x80\x80", "byte 1 is not UTF-8 (0xf4)"),      /* past U+10FFFF */
    BAD("\x80", "byte 0 is not UTF-8 (0x80)"),                    /* a lone continuation */
    BAD("abc\0def", "byte 3 is a NUL byte"),
    BAD("a\xff" "b\0", "byte 1 is not UTF-8 (0xff)"),             /* the first bad byte wins */
    BAD("ab\0\xff", "byte 2 is a NUL byte"),
};

static void expect_refused(const char *command) {
  char args[512], says[512];
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    const char *path = tmp_file("bad.txt", bad[i].data, bad[i].n);
    snprintf(args, sizeof args, "%s -f %s", command, path);
    assert_int_equal(olmoc(args), 1);
    snprintf(says, sizeof says, "%s: %s", path, bad[i].says);
    expect_output(says);
    expect_output("--allow-invalid-utf8");
  }
  /* from standard input */
  snprintf(args, sizeof args, "%s -f - <%s", command, tmp_file("bad.txt", "ok\xfe", 3));
  assert_int_equal(olmoc(args), 1);
  expect_output("standard input: byte 2 is not UTF-8 (0xfe)");
}

static void test_tokenize_refuses(void **state) {
  (void)state;
  expect_refused("tokenize");
}

/* Allowed, the file's bytes give the ids the same bytes give as TEXT. */
static void test_tokenize_allowed(void **state) {
  (void)state;
  char args[512];
  static char want[sizeof out];
  assert_int_equal(olmoc("tokenize --ids-only \"$(printf 'Hello \\377 w\\303\\251rld\\342\\202')\""), 0);
  snprintf(want, sizeof want, "%s", out);
  snprintf(args, sizeof args, "tokenize --ids-only --allow-invalid-utf8 -f %s",
           tmp_file("bad.txt", "Hello \xff w\xc3\xa9rld\xe2\x82", 15));
  assert_int_equal(olmoc(args), 0);
  assert_string_equal(out, want);
  snprintf(args, sizeof args, "tokenize --allow-invalid-utf8 -f %s", tmp_file("nul.txt", "abc\0d", 5));
  assert_int_equal(olmoc(args), 0);
  expect_output("\t\"\\x00\"\n"); /* the NUL byte's token */
  /* good text is read as before, with or without the flag */
  assert_int_equal(olmoc("tokenize --ids-only \"$(printf 'w\\303\\251rld')\""), 0);
  snprintf(want, sizeof want, "%s", out);
  const char *good = tmp_file("good.txt", "w\xc3\xa9rld", 6);
  for (int allow = 0; allow < 2; allow++) {
    snprintf(args, sizeof args, "tokenize --ids-only -f %s%s", good, allow ? " --allow-invalid-utf8" : "");
    assert_int_equal(olmoc(args), 0);
    assert_string_equal(out, want);
  }
}

static void test_perplexity_refuses(void **state) {
  (void)state;
  expect_refused("perplexity");
}

/* Allowed, the text is evaluated: the same figure as for the bytes the
 * tokenizer made of it (U+FFFD where they were ill-formed). */
static void test_perplexity_allowed(void **state) {
  (void)state;
  char args[512];
  const char *text = "The jury said \xff that the city is \xc0 large", *fixed = "The jury said \xef\xbf\xbd that "
                     "the city is \xef\xbf\xbd large";
  snprintf(args, sizeof args, "perplexity --allow-invalid-utf8 -f %s", tmp_file("bad.txt", text, strlen(text)));
  assert_int_equal(olmoc(args), 0);
  const char *at = strstr(out, "perplexity: ");
  assert_non_null(at);
  double allowed = atof(at + 12);
  snprintf(args, sizeof args, "perplexity -f %s", tmp_file("fixed.txt", fixed, strlen(fixed)));
  assert_int_equal(olmoc(args), 0);
  assert_non_null(at = strstr(out, "perplexity: "));
  assert_true(atof(at + 12) == allowed);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tokenize_refuses),
      cmocka_unit_test(test_tokenize_allowed),
      cmocka_unit_test(test_perplexity_refuses),
      cmocka_unit_test(test_perplexity_allowed),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
