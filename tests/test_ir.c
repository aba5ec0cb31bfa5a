/* The IR core: dims and types, the builder's inference and sticky error, the
 * verifier on hand-built graphs, and error message wrapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "olmoc/file.h"
#include "olmoc/ir.h"

#define F32(...) ((ir_type){IR_F32, ir_shape_of(sizeof((ir_dim[]){__VA_ARGS__}) / sizeof(ir_dim), (ir_dim[]){__VA_ARGS__})})
#define C(n) ir_const_dim(n)

static bool has_type(const ir_graph *g, int id, ir_type t) { return ir_type_eq(&g->nodes[id].type, &t); }

static void test_dim_text_and_eval(void **state) {
  (void)state;
  char b[64];
  assert_string_equal(ir_dim_str(IR_DIM_T, b, sizeof b), "T");
  assert_string_equal(ir_dim_str((ir_dim){0, 1, 1}, b, sizeof b), "P+T");
  assert_string_equal(ir_dim_str((ir_dim){-3, 2, 0}, b, sizeof b), "2*T-3");
  assert_string_equal(ir_dim_str(C(0), b, sizeof b), "0");
  assert_int_equal(ir_dim_eval((ir_dim){5, 2, 1}, 3, 10), 5 + 6 + 10);
  ir_type t = F32(IR_DIM_T, C(2048));
  assert_string_equal(ir_type_str(&t, b, sizeof b), "f32[T,2048]");
  assert_int_equal(ir_dtype_lookup("bf16"), IR_BF16);
  assert_int_equal(ir_dtype_lookup("f64"), -1);
  assert_int_equal(ir_dtype_size(IR_F16), 2);
  assert_int_equal(ir_op_lookup("matmul"), IR_MATMUL);
  assert_int_equal(ir_op_lookup("nope"), -1);
}

static void test_builder_infers_types(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int x = ir_input(g, "x", F32(IR_DIM_T, C(8)));
  int w = ir_weight(g, "w", F32(C(6), C(8)));
  int y = ir_binary(g, IR_MATMUL, x, w);
  assert_true(has_type(g, y, F32(IR_DIM_T, C(6))));
  int m = ir_unary(g, IR_REDUCE_MEAN, y);
  assert_true(has_type(g, m, F32(IR_DIM_T, C(1))));
  int s = ir_binary(g, IR_MUL, y, ir_const(g, 2.0)); /* scalar broadcast */
  assert_true(ir_type_eq(&g->nodes[s].type, &g->nodes[y].type));
  int r = ir_reshape(g, s, ir_shape_of(3, (ir_dim[]){IR_DIM_T, C(2), C(3)}));
  int t = ir_transpose(g, r, (int[]){1, 0, 2});
  assert_true(has_type(g, t, F32(C(2), IR_DIM_T, C(3))));
  int rep = ir_repeat(g, r, 1, 4);
  assert_true(has_type(g, rep, F32(IR_DIM_T, C(8), C(3))));
  int cache = ir_kv_cache(g, "k", F32(IR_DIM_P, C(2), C(3)));
  int all = ir_binary(g, IR_KV_APPEND, cache, r);
  assert_true(has_type(g, all, F32(((ir_dim){0, 1, 1}), C(2), C(3))));
  ir_output(g, "y", s);
  oc_error e;
  assert_int_equal(ir_graph_status(g, &e), 0);
  assert_int_equal(ir_verify(g, &e), 0);
  ir_graph_free(g);
}

static void test_builder_error_is_sticky(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int x = ir_input(g, "x", F32(IR_DIM_T, C(8)));
  int w = ir_weight(g, "w", F32(C(6), C(7)));
  int y = ir_binary(g, IR_MATMUL, x, w);           /* K mismatch: the first error */
  ir_slice(g, x, 1, 4, 99);                        /* a later one is not kept */
  ir_output(g, "y", y);
  oc_error e;
  assert_int_equal(ir_graph_status(g, &e), -1);
  assert_non_null(strstr(e.msg, "node %2 (matmul)"));
  assert_non_null(strstr(e.msg, "last dims, which differ"));
  ir_graph_free(g);
}

/* Builds a well-formed graph, lets `spoil` break it, and checks the verifier's message. */
static void expect_rejected(void (*spoil)(ir_graph *g), const char *words) {
  ir_graph *g = ir_graph_new();
  int x = ir_input(g, "x", F32(IR_DIM_T, C(4)));
  int w = ir_weight(g, "w", F32(C(4), C(4)));
  ir_output(g, "y", ir_binary(g, IR_MATMUL, x, w));
  spoil(g);
  oc_error e = {{0}};
  assert_int_equal(ir_verify(g, &e), -1);
  if (!strstr(e.msg, words))
    fail_msg("message '%s' lacks '%s'", e.msg, words);
  ir_graph_free(g);
}

