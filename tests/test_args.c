/* base/args.c: an alias is a second row with the same target; a list option
 * keeps every value in order and refuses more than it holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "olmoc/args.h"

typedef struct opts {
  long n;
  cli_list stop;
  bool flag;
} opts;

static int parse(opts *o, int argc, char **argv, oc_error *e) {
  const cli_option table[] = {
      CLI_OPT_INT("-n", "--tokens", &o->n, -1, 100, NULL),
      CLI_OPT_INT(NULL, "--n-predict", &o->n, -1, 100, NULL),
      CLI_OPT_LIST(NULL, "--stop", &o->stop),
      CLI_OPT_LIST("-r", "--reverse-prompt", &o->stop),
      CLI_OPT_FLAG(NULL, "--flag", &o->flag),
      {0},
  };
  *o = (opts){0};
  return cli_parse(argc, argv, table, NULL, e);
}

static void test_alias_and_list(void **state) {
  (void)state;
  opts o;
  oc_error e;
  char *argv[] = {"x", "--n-predict", "7", "--stop", "a b", "-r", "c", "--reverse-prompt=d", "--stop", ""};
  assert_int_equal(parse(&o, 10, argv, &e), 0);
  assert_int_equal(o.n, 7);
  assert_int_equal(o.stop.n, 4);
  assert_string_equal(o.stop.item[0], "a b");
  assert_string_equal(o.stop.item[1], "c");
  assert_string_equal(o.stop.item[2], "d");
  assert_string_equal(o.stop.item[3], ""); /* what an empty value means is the command's to say */
  char *last[] = {"x", "-n", "3", "--n-predict", "5"};
  assert_int_equal(parse(&o, 5, last, &e), 0);
  assert_int_equal(o.n, 5); /* the last one given wins, whichever its spelling */
  char *missing[] = {"x", "--stop"};
  assert_int_equal(parse(&o, 2, missing, &e), -1);
  assert_string_equal(e.msg, "option '--stop' needs a value");
}

static void test_list_full(void **state) {
  (void)state;
  char *argv[2 * CLI_LIST_MAX + 3] = {"x"};
  for (int i = 0; i <= CLI_LIST_MAX; i++)
    argv[1 + 2 * i] = "-r", argv[2 + 2 * i] = "s";
  opts o;
  oc_error e;
  assert_int_equal(parse(&o, 2 * CLI_LIST_MAX + 1, argv, &e), 0);
  assert_int_equal(o.stop.n, CLI_LIST_MAX);
  assert_int_equal(parse(&o, 2 * CLI_LIST_MAX + 3, argv, &e), -1);
  assert_string_equal(e.msg, "-r: given more than 16 times");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alias_and_list),
      cmocka_unit_test(test_list_full),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
