/* Hand-written graphs through the passes, FileCheck-style: each
 * tests/data/passes/X.ir says what to run (`# RUN: --passes=a,b` or
 * `# RUN: -O2`) and what the printed result must hold: `# CHECK: text` lines
 * in order, `# CHECK-NOT: text` nowhere. Every file is also an oracle test:
 * the interpreter gives the same outputs before and after, on random weights
 * and inputs, over two calls (so through the KV cache), and the result
 * round-trips through the text form. Near-misses are files whose CHECK-NOT
 * says the fused op must not appear. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "olmoc/interp.h"
#include "olmoc/ir_text.h"
#include "olmoc/passes.h"

#define DATA "tests/data/passes"
#define MAX_TENSORS 64

typedef struct tensors {
  int n;
  char *name[MAX_TENSORS];
  ir_tensor t[MAX_TENSORS];
} tensors;

static void check(int rc, const oc_error *e, const char *file) {
  if (rc)
    fail_msg("%s: %s", file, e->msg);
}

static float uniform(uint32_t *s) {
  *s = *s * 1664525u + 1013904223u;
  return (float)(*s >> 8) / (float)(1u << 23) - 1.0f;
}

static uint32_t seed_of(const char *name, int call) {
  uint32_t h = 2166136261u + (uint32_t)call;
  for (; *name; name++)
    h = (h ^ (unsigned char)*name) * 16777619u;
  return h;
}

/* Random values for node n's type at T, P: f32 in [-1, 1), i32 in [0, 4). */
static void add_tensor(tensors *ts, const ir_node *n, int64_t T, int64_t P, int call) {
  assert_true(ts->n < MAX_TENSORS);
  ir_tensor *t = &ts->t[ts->n];
  *t = (ir_tensor){.dtype = n->type.dtype, .rank = n->type.shape.rank};
  int64_t count = 1;
  for (int i = 0; i < t->rank; i++)
    count *= t->dims[i] = ir_dim_eval(n->type.shape.dim[i], T, P);
  void *data = malloc((size_t)(count ? count : 1) * 4);
  assert_non_null(data);
  uint32_t s = seed_of(n->name, call);
  for (int64_t i = 0; i < count; i++)
    if (t->dtype == IR_I32)
      ((int32_t *)data)[i] = (int32_t)((uniform(&s) + 1.0f) * 2.0f);
    else
      ((float *)data)[i] = uniform(&s);
  t->data = data;
  ts->name[ts->n++] = n->name;
}

static void free_tensors(tensors *ts) {
  for (int i = 0; i < ts->n; i++)
    free((void *)ts->t[i].data);
  ts->n = 0;
}

static int lookup(void *ctx, const char *name, ir_tensor *out, oc_error *e) {
  tensors *ts = ctx;
  for (int i = 0; i < ts->n; i++)
    if (!strcmp(ts->name[i], name))
      return *out = ts->t[i], 0;
  return oc_fail(e, "no weight %s", name);
}

/* Runs calls of 3 then 2 tokens through before and after; every output agrees. */
static void same_outputs(const char *file, const ir_graph *before, const ir_graph *after) {
  tensors weights = {0};
  for (int i = 0; i < before->n; i++)
    if (before->nodes[i].op == IR_WEIGHT)
      add_tensor(&weights, &before->nodes[i], 0, 0, 0);
  ir_interp *a, *b;
  oc_error e;
  check(ir_interp_new(before, 16, lookup, &weights, &a, &e), &e, file);
  check(ir_interp_new(after, 16, lookup, &weights, &b, &e), &e, file);
  for (int call = 0, P = 0; call < 2; P += 3 - call, call++) {
    int64_t T = 3 - call;
    tensors in = {0};
    ir_binding bind[MAX_TENSORS];
    for (int i = 0; i < before->n; i++)
      if (before->nodes[i].op == IR_INPUT) {
        add_tensor(&in, &before->nodes[i], T, P, call + 1);
        bind[in.n - 1] = (ir_binding){in.name[in.n - 1], in.t[in.n - 1]};
      }
    check(ir_interp_run(a, T, bind, in.n, &e), &e, file);
    check(ir_interp_run(b, T, bind, in.n, &e), &e, file);
    for (int i = 0; i < before->n; i++) {
      if (before->nodes[i].op != IR_OUTPUT)
        continue;
      const ir_tensor *x = ir_interp_output(a, before->nodes[i].name);
      const ir_tensor *y = ir_interp_output(b, before->nodes[i].name);
      assert_non_null(x);
      assert_non_null(y);
      int64_t count = ir_shape_numel(&before->nodes[i].type.shape, T, P);
      for (int64_t k = 0; k < count; k++) {
        float u = ((const float *)x->data)[k], v = ((const float *)y->data)[k];
        bool same = fabsf(u - v) <= 1e-5f * fmaxf(1.0f, fabsf(u)) || u == v || (isnan(u) && isnan(v));
        if (!same)
          fail_msg("%s: output %s[%lld] is %g after the passes, %g before", file,
                   before->nodes[i].name, (long long)k, v, u);
      }
    }
    free_tensors(&in);
  }
  ir_interp_free(a);
  ir_interp_free(b);
  free_tensors(&weights);
}

