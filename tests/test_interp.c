/* The reference interpreter: every op on a small hand-built graph against
 * values written out here (or computed here with libm for rope), the KV cache
 * across calls, bf16/f16 weights, and the user errors it must report cleanly
 * (missing or misshapen weights and inputs, bad ids, a full context). */
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

#define NDIMS(...) ((int)(sizeof((ir_dim[]){__VA_ARGS__}) / sizeof(ir_dim)))
#define TYPE(dt, ...) ((ir_type){dt, ir_shape_of(NDIMS(__VA_ARGS__), (ir_dim[]){__VA_ARGS__})})
#define F32(...) TYPE(IR_F32, __VA_ARGS__)
#define I32(...) TYPE(IR_I32, __VA_ARGS__)
#define C(n) ir_const_dim(n)
#define T_ IR_DIM_T
#define P_ IR_DIM_P
#define PT ((ir_dim){0, 1, 1})
/* A concrete tensor: TENSOR(IR_F32, data, 3, 4). */
#define TENSOR(dt, data, ...)                                                                  \
  ((ir_tensor){dt, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), {__VA_ARGS__}, data})
#define BIND(name, dt, data, ...) ((ir_binding){name, TENSOR(dt, data, __VA_ARGS__)})
#define COUNT(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

/* Weights for the lookup callback: a list ending with a NULL name. */
typedef struct named {
  const char *name;
  ir_tensor t;
} named;

static int lookup(void *ctx, const char *name, ir_tensor *out, oc_error *e) {
  for (const named *w = ctx; w->name; w++)
    if (strcmp(w->name, name) == 0) {
      *out = w->t;
      return 0;
    }
  return oc_fail(e, "no tensor named \"%s\"", name);
}

static void ok(int rc, const oc_error *e) {
  if (rc)
    fail_msg("unexpected error: %s", e->msg);
}

/* Checks the builder, then makes an interpreter with the given weights. */
static ir_interp *make(ir_graph *g, int64_t max_ctx, const named *weights) {
  oc_error e;
  ir_interp *it = NULL;
  ok(ir_graph_status(g, &e), &e);
  ok(ir_interp_new(g, max_ctx, weights ? lookup : NULL, (void *)weights, &it, &e), &e);
  return it;
}

static void run(ir_interp *it, int64_t T, const ir_binding *in, int n_in) {
  oc_error e;
  ok(ir_interp_run(it, T, in, n_in, &e), &e);
}

/* The run must fail with a message containing `words`. */
static void run_fails(ir_interp *it, int64_t T, const ir_binding *in, int n_in, const char *words) {
  oc_error e = {{0}};
  assert_int_equal(ir_interp_run(it, T, in, n_in, &e), -1);
  if (!strstr(e.msg, words))
    fail_msg("expected \"%s\" in: %s", words, e.msg);
}

/* Output `name` has the dims given and values within tol of want (infinities exactly). */
static void expect(const ir_interp *it, const char *name, const float *want, int64_t n, double tol,
                   int rank, const int64_t *dims) {
  const ir_tensor *t = ir_interp_output(it, name);
  assert_non_null(t);
  assert_int_equal(t->dtype, IR_F32);
  assert_int_equal(t->rank, rank);
  int64_t numel = 1;
  for (int i = 0; i < rank; i++) {
    assert_int_equal(t->dims[i], dims[i]);
    numel *= dims[i];
  }
  assert_int_equal(numel, n);
  const float *got = t->data;
  for (int64_t i = 0; i < n; i++) {
    bool good = isinf(want[i]) ? got[i] == want[i] : fabs((double)got[i] - want[i]) <= tol;
    if (!good)
      fail_msg("%s[%lld] = %.9g, want %.9g", name, (long long)i, got[i], want[i]);
  }
}
#define EXPECT(it, name, want, ...) \
  expect(it, name, want, COUNT(want), 1e-6, DIMS(__VA_ARGS__))