static void forward_reference(ir_graph *g) { g->nodes[2].in[0] = 2; }
static void wrong_declared_type(ir_graph *g) { g->nodes[2].type.shape.dim[1] = C(5); }
static void symbolic_weight(ir_graph *g) { g->nodes[1].type.shape.dim[0] = IR_DIM_T; }
static void no_output(ir_graph *g) {
  free(g->nodes[3].name);
  g->n = 3;
}
static void duplicate_name(ir_graph *g) { ir_weight(g, "w", F32(C(4), C(4))); }
static void unknown_op(ir_graph *g) { g->nodes[2].op = IR_OP_COUNT; }
static void empty_name(ir_graph *g) { g->nodes[1].name[0] = '\0'; }

static void test_verifier_rejects(void **state) {
  (void)state;
  expect_rejected(forward_reference, "not an earlier node");
  expect_rejected(wrong_declared_type, "declared type f32[T,5] but its inputs give f32[T,4]");
  expect_rejected(symbolic_weight, "positive constants");
  expect_rejected(no_output, "no output");
  expect_rejected(duplicate_name, "already used by %1");
  expect_rejected(unknown_op, "unknown op");
  expect_rejected(empty_name, "needs a name");
}

/* Dims from a file can be huge: arithmetic on them fails cleanly, never overflows. */
static void test_dim_overflow(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int x = ir_input(g, "x", F32(C(INT64_MAX / 2 + 1), C(2)));
  ir_concat(g, x, x, 0);
  oc_error e;
  assert_int_equal(ir_graph_status(g, &e), -1);
  assert_non_null(strstr(e.msg, "concat along axis 0 overflows"));
  ir_graph_free(g);

  g = ir_graph_new();
  ir_repeat(g, ir_input(g, "x", F32(C(INT64_MAX / 3), C(2))), 0, 4);
  assert_int_equal(ir_graph_status(g, &e), -1);
  assert_non_null(strstr(e.msg, "repeat along axis 0 overflows"));
  ir_graph_free(g);

  g = ir_graph_new();
  int big = ir_input(g, "x", F32(C(INT64_MAX / 2), C(4), C(4)));
  ir_reshape(g, big, ir_shape_of(2, (ir_dim[]){C(1), C(2)}));
  assert_int_equal(ir_graph_status(g, &e), -1);
  assert_non_null(strstr(e.msg, "cannot reshape"));
  ir_graph_free(g);

  char b[64];
  assert_string_equal(ir_dim_str(C(INT64_MIN), b, sizeof b), "-9223372036854775808");
}

static void test_file_read(void **state) {
  (void)state;
  oc_file f;
  oc_error e;
  assert_int_equal(oc_file_read(&f, "tests/data/tiny", "config.json", 1 << 20, false, &e), 0);
  assert_string_equal(f.path, "tests/data/tiny/config.json");
  assert_int_equal(strlen(f.data), f.len);
  assert_non_null(strstr(f.data, "Olmo2ForCausalLM"));
  oc_file_free(&f);
  assert_int_equal(oc_file_read(&f, "tests/data/tiny", "config.json", 10, false, &e), -1);
  assert_non_null(strstr(e.msg, "tests/data/tiny/config.json: "));
  assert_non_null(strstr(e.msg, "more than the 10"));
  assert_int_equal(oc_file_read(&f, "tests/data/tiny", NULL, 1 << 20, false, &e), -1);
  assert_string_equal(e.msg, "tests/data/tiny: not a regular file");
  assert_int_equal(oc_file_read(&f, "tests/data/tiny", "absent.json", 1 << 20, true, &e), 0);
  assert_null(f.data);
  oc_file_free(&f);
  assert_int_equal(oc_file_read(&f, "tests/data/tiny", "absent.json", 1 << 20, false, &e), -1);
  assert_string_equal(e.msg, "tests/data/tiny/absent.json: cannot open: No such file or directory");

  char where[96];
  const char *text = "{\n  \"a\": 1x\n}";
  assert_string_equal(oc_text_where(text, strlen(text), text + 10, where, sizeof where),
                      "line 2, column 9 (near 'x')");
  assert_string_equal(oc_text_where(text, strlen(text), NULL, where, sizeof where),
                      "line 3, column 2 (unexpected end of file)");
  assert_string_equal(oc_text_where(text, strlen(text), text + 1, where, sizeof where),
                      "line 1, column 2 (at the end of the line)");
}

static void test_error_wrap(void **state) {
  (void)state;
  oc_error e;
  assert_int_equal(oc_fail(&e, "tensor '%s' is missing", "a"), -1);
  assert_int_equal(oc_wrap(&e, "%s", "model.safetensors"), -1);
  assert_string_equal(e.msg, "model.safetensors: tensor 'a' is missing");
  char long_prefix[2000];
  memset(long_prefix, 'x', sizeof long_prefix - 1);
  long_prefix[sizeof long_prefix - 1] = '\0';
  for (int i = 0; i < 3; i++)
    oc_wrap(&e, "%s", long_prefix); /* prefixes are cut short, the message never overflows */
  assert_true(strlen(e.msg) < sizeof e.msg);
  assert_memory_equal(e.msg, "xxxx", 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dim_text_and_eval),
      cmocka_unit_test(test_builder_infers_types),
      cmocka_unit_test(test_builder_error_is_sticky),
      cmocka_unit_test(test_verifier_rejects),
      cmocka_unit_test(test_dim_overflow),
      cmocka_unit_test(test_file_read),
      cmocka_unit_test(test_error_wrap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