/* Every `# CHECK: text` of the file found in printed, each after the last;
 * no `# CHECK-NOT: text` found anywhere. */
static void check_lines(const char *file, const char *text, const char *printed) {
  const char *from = printed;
  for (const char *line = text; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    char want[512];
    size_t len = strcspn(line, "\n");
    bool not = !strncmp(line, "# CHECK-NOT: ", 13);
    if (!not && strncmp(line, "# CHECK: ", 9))
      continue;
    size_t skip = not ? 13 : 9;
    snprintf(want, sizeof want, "%.*s", (int)(len - skip), line + skip);
    const char *at = strstr(not ? printed : from, want);
    if (not && at)
      fail_msg("%s: \"%s\" must not appear in:\n%s", file, want, printed);
    if (!not && !at)
      fail_msg("%s: \"%s\" not found (in order) in:\n%s", file, want, printed);
    if (!not)
      from = at + strlen(want);
  }
}

static void run_file(const char *file) {
  FILE *f = fopen(file, "rb");
  assert_non_null(f);
  static char text[1 << 16];
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  const char *run = strstr(text, "# RUN: ");
  if (!run)
    fail_msg("%s: no `# RUN:` line", file);
  char args[256];
  snprintf(args, sizeof args, "%.*s", (int)strcspn(run + 7, "\n"), run + 7);
  pass_options o = {0};
  if (!strncmp(args, "-O", 2))
    o.level = args[2] - '0';
  else if (!strncmp(args, "--passes=", 9))
    o.passes = args + 9;
  else
    fail_msg("%s: RUN takes -ON or --passes=..., found %s", file, args);
  ir_graph *before, *after, *again;
  oc_error e;
  pass_result r;
  check(ir_parse(text, file, &before, &e) || ir_verify(before, &e), &e, file);
  check(ir_parse(text, file, &after, &e), &e, file);
  check(pass_run_pipeline(after, &o, &r, &e), &e, file);
  pass_result_free(&r);
  char *printed = ir_print_string(after);
  check_lines(file, text, printed);
  check(ir_parse(printed, file, &again, &e) || ir_verify(again, &e), &e, file);
  char *reprinted = ir_print_string(again);
  assert_string_equal(printed, reprinted);
  same_outputs(file, before, after);
  printf("%s: ok (%d -> %d nodes)\n", file, before->n, after->n);
  free(printed);
  free(reprinted);
  ir_graph_free(before);
  ir_graph_free(after);
  ir_graph_free(again);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_every_file(void **state) {
  (void)state;
  DIR *d = opendir(DATA);
  assert_non_null(d);
  char *names[256];
  int count = 0;
  for (struct dirent *de; (de = readdir(d)) && count < 256;) {
    size_t len = strlen(de->d_name);
    if (len > 3 && !strcmp(de->d_name + len - 3, ".ir"))
      names[count++] = strdup(de->d_name);
  }
  closedir(d);
  qsort(names, (size_t)count, sizeof *names, by_name);
  assert_true(count >= 10);
  for (int i = 0; i < count; i++) {
    char path[512];
    snprintf(path, sizeof path, DATA "/%s", names[i]);
    run_file(path);
    free(names[i]);
  }
}

/* Random elementwise chains of 1 to 200 ops, each op reading the chain so far
 * and an input, an earlier link (read twice, so not inlined) or the chain
 * itself (half the chains inputs only, so their exprs grow to the limit), give the interpreter's values before and after fuse-elementwise,
 * however the chain splits into exprs. */
static void test_random_chains(void **state) {
  (void)state;
  static const char *const binary[] = {"add", "sub", "mul"}, *const unary[] = {"neg", "sigmoid"};
  static char text[1 << 16];
  uint32_t s = 12345;
  for (int chain = 0; chain < 60; chain++) {
    int ops = 1 + (int)((uniform(&s) + 1.0f) * 100.0f) % 200;
    if (chain < 3)
      ops = (int[]){1, 63, 200}[chain];
    size_t len = (size_t)snprintf(text, sizeof text, "%%i0 = input \"a\" : f32[T,4]\n"
                                  "%%i1 = input \"b\" : f32[T,4]\n%%n0 = sigmoid %%i0 : f32[T,4]\n");
    for (int k = 1; k <= ops; k++) {
      int pick = (int)((uniform(&s) + 1.0f) * 8.0f) % 8;
      if (chain % 2 == 0 && pick >= 2 && pick < 7) /* half the chains read inputs only: long exprs */
        pick %= 2;
      char other[32];
      if (pick < 2)
        snprintf(other, sizeof other, "%%i%d", pick);
      else if (pick < 4)
        snprintf(other, sizeof other, "%%n%d", k - 1);
      else
        snprintf(other, sizeof other, "%%n%d", (int)((uniform(&s) + 1.0f) * 0.5f * (float)k) % k);
      if (pick == 7)
        len += (size_t)snprintf(text + len, sizeof text - len, "%%n%d = %s %%n%d : f32[T,4]\n", k,
                                unary[k % 2], k - 1);
      else
        len += (size_t)snprintf(text + len, sizeof text - len, "%%n%d = %s %%n%d, %s : f32[T,4]\n", k,
                                binary[k % 3], k - 1, other);
    }
    len += (size_t)snprintf(text + len, sizeof text - len, "%%o = output \"y\" %%n%d : f32[T,4]\n", ops);
    assert_true(len < sizeof text);
    char name[64];
    snprintf(name, sizeof name, "chain %d (%d ops)", chain, ops);
    ir_graph *before, *after;
    oc_error e;
    pass_result r;
    check(ir_parse(text, name, &before, &e) || ir_verify(before, &e), &e, name);
    check(ir_parse(text, name, &after, &e), &e, name);
    check(pass_run_pipeline(after, &(pass_options){.passes = "fuse-elementwise,dce"}, &r, &e) ||
              ir_verify(after, &e), &e, name);
    pass_result_free(&r);
    same_outputs(name, before, after);
    ir_graph_free(before);
    ir_graph_free(after);
  }
}

/* An unknown pass name, and a graph that does not verify, are refused before
 * anything runs, with a message that says which; a malformed elementwise expr
 * is found by the verifier, too many inputs by the parser. */
static void test_errors(void **state) {
  (void)state;
  ir_graph *g;
  oc_error e;
  pass_result r;
  assert_int_equal(ir_parse_file(DATA "/rmsnorm.ir", &g, &e), 0);
  assert_int_equal(pass_run_pipeline(g, &(pass_options){.passes = "fuse-rmsnorm,fuse-foo"}, &r, &e), -1);
  assert_non_null(strstr(e.msg, "unknown pass 'fuse-foo'"));
  assert_int_equal(pass_run_pipeline(g, &(pass_options){.level = 2, .disable = "nope"}, &r, &e), -1);
  assert_non_null(strstr(e.msg, "--disable-pass: unknown pass 'nope'"));
  g->nodes[g->n - 2].type.dtype = IR_I32; /* the norm's result, declared i32 */
  assert_int_equal(pass_run_pipeline(g, NULL, &r, &e), -1);
  assert_non_null(strstr(e.msg, "does not verify"));
  pass_result_free(&r);
  ir_graph_free(g);
  static const char *const bad[] = {"%0 %1 mul", "%0 mul", "%0 %0", "%0 pow", "%0 rope"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char text[256];
    snprintf(text, sizeof text, "%%x = input \"x\" : f32[T]\n%%y = elementwise %%x {expr=\"%s\"} : f32[T]\n"
             "%%o = output \"y\" %%y : f32[T]\n", bad[i]);
    assert_int_equal(ir_parse(text, "bad.ir", &g, &e), 0);
    assert_int_equal(ir_verify(g, &e), -1);
    assert_non_null(strstr(e.msg, "node %1 (elementwise): expr"));
    ir_graph_free(g);
  }
  assert_int_equal(ir_parse("%x = input \"x\" : f32[T]\n%y = elementwise %x, %x, %x, %x, %x "
                            "{expr=\"%0\"} : f32[T]\n", "bad.ir", &g, &e), -1);
  assert_non_null(strstr(e.msg, "takes 1 to 4 inputs, found more"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_file),
      cmocka_unit_test(test_random_chains),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