#define DIMS(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))), (int64_t[]){__VA_ARGS__}

static void test_binary_broadcast(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int x = ir_input(g, "x", F32(C(3), C(1))), y = ir_input(g, "y", F32(C(4)));
  int mul = ir_binary(g, IR_MUL, x, y);
  ir_output(g, "mul", mul);
  ir_output(g, "add", ir_binary(g, IR_ADD, mul, ir_const(g, 0.5)));
  ir_output(g, "sub", ir_binary(g, IR_SUB, x, y));
  ir_output(g, "div", ir_binary(g, IR_DIV, y, x));
  ir_interp *it = make(g, 4, NULL);
  float xs[] = {1, 2, 3}, ys[] = {1, -2, 0.5f, 4};
  run(it, 1, (ir_binding[]){BIND("x", IR_F32, xs, 3, 1), BIND("y", IR_F32, ys, 4)}, 2);
  float mul_want[] = {1, -2, 0.5f, 4, 2, -4, 1, 8, 3, -6, 1.5f, 12};
  float add_want[] = {1.5f, -1.5f, 1, 4.5f, 2.5f, -3.5f, 1.5f, 8.5f, 3.5f, -5.5f, 2, 12.5f};
  float sub_want[] = {0, 3, 0.5f, -3, 1, 4, 1.5f, -2, 2, 5, 2.5f, -1};
  float div_want[] = {1, -2, 0.5f, 4, 0.5f, -1, 0.25f, 2, 0.333333333f, -0.666666667f, 0.166666667f,
                      1.33333333f};
  EXPECT(it, "mul", mul_want, 3, 4);
  EXPECT(it, "add", add_want, 3, 4);
  EXPECT(it, "sub", sub_want, 3, 4);
  EXPECT(it, "div", div_want, 3, 4);
  assert_null(ir_interp_output(it, "nope"));
  ir_interp_free(it);
  ir_graph_free(g);
}

static void test_unary(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int x = ir_input(g, "x", F32(C(5))), r = ir_input(g, "r", F32(C(4)));
  ir_output(g, "neg", ir_unary(g, IR_NEG, x));
  ir_output(g, "exp", ir_unary(g, IR_EXP, x));
  ir_output(g, "sigmoid", ir_unary(g, IR_SIGMOID, x));
  ir_output(g, "sqrt", ir_unary(g, IR_SQRT, r));
  ir_output(g, "rsqrt", ir_unary(g, IR_RSQRT, r));
  ir_output(g, "big", ir_unary(g, IR_SIGMOID, ir_binary(g, IR_MUL, x, ir_const(g, 1000))));
  ir_interp *it = make(g, 4, NULL);
  float xs[] = {0, 1, -1, 2, -20}, rs[] = {0.25f, 1, 4, 9};
  run(it, 1, (ir_binding[]){BIND("x", IR_F32, xs, 5), BIND("r", IR_F32, rs, 4)}, 2);
  float neg[] = {0, -1, 1, -2, 20};
  float ex[] = {1, 2.71828183f, 0.367879441f, 7.3890561f, 2.06115362e-09f};
  float sig[] = {0.5f, 0.731058579f, 0.268941421f, 0.880797078f, 2.06115362e-09f};
  float sq[] = {0.5f, 1, 2, 3}, rsq[] = {2, 1, 0.5f, 0.333333333f};
  float big[] = {0.5f, 1, 0, 1, 0}; /* e^±20000 saturates instead of overflowing */
  EXPECT(it, "neg", neg, 5);
  EXPECT(it, "exp", ex, 5);
  EXPECT(it, "sigmoid", sig, 5);
  EXPECT(it, "sqrt", sq, 4);
  EXPECT(it, "rsqrt", rsq, 4);
  EXPECT(it, "big", big, 5);
  ir_interp_free(it);
  ir_graph_free(g);
}

