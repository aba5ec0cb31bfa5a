/* What the passes cost on graphs built to be their worst case, counted in
 * the nodes their rewrites visit (pass_record.work), never timed: cse on
 * 20,000 duplicates and on a node read 100,000 times, and dce on a dead
 * chain of 200,000 nodes (once a recursion per node, which overflowed the
 * stack), each within a few visits a node. The results are checked too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "olmoc/ir_text.h"
#include "olmoc/passes.h"

#define BUDGET 8 /* visits a node */

/* Text of a graph: its lines from line(i, buf) for i in [0, n), then `tail`. */
static ir_graph *generated(int n, void (*line)(int i, char *buf, size_t len), const char *tail) {
  size_t cap = (size_t)n * 160 + strlen(tail) + 256, len = 0; /* a line set is under 160 bytes */
  char *text = malloc(cap);
  assert_non_null(text);
  len += (size_t)snprintf(text, cap, "%%x = input \"x\" : f32[T,4]\n");
  for (int i = 0; i < n; i++) {
    line(i, text + len, cap - len);
    len += strlen(text + len);
  }
  snprintf(text + len, cap - len, "%s", tail);
  ir_graph *g;
  oc_error e = {{0}};
  if (ir_parse(text, "generated", &g, &e))
    fail_msg("%s", e.msg);
  free(text);
  return g;
}

/* Runs one pass; returns its record. */
static pass_record run(ir_graph *g, const char *pass) {
  pass_options o = {.passes = pass};
  pass_result r;
  oc_error e = {{0}};
  if (pass_run_pipeline(g, &o, &r, &e))
    fail_msg("%s", e.msg);
  pass_record rec = r.rec[0];
  pass_result_free(&r);
  return rec;
}

/* d_i = x*x (all the same), s_i = s_{i-1} + d_i: every d_i but the first merges. */
static void duplicate(int i, char *buf, size_t len) {
  if (i == 0)
    snprintf(buf, len, "%%d0 = mul %%x, %%x : f32[T,4]\n%%s0 = add %%d0, %%d0 : f32[T,4]\n");
  else
    snprintf(buf, len, "%%d%d = mul %%x, %%x : f32[T,4]\n%%s%d = add %%s%d, %%d%d : f32[T,4]\n", i, i, i - 1, i);
}

static void test_cse_duplicates(void **state) {
  (void)state;
  enum { N = 20000 };
  ir_graph *g = generated(N, duplicate, "%y = output \"y\" %s19999 : f32[T,4]\n");
  int nodes = g->n;
  pass_record r = run(g, "cse");
  assert_int_equal(r.changes, N - 1);
  assert_int_equal(g->n, nodes - (N - 1));
  if (r.work > (int64_t)BUDGET * nodes)
    fail_msg("cse visited %lld nodes for a graph of %d", (long long)r.work, nodes);
  ir_graph_free(g);
}

/* f_i = x + x, then each f_i read once more by n_i = neg f_i, the n_i summed:
 * the f_i merge into one node read by all 100,000 n_i (which then merge too). */
static void fan_out(int i, char *buf, size_t len) {
  if (i == 0)
    snprintf(buf, len, "%%f0 = add %%x, %%x : f32[T,4]\n%%n0 = neg %%f0 : f32[T,4]\n%%s0 = add %%n0, %%n0 : f32[T,4]\n");
  else
    snprintf(buf, len, "%%f%d = add %%x, %%x : f32[T,4]\n%%n%d = neg %%f%d : f32[T,4]\n%%s%d = add %%s%d, %%n%d : f32[T,4]\n",
             i, i, i, i, i - 1, i);
}

static void test_cse_fan_out(void **state) {
  (void)state;
  enum { N = 100000 };
  ir_graph *g = generated(N, fan_out, "%y = output \"y\" %s99999 : f32[T,4]\n");
  int nodes = g->n;
  pass_record r = run(g, "cse");
  assert_int_equal(r.changes, 2 * (N - 1));
  if (r.work > (int64_t)BUDGET * nodes)
    fail_msg("cse visited %lld nodes for a graph of %d", (long long)r.work, nodes);
  ir_graph_free(g);
}

/* c_i = neg c_{i-1}, read by nothing in the end. */
static void dead_chain(int i, char *buf, size_t len) {
  if (i == 0)
    snprintf(buf, len, "%%c0 = neg %%x : f32[T,4]\n");
  else
    snprintf(buf, len, "%%c%d = neg %%c%d : f32[T,4]\n", i, i - 1);
}

static void test_dce_long_chain(void **state) {
  (void)state;
  enum { N = 200000 };
  ir_graph *g = generated(N, dead_chain, "%y = output \"y\" %x : f32[T,4]\n");
  int nodes = g->n;
  pass_record r = run(g, "dce");
  assert_int_equal(r.changes, N);
  assert_int_equal(g->n, 2); /* the input and the output */
  if (r.work > (int64_t)BUDGET * nodes)
    fail_msg("dce visited %lld nodes for a graph of %d", (long long)r.work, nodes);
  ir_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cse_duplicates),
      cmocka_unit_test(test_cse_fan_out),
      cmocka_unit_test(test_dce_long_chain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