static void test_reductions_over_7(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int x = ir_input(g, "x", F32(C(2), C(7)));
  ir_output(g, "sum", ir_unary(g, IR_REDUCE_SUM, x));
  ir_output(g, "mean", ir_unary(g, IR_REDUCE_MEAN, x));
  ir_interp *it = make(g, 4, NULL);
  float xs[] = {1, 2, 3, 4, 5, 6, 7, 0.5f, -1, 2, -3, 4, -5, 6.25f};
  run(it, 1, (ir_binding[]){BIND("x", IR_F32, xs, 2, 7)}, 1);
  float sum[] = {28, 3.75f}, mean[] = {4, 0.535714286f};
  EXPECT(it, "sum", sum, 2, 1);
  EXPECT(it, "mean", mean, 2, 1);
  ir_interp_free(it);
  ir_graph_free(g);
}

static void test_softmax_large_values(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  ir_output(g, "p", ir_unary(g, IR_SOFTMAX, ir_input(g, "x", F32(C(3), C(3)))));
  ir_interp *it = make(g, 4, NULL);
  float xs[] = {1000, 1001, 1002, -1000, -999.5f, -1003, -INFINITY, 3, 3};
  run(it, 1, (ir_binding[]){BIND("x", IR_F32, xs, 3, 3)}, 1);
  float want[] = {0.0900305732f, 0.244728471f, 0.665240956f, 0.370575101f, 0.610975051f,
                  0.0184498479f, 0, 0.5f, 0.5f};
  EXPECT(it, "p", want, 3, 3);
  ir_interp_free(it);
  ir_graph_free(g);
}

static void test_matmul(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int a = ir_input(g, "a", F32(C(3), C(5)));
  ir_output(g, "ab", ir_binary(g, IR_MATMUL, a, ir_weight(g, "b", F32(C(7), C(5)))));
  int x = ir_input(g, "x", F32(C(2), C(3), C(5))), y = ir_input(g, "y", F32(C(2), C(4), C(5)));
  ir_output(g, "xy", ir_binary(g, IR_MATMUL, x, y));
  float b[] = {-2, 0, 2, -1, 1, 1, -2, 0, 2, -1, -1, 1, -2, 0, 2, 2, -1, 1, -2, 0,
               0, 2, -1, 1, -2, -2, 0, 2, -1, 1, 1, -2, 0, 2, -1};
  ir_interp *it = make(g, 4, (named[]){{"b", TENSOR(IR_F32, b, 7, 5)}, {0}});
  float as[] = {-3, -2, -1, 0, 1, 2, 3, -3, -2, -1, 0, 1, 2, 3, -3};
  float xs[] = {-4, -3, -2, -1, 0, 1, 2, 3, 4, -4, -3, -2, -1, 0, 1,
                3, 4, -4, -3, -2, -1, 0, 1, 2, 3, 4, -4, -3, -2, -1};
  float ys[] = {-3, 0, 3, -1, 2, -1, 2, -2, 1, -3, 1, -3, 0, 3, -1, 3, -1, 2, -2, 1,
                0, 3, -1, 2, -2, 2, -2, 1, -3, 0, -3, 0, 3, -1, 2, -1, 2, -2, 1, -3};
  run(it, 1, (ir_binding[]){BIND("a", IR_F32, as, 3, 5), BIND("x", IR_F32, xs, 2, 3, 5),
                            BIND("y", IR_F32, ys, 2, 4, 5)}, 3);
  float ab[] = {5, 0, 5, -5, -5, 5, 0, -9, -7, 5, 2, 9, -9, -7, -2, 7, -9, -5, 9, -2, 7};
  float xy[] = {7, 1, 2, -11, -6, 13, 11, -5, 8, -2, 2, -8, 14, 3, -22, 16, -3, -7, 10, -8, -11, 19, -21, -5};
  EXPECT(it, "ab", ab, 3, 7);
  EXPECT(it, "xy", xy, 2, 3, 4);
  ir_interp_free(it);
  ir_graph_free(g);
}

/* x = 0..29 as [2,5,3]; the same moves on f32 and on i32 (which must stay exact). */
static void test_slice_concat_reshape(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int xf = ir_input(g, "xf", F32(C(2), C(5), C(3))), xi = ir_input(g, "xi", I32(C(2), C(5), C(3)));
  ir_output(g, "slice", ir_slice(g, xf, 1, 1, 4));
  ir_output(g, "concat", ir_concat(g, ir_slice(g, xf, 1, 0, 1), ir_slice(g, xf, 1, 3, 5), 1));
  ir_output(g, "concat_i", ir_concat(g, ir_slice(g, xi, 1, 0, 1), ir_slice(g, xi, 1, 3, 5), 1));
  ir_output(g, "reshape_i", ir_reshape(g, xi, ir_shape_of(2, (ir_dim[]){C(6), C(5)})));
  ir_interp *it = make(g, 4, NULL);
  float xs[30];
  int32_t is[30];
  for (int i = 0; i < 30; i++)
    xs[i] = (float)(is[i] = i);
  run(it, 1, (ir_binding[]){BIND("xf", IR_F32, xs, 2, 5, 3), BIND("xi", IR_I32, is, 2, 5, 3)}, 2);
  float slice[] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 18, 19, 20, 21, 22, 23, 24, 25, 26};
  float concat[] = {0, 1, 2, 9, 10, 11, 12, 13, 14, 15, 16, 17, 24, 25, 26, 27, 28, 29};
  EXPECT(it, "slice", slice, 2, 3, 3);
  EXPECT(it, "concat", concat, 2, 3, 3);
  EXPECT(it, "concat_i", concat, 2, 3, 3);
  EXPECT(it, "reshape_i", xs, 6, 5);
  ir_interp_free(it);
  ir_graph_free(g);
}

static void test_transpose_and_repeat(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int x = ir_input(g, "x", F32(C(2), C(3), C(4))), xi = ir_input(g, "xi", I32(C(2), C(2), C(3)));
  ir_output(g, "t", ir_transpose(g, x, (int[]){1, 2, 0}));
  ir_output(g, "r", ir_repeat(g, xi, 1, 3));
  ir_interp *it = make(g, 4, NULL);
  float xs[24];
  int32_t is[12];
  for (int i = 0; i < 24; i++)
    xs[i] = (float)i;
  for (int i = 0; i < 12; i++)
    is[i] = 1000000 * i + 1; /* distinct, and exact in the f32 output (< 2^24) */
  run(it, 1, (ir_binding[]){BIND("x", IR_F32, xs, 2, 3, 4), BIND("xi", IR_I32, is, 2, 2, 3)}, 2);
  /* out[i][j][k] = x[k][i][j] */
  float t[] = {0, 12, 1, 13, 2, 14, 3, 15, 4, 16, 5, 17, 6, 18, 7, 19, 8, 20, 9, 21, 10, 22, 11, 23};
  EXPECT(it, "t", t, 3, 4, 2);
  int rows[] = {0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3}; /* input row (of [4,3]) behind each output row */
  float r[36];
  for (int i = 0; i < 36; i++)
    r[i] = (float)(1000000 * (rows[i / 3] * 3 + i % 3) + 1);
  EXPECT(it, "r", r, 2, 6, 3);
  ir_interp_free(it);
  ir_graph_free(g);
}

/* rope_cos/sin on the call's positions, at P=0 (T=3) and then P=3 (T=2). */
static void test_rope_tables(void **state) {
  (void)state;
  const int dim = 6;
  const double theta = 10000;
  ir_graph *g = ir_graph_new();
  int pos = ir_positions(g);
  ir_output(g, "cos", ir_rope_table(g, IR_ROPE_COS, pos, dim, theta));
  ir_output(g, "sin", ir_rope_table(g, IR_ROPE_SIN, pos, dim, theta));
  ir_output(g, "pos", pos);
  ir_interp *it = make(g, 8, NULL);
  for (int call = 0; call < 2; call++) {
    int64_t T = call == 0 ? 3 : 2, P = ir_interp_position(it);
    assert_int_equal(P, call == 0 ? 0 : 3);
    run(it, T, NULL, 0);
    float c[3 * 6], s[3 * 6], p[3];
    for (int t = 0; t < T; t++) {
      p[t] = (float)(P + t);
      for (int i = 0; i < dim; i++) {
        double angle = (double)(P + t) * pow(theta, -2.0 * (i % (dim / 2)) / dim);
        c[t * dim + i] = (float)cos(angle);
        s[t * dim + i] = (float)sin(angle);
      }
    }
    expect(it, "cos", c, T * dim, 1e-6, DIMS(T, dim));
    expect(it, "sin", s, T * dim, 1e-6, DIMS(T, dim));
    expect(it, "pos", p, T, 0, DIMS(T));
  }
  assert_int_equal(ir_interp_position(it), 5);
  ir_interp_free(it);
  ir_graph_free(g);
}

static void test_causal_mask(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  ir_output(g, "m", ir_unary(g, IR_CAUSAL_MASK, ir_input(g, "s", F32(C(2), T_, PT))));
  ir_interp *it = make(g, 8, NULL);
  float s0[18], s1[16];
  for (int i = 0; i < 18; i++)
    s0[i] = (float)(i + 1);
  for (int i = 0; i < 16; i++)
    s1[i] = (float)(i + 1);
  run(it, 3, (ir_binding[]){BIND("s", IR_F32, s0, 2, 3, 3)}, 1); /* P=0, T=3 */
  const float X = -INFINITY;
  float m0[] = {1, X, X, 4, 5, X, 7, 8, 9, 10, X, X, 13, 14, X, 16, 17, 18};
  EXPECT(it, "m", m0, 2, 3, 3);
  ir_interp_rewind(it, 0);
  run(it, 2, (ir_binding[]){BIND("s", IR_F32, s0, 2, 2, 2)}, 1);
  run(it, 2, (ir_binding[]){BIND("s", IR_F32, s1, 2, 2, 4)}, 1); /* P=2, T=2 */
  float m1[] = {1, 2, 3, X, 5, 6, 7, 8, 9, 10, 11, X, 13, 14, 15, 16};
  EXPECT(it, "m", m1, 2, 2, 4);
  ir_interp_free(it);
  ir_graph_free(g);
}

/* A cache of [P,2] rows, appended to, read back before and after, and repeated
 * GQA-style; then reset and refilled. */
static void test_kv_cache_across_runs(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int cache = ir_kv_cache(g, "k", F32(P_, C(2)));
  int all = ir_binary(g, IR_KV_APPEND, cache, ir_input(g, "new", F32(T_, C(2))));
  ir_output(g, "before", cache);
  ir_output(g, "all", all);
  ir_output(g, "rep", ir_repeat(g, all, 1, 2));
  ir_output(g, "pos", ir_positions(g));
  ir_interp *it = make(g, 8, NULL);
  float r0[] = {1, 2, 3, 4, 5, 6}, r1[] = {7, 8, 9, 10};
  run(it, 3, (ir_binding[]){BIND("new", IR_F32, r0, 3, 2)}, 1);
  assert_int_equal(ir_interp_position(it), 3);
  expect(it, "before", r0, 0, 0, DIMS(0, 2));
  EXPECT(it, "all", r0, 3, 2);
  float pos0[] = {0, 1, 2};
  EXPECT(it, "pos", pos0, 3);

  run(it, 2, (ir_binding[]){BIND("new", IR_F32, r1, 2, 2)}, 1);
  assert_int_equal(ir_interp_position(it), 5);
  float all1[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  float rep1[] = {1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10}, pos1[] = {3, 4};
  EXPECT(it, "before", r0, 3, 2);
  EXPECT(it, "all", all1, 5, 2);
  EXPECT(it, "rep", rep1, 5, 4);
  EXPECT(it, "pos", pos1, 2);

  ir_interp_rewind(it, 0);
  assert_int_equal(ir_interp_position(it), 0);
  run(it, 2, (ir_binding[]){BIND("new", IR_F32, r1, 2, 2)}, 1);
  float pos2[] = {0, 1};
  EXPECT(it, "all", r1, 2, 2);
  EXPECT(it, "pos", pos2, 2);
  expect(it, "before", r0, 0, 0, DIMS(0, 2));
  ir_interp_free(it);
  ir_graph_free(g);
}

static void test_gather(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int table = ir_weight(g, "table", F32(C(4), C(3)));
  ir_output(g, "rows", ir_binary(g, IR_GATHER, table, ir_input(g, "ids", I32(T_))));
  float tab[] = {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32};
  ir_interp *it = make(g, 8, (named[]){{"table", TENSOR(IR_F32, tab, 4, 3)}, {0}});
  int32_t ids[] = {3, 0, 3};
  run(it, 3, (ir_binding[]){BIND("ids", IR_I32, ids, 3)}, 1);
  float want[] = {30, 31, 32, 0, 1, 2, 30, 31, 32};
  EXPECT(it, "rows", want, 3, 3);
  int32_t bad[] = {1, 4}, neg[] = {-1};
  run_fails(it, 2, (ir_binding[]){BIND("ids", IR_I32, bad, 2)}, 1,
            "(gather): id 4 at index 1 is outside the table's 4 rows");
  assert_null(ir_interp_output(it, "rows")); /* a failed run leaves no outputs */
  run_fails(it, 1, (ir_binding[]){BIND("ids", IR_I32, neg, 1)}, 1, "id -1 at index 0");
  assert_int_equal(ir_interp_position(it), 3); /* failed runs do not advance P */
  ir_interp_free(it);
  ir_graph_free(g);
}

/* bf16 and f16 weights, read directly, through a slice and through a matmul. */
static void test_half_weights(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int wb = ir_weight(g, "wb", TYPE(IR_BF16, C(2), C(3)));
  int wh = ir_weight(g, "wh", TYPE(IR_F16, C(3), C(3)));
  ir_output(g, "wb", wb);
  ir_output(g, "wh", wh);
  ir_output(g, "wb_col", ir_slice(g, wb, 1, 1, 3));
  ir_output(g, "xw", ir_binary(g, IR_MATMUL, ir_input(g, "x", F32(C(1), C(3))), wb));
  uint16_t bf[] = {0x3F80, 0xC000, 0x3FC0, 0x0000, 0x4049, 0xBF00}; /* 1 -2 1.5 0 3.140625 -0.5 */
  uint16_t hf[] = {0x3C00, 0xC000, 0x0001,  /* 1, -2, smallest subnormal 2^-24 */
                   0x03FF, 0x8200, 0x7BFF,  /* largest subnormal, -512*2^-24, max 65504 */
                   0x3555, 0xFC00, 0x8000}; /* 0.333251953125, -inf, -0 */
  named w[] = {{"wb", TENSOR(IR_BF16, bf, 2, 3)}, {"wh", TENSOR(IR_F16, hf, 3, 3)}, {0}};
  ir_interp *it = make(g, 4, w);
  float x[] = {1, 2, 3};
  run(it, 1, (ir_binding[]){BIND("x", IR_F32, x, 1, 3)}, 1);
  float wb_want[] = {1, -2, 1.5f, 0, 3.140625f, -0.5f};
  float wh_want[] = {1, -2, 5.9604644775390625e-08f, 6.097555160522461e-05f, -3.0517578125e-05f,
                     65504, 0.333251953125f, -INFINITY, 0};
  float col[] = {-2, 1.5f, 3.140625f, -0.5f}, xw[] = {1.5f, 4.78125f};
  expect(it, "wb", wb_want, 6, 0, DIMS(2, 3));
  expect(it, "wh", wh_want, 9, 0, DIMS(3, 3));
  expect(it, "wb_col", col, 4, 0, DIMS(2, 2));
  EXPECT(it, "xw", xw, 1, 2);
  assert_true(signbit(((const float *)ir_interp_output(it, "wh")->data)[8]));
  ir_interp_free(it);
  ir_graph_free(g);

  uint16_t nan16 = 0x7E00, ninf16 = 0xFC00, sub16 = 0x8001;
  assert_true(isnan(ir_load_f32(IR_F16, &nan16, 0)));
  assert_true(ir_load_f32(IR_F16, &ninf16, 0) == -INFINITY);
  assert_true(ir_load_f32(IR_F16, &sub16, 0) == -0x1p-24f);
  unsigned char raw[] = {0xAA, 0xFE, 0xFF, 0xFF, 0xFF}; /* unaligned i32 -2 at byte 1, i8 -86 */
  assert_true(ir_load_f32(IR_I32, raw + 1, 0) == -2.0f);
  assert_true(ir_load_f32(IR_I8, raw, 0) == -86.0f);
}

/* ir_interp_new must fail with `words` in the message and no interpreter. */
static void new_fails(ir_graph *g, int64_t max_ctx, const named *w, const char *words) {
  oc_error e = {{0}};
  ir_interp *it = (ir_interp *)&e; /* must be reset to NULL */
  assert_int_equal(ir_interp_new(g, max_ctx, w ? lookup : NULL, (void *)w, &it, &e), -1);
  assert_null(it);
  if (!strstr(e.msg, words))
    fail_msg("expected \"%s\" in: %s", words, e.msg);
}

static void test_weight_errors(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int w = ir_weight(g, "w", F32(C(2), C(3)));
  ir_output(g, "y", ir_binary(g, IR_MATMUL, ir_input(g, "x", F32(T_, C(3))), w));
  float d[6] = {0};
  uint16_t h[6] = {0};
  new_fails(g, 4, (named[]){{"v", TENSOR(IR_F32, d, 2, 3)}, {0}}, "weight \"w\": no tensor named \"w\"");
  new_fails(g, 4, NULL, "weight \"w\": no weight lookup");
  new_fails(g, 4, (named[]){{"w", TENSOR(IR_F32, d, 3, 2)}, {0}},
            "weight \"w\": the graph expects f32[2,3], found f32[3,2]");
  new_fails(g, 4, (named[]){{"w", TENSOR(IR_BF16, h, 2, 3)}, {0}}, "expects f32[2,3], found bf16[2,3]");
  new_fails(g, 4, (named[]){{"w", TENSOR(IR_F32, d, 2, 3, 1)}, {0}}, "found f32[2,3,1]");
  new_fails(g, 4, (named[]){{"w", TENSOR(IR_F32, NULL, 2, 3)}, {0}}, "has no data");
  new_fails(g, 0, (named[]){{"w", TENSOR(IR_F32, d, 2, 3)}, {0}}, "max_ctx must be at least 1");
  ir_graph_free(g);

  g = ir_graph_new();
  ir_output(g, "w", ir_weight(g, "w", I32(C(2), C(3))));
  new_fails(g, 4, (named[]){{"w", TENSOR(IR_I32, d, 2, 3)}, {0}}, "reads f32, bf16 and f16");
  ir_graph_free(g);

  g = ir_graph_new();
  ir_input(g, "x", F32(T_)); /* no output: does not verify */
  new_fails(g, 4, NULL, "the graph has no output");
  ir_graph_free(g);
}

static void test_input_errors(void **state) {
  (void)state;
  float d[12] = {0};
  int32_t ids[4] = {0};
  ir_graph *g = ir_graph_new();
  int x = ir_input(g, "x", F32(T_, C(3)));
  ir_output(g, "y", ir_unary(g, IR_NEG, x));
  ir_output(g, "ids", ir_input(g, "ids", I32(T_)));
  ir_interp *it = make(g, 8, NULL);
  ir_binding good_ids = BIND("ids", IR_I32, ids, 4);
  run_fails(it, 4, &good_ids, 1, "input \"x\" is not bound (it expects f32[4,3] at T=4, P=0)");
  run_fails(it, 4, (ir_binding[]){BIND("x", IR_F32, d, 4, 2), good_ids}, 2,
            "input \"x\": expected f32[4,3] (T=4, P=0), found f32[4,2]");
  run_fails(it, 4, (ir_binding[]){BIND("x", IR_F32, d, 3, 3), good_ids}, 2, "found f32[3,3]");
  run_fails(it, 4, (ir_binding[]){BIND("x", IR_I32, d, 4, 3), good_ids}, 2, "found i32[4,3]");
  run_fails(it, 4, (ir_binding[]){BIND("x", IR_F32, NULL, 4, 3), good_ids}, 2, "\"x\" has no data");
  run_fails(it, 4, (ir_binding[]){BIND("x", IR_F32, d, 4, 3), good_ids, BIND("z", IR_F32, d, 4)}, 3,
            "binding \"z\" names no input");
  run_fails(it, 4, (ir_binding[]){BIND("x", IR_F32, d, 4, 3), good_ids, good_ids}, 3,
            "input \"ids\" is bound twice");
  run_fails(it, 0, NULL, 0, "at least one token");
  assert_int_equal(ir_interp_position(it), 0);
  run(it, 4, (ir_binding[]){BIND("x", IR_F32, d, 4, 3), good_ids}, 2);
  assert_int_equal(ir_interp_position(it), 4);
  ir_interp_free(it);
  ir_graph_free(g);
}

static void test_context_overflow_and_reset(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  int cache = ir_kv_cache(g, "v", F32(P_, C(1)));
  ir_output(g, "all", ir_binary(g, IR_KV_APPEND, cache, ir_input(g, "new", F32(T_, C(1)))));
  ir_interp *it = make(g, 5, NULL);
  float r[] = {1, 2, 3}, s[] = {4, 5};
  run(it, 3, (ir_binding[]){BIND("new", IR_F32, r, 3, 1)}, 1);
  run_fails(it, 3, (ir_binding[]){BIND("new", IR_F32, r, 3, 1)}, 1,
            "context full: P + T = 3 + 3 = 6 exceeds the 5 positions");
  assert_int_equal(ir_interp_position(it), 3);
  run(it, 2, (ir_binding[]){BIND("new", IR_F32, s, 2, 1)}, 1);
  float all[] = {1, 2, 3, 4, 5};
  EXPECT(it, "all", all, 5, 1);
  run_fails(it, 1, (ir_binding[]){BIND("new", IR_F32, s, 1, 1)}, 1, "P + T = 5 + 1 = 6 exceeds");
  ir_interp_rewind(it, 0);
  run(it, 2, (ir_binding[]){BIND("new", IR_F32, s, 2, 1)}, 1);
  EXPECT(it, "all", s, 2, 1);
  assert_int_equal(ir_interp_position(it), 2);
  ir_interp_free(it);
  ir_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_binary_broadcast),
      cmocka_unit_test(test_unary),
      cmocka_unit_test(test_reductions_over_7),
      cmocka_unit_test(test_softmax_large_values),
      cmocka_unit_test(test_matmul),
      cmocka_unit_test(test_slice_concat_reshape),
      cmocka_unit_test(test_transpose_and_repeat),
      cmocka_unit_test(test_rope_tables),
      cmocka_unit_test(test_causal_mask),
      cmocka_unit_test(test_kv_cache_across_runs),
      cmocka_unit_test(test_gather),
      cmocka_unit_test(test_half_weights),
      cmocka_unit_test(test_weight_errors),
      cmocka_unit_test(test_input_errors),
      cmocka_unit_test(test_context_overflow_and_reset),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
