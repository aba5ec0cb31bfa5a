/* The kernels for the primitives an unfused graph keeps (reductions, softmax,
 * matmul of two activations, slice, concat, transpose, repeat, causal_mask,
 * elementwise ops with any broadcast) against the reference interpreter itself:
 * a one-op graph is run by the interpreter (at position P, after a first call
 * of P tokens) and by the kernel, on random inputs with odd sizes, symbolic T
 * and P dims and vector tails, for the host's vector width and a forced AVX2
 * target. Copies and masks must give the same bits; sums and dots the error
 * bound each states. Splitting the rows into pieces (as threads do) changes
 * no bit. */
#include <math.h>

#include "jit_harness.h"
#include "olmoc/interp.h"

#define T_ IR_DIM_T
#define P_T ((ir_dim){0, 1, 1})
static ir_dim K(int64_t c) { return ir_const_dim(c); }
#define SHAPE(...) ((ir_shape){COUNT(((ir_dim[]){__VA_ARGS__})), {__VA_ARGS__}})
#define SCALAR ((ir_shape){0, {{0}}})

/* What a case checks: |got - want| <= rel * |want| + mag * (the same op on
 * |inputs|), or a subnormal's last bit (no relative precision is left there). */
typedef struct tolerance {
  double rel, mag;
} tolerance;
#define SUBNORMAL_ULP 1.401298464e-45
static const tolerance EXACT = {0, 0};

typedef struct op_case {
  ir_node node; /* op and attributes; inputs are %0 and %1 */
  int n_in;
  ir_shape in[2];
  float lo, hi;     /* inputs uniform in [lo, hi] */
  float inf_every;  /* > 0: about this fraction of the inputs are -inf (softmax rows) */
  tolerance tol;
} op_case;

static int64_t numel(const ir_shape *s, int64_t T, int64_t P) { return ir_shape_numel(s, T, P); }

static ir_tensor tensor(const ir_shape *s, int64_t T, int64_t P, const float *data) {
  ir_tensor t = {.dtype = IR_F32, .rank = s->rank, .data = data};
  for (int i = 0; i < s->rank; i++)
    t.dims[i] = ir_dim_eval(s->dim[i], T, P);
  return t;
}

/* The graph %0 [, %1] -> op -> output "y"; *id is the op's node. */
static ir_graph *one_op(const op_case *c, int *id) {
  ir_graph *g = ir_graph_new();
  assert_non_null(g);
  ir_input(g, "x0", (ir_type){IR_F32, c->in[0]});
  if (c->n_in > 1)
    ir_input(g, "x1", (ir_type){IR_F32, c->in[1]});
  ir_node n = c->node;
  n.in[0] = 0, n.in[1] = 1, n.n_in = c->n_in;
  *id = ir_add(g, &n);
  ir_output(g, "y", *id);
  oc_error e;
  check(ir_graph_status(g, &e) || ir_verify(g, &e), &e);
  return g;
}

/* The interpreter's y for inputs x at T and P; a malloc'ed copy. */
static float *interpret(const ir_graph *g, const op_case *c, float *const *x, int64_t T, int64_t P) {
  ir_interp *it;
  oc_error e;
  check(ir_interp_new(g, P + T, NULL, NULL, &it, &e), &e);
  ir_binding b[2];
  const char *names[] = {"x0", "x1"};
  if (P > 0) { /* P tokens first, so that the real call runs at position P */
    float *zero[2];
    for (int i = 0; i < c->n_in; i++) {
      zero[i] = calloc((size_t)numel(&c->in[i], P, 0) + 1, sizeof(float));
      b[i] = (ir_binding){names[i], tensor(&c->in[i], P, 0, zero[i])};
    }
    check(ir_interp_run(it, P, b, c->n_in, &e), &e);
    for (int i = 0; i < c->n_in; i++)
      free(zero[i]);
  }
  for (int i = 0; i < c->n_in; i++)
    b[i] = (ir_binding){names[i], tensor(&c->in[i], T, P, x[i])};
  check(ir_interp_run(it, T, b, c->n_in, &e), &e);
  const ir_tensor *y = ir_interp_output(it, "y");
  int64_t n = 1;
  for (int i = 0; i < y->rank; i++)
    n *= y->dims[i];
  float *copy = malloc((size_t)(n + 1) * sizeof *copy);
  memcpy(copy, y->data, (size_t)n * sizeof *copy);
  ir_interp_free(it);
  return copy;
}

/* The kernel key for node n of g, as the lowering makes it. */
static cg_kernel_key key_of(const ir_graph *g, const ir_node *n, char *expr) {
  cg_kernel_key k = {.op = n->op, .n_in = ir_arity(n), .out = n->type.shape, .axis = n->axis,
                     .start = n->start, .times = n->times};
  memcpy(k.perm, n->perm, sizeof k.perm);
  for (int i = 0; i < k.n_in; i++)
    k.in[i] = g->nodes[n->in[i]].type.shape;
  if (ir_op_table[n->op].flags & IR_ELEMENTWISE) {
    snprintf(expr, 32, k.n_in == 1 ? "%%0 %s" : "%%0 %%1 %s", ir_op_table[n->op].name);
    k.op = IR_ELTWISE, k.expr = expr;
  }
  return k;
}

/* Rows [r0, r1) of the kernel's output, whichever form it takes. */
static void call(const cg_kernel_key *k, void *fn, float *const *x, float *y, int64_t T, int64_t P, int64_t r0,
                 int64_t r1) {
  void *arg[3] = {x[0], k->n_in > 1 ? x[1] : y, y};
  arg[k->n_in] = y;
  if (cg_kernel_shaped(k))
    ((void (*)(void *const *, int64_t, int64_t, int64_t, int64_t))fn)(arg, T, P, r0, r1);
  else if (k->n_in == 1)
    ((cg_eltwise1_fn *)fn)(x[0], y, r0, r1);
  else
    ((cg_eltwise2_fn *)fn)(x[0], x[1], y, r0, r1);
}

/* The largest |got - want| / |want|, and / (the op on |inputs|), since the last report. */
static double worst_rel, worst_mag;

static void report(const char *family) {
  printf("%s: largest error %.3g relative, %.3g of the magnitudes\n", family, worst_rel, worst_mag);
  worst_rel = worst_mag = 0;
}

static void run_case(cg_jit *j, const op_case *c, int64_t T, int64_t P) {
  int id;
  ir_graph *g = one_op(c, &id);
  const ir_node *n = &g->nodes[id];
  float *x[2], *ax[2];
  for (int i = 0; i < c->n_in; i++) {
    int64_t m = numel(&c->in[i], T, P);
    x[i] = randoms(m, c->lo, c->hi);
    ax[i] = randoms(m, 0, 0);
    for (int64_t k = 0; k < m; k++) {
      if (c->inf_every > 0 && uniform(0, 1) < c->inf_every)
        x[i][k] = -INFINITY;
      ax[i][k] = fabsf(x[i][k]);
    }
  }
  float *want = interpret(g, c, x, T, P), *mag = c->tol.mag > 0 ? interpret(g, c, ax, T, P) : NULL;
  char expr[32];
  cg_kernel_key k = key_of(g, n, expr);
  void *fn = kernel(j, k);
  const ir_shape *o = &n->type.shape;
  int64_t total = numel(o, T, P), rows = 1;
  for (int d = 0; d + 1 < o->rank; d++)
    rows *= ir_dim_eval(o->dim[d], T, P);
  float *y = randoms(total, 0, 0), *split = randoms(total, 0, 0);
  call(&k, fn, x, y, T, P, 0, rows);
  char what[160];
  snprintf(what, sizeof what, "%s vw=%d T=%lld P=%lld", ir_op_table[n->op].name, cg_jit_vector_width(j),
           (long long)T, (long long)P);
  for (int64_t i = 0; i < total; i++) {
    double w = want[i], got = y[i];
    if (got == w || (isnan(w) && isnan(got)))
      continue;
    double tol = c->tol.rel * fabs(w) + (mag ? c->tol.mag * mag[i] : 0) + (c->tol.rel ? SUBNORMAL_ULP : 0);
    if (!(fabs(got - w) <= tol))
      fail_msg("%s [%lld]: got %.9g, want %.9g (tolerance %.3g)", what, (long long)i, got, w, tol);
    if (fabs(w) >= 1.17549435e-38) /* normal */
      worst_rel = fmax(worst_rel, fabs(got - w) / fabs(w));
    if (mag && mag[i] != 0)
      worst_mag = fmax(worst_mag, fabs(got - w) / mag[i]);
  }
  for (int64_t r = rows; r > 0; r -= 3) /* in pieces of three rows, last first */
    call(&k, fn, x, split, T, P, r > 3 ? r - 3 : 0, r);
  assert_memory_equal(split, y, (size_t)total * sizeof *y);
  for (int i = 0; i < c->n_in; i++)
    free(x[i]), free(ax[i]);
  free(want), free(mag), free(y), free(split);
  ir_graph_free(g);
}

/* Every case at T in {1, 3} and P in {0, 5}, on both JITs. */
static void run_all(void **state, const op_case *cases, int n) {
  cg_jit **jits = *state;
  const int64_t Ts[] = {1, 3}, Ps[] = {0, 5};
  for (int j = 0; j < NJITS; j++)
    for (int c = 0; c < n; c++)
      for (int t = 0; t < COUNT(Ts); t++)
        for (int p = 0; p < COUNT(Ps); p++)
          run_case(jits[j], &cases[c], Ts[t], Ps[p]);
}

#define UNARY(op_, shape_, ...) {.node = {.op = (op_), __VA_ARGS__}, .n_in = 1, .in = {shape_}, .lo = -2, .hi = 2}
#define BINARY(op_, a_, b_) {.node = {.op = (op_)}, .n_in = 2, .in = {a_, b_}, .lo = -2, .hi = 2}

/* ---- reductions ---- */

/* Summed in double both ways: within 1e-5 of the value (rounding the same
 * double sums to f32), plus 1e-12 of the sum of magnitudes (the orders differ). */
static const tolerance SUM = {1e-5, 1e-12};

static void test_reductions(void **state) {
  op_case cases[] = {
      UNARY(IR_REDUCE_SUM, SHAPE(T_, K(1))), UNARY(IR_REDUCE_SUM, SHAPE(T_, K(7))),
      UNARY(IR_REDUCE_MEAN, SHAPE(T_, K(16))), UNARY(IR_REDUCE_MEAN, SHAPE(K(2), T_, K(33))),
      UNARY(IR_REDUCE_SUM, SHAPE(K(3), T_, P_T)), UNARY(IR_REDUCE_MEAN, SHAPE(T_, K(4), K(100))),
      UNARY(IR_REDUCE_MEAN, SHAPE(P_T)),
  };
  for (int i = 0; i < COUNT(cases); i++)
    cases[i].tol = SUM;
  run_all(state, cases, COUNT(cases));
  report("reduce_sum, reduce_mean");
}

/* The polynomial exp of the f32 difference, corrected for its rounding; sums
 * in double: within 1e-5 relative (measured ~1.5e-7), scores in [-50, 50]. */
static void test_softmax(void **state) {
  op_case cases[] = {
      UNARY(IR_SOFTMAX, SHAPE(T_, K(1))), UNARY(IR_SOFTMAX, SHAPE(T_, K(15))),
      UNARY(IR_SOFTMAX, SHAPE(K(2), T_, K(17))), UNARY(IR_SOFTMAX, SHAPE(K(4), T_, P_T)),
      UNARY(IR_SOFTMAX, SHAPE(T_, K(100))),
  };
  for (int i = 0; i < COUNT(cases); i++)
    cases[i].lo = -50, cases[i].hi = 50, cases[i].tol = (tolerance){1e-5, 0};
  run_all(state, cases, COUNT(cases));
  for (int i = 0; i < COUNT(cases); i++) /* masked scores: -inf becomes exactly 0 */
    cases[i].inf_every = 0.3f;
  run_all(state, cases, COUNT(cases));
  report("softmax");
}

/* ---- matmul of two activations: f32 accumulators, 1e-6 * sqrt(K) of the
 * magnitudes' dot (as the weight matmul's tests) ---- */

static void test_batched_matmul(void **state) {
  op_case cases[] = {
      BINARY(IR_MATMUL, SHAPE(K(4), T_, K(32)), SHAPE(K(4), P_T, K(32))),  /* q.k^T */
      BINARY(IR_MATMUL, SHAPE(K(4), T_, P_T), SHAPE(K(4), K(20), P_T)),    /* p.v */
      BINARY(IR_MATMUL, SHAPE(K(2), T_, K(17)), SHAPE(K(5), K(17))),       /* one b for every batch */
      BINARY(IR_MATMUL, SHAPE(T_, K(1)), SHAPE(K(3), K(1))),
      BINARY(IR_MATMUL, SHAPE(K(2), K(3), T_, K(33)), SHAPE(K(2), K(3), K(7), K(33))),
  };
  for (int i = 0; i < COUNT(cases); i++)
    cases[i].tol = (tolerance){1e-6, 1e-6 * sqrt(100)};
  run_all(state, cases, COUNT(cases));
  report("matmul of activations");
}

/* ---- data movement and the mask: exact ---- */

static void test_copies(void **state) {
  op_case cases[] = {
      UNARY(IR_SLICE, SHAPE(T_, K(8), K(32)), .axis = 2, .start = 0, .end = 16),
      UNARY(IR_SLICE, SHAPE(T_, K(8), K(32)), .axis = 2, .start = 16, .end = 32),
      UNARY(IR_SLICE, SHAPE(T_, K(5), K(19)), .axis = 1, .start = 1, .end = 4),
      UNARY(IR_SLICE, SHAPE(K(6), P_T, K(3)), .axis = 0, .start = 2, .end = 5),
      UNARY(IR_SLICE, SHAPE(K(37)), .axis = 0, .start = 3, .end = 36),
      BINARY(IR_CONCAT, SHAPE(T_, K(8), K(16)), SHAPE(T_, K(8), K(16))),
      BINARY(IR_CONCAT, SHAPE(T_, K(3), K(5)), SHAPE(T_, K(4), K(5))),
      BINARY(IR_CONCAT, SHAPE(K(2), P_T, K(7)), SHAPE(K(2), P_T, K(9))),
      BINARY(IR_CONCAT, SHAPE(K(2), K(3)), SHAPE(K(4), K(3))),
      BINARY(IR_CONCAT, SHAPE(T_, K(4), K(8)), SHAPE(P_T, K(4), K(8))),
      UNARY(IR_TRANSPOSE, SHAPE(P_T, K(8), K(32)), .perm = {1, 0, 2}),
      UNARY(IR_TRANSPOSE, SHAPE(P_T, K(8), K(32)), .perm = {1, 2, 0}),
      UNARY(IR_TRANSPOSE, SHAPE(K(8), T_, K(17)), .perm = {1, 0, 2}),
      UNARY(IR_TRANSPOSE, SHAPE(T_, K(3)), .perm = {1, 0}),
      UNARY(IR_TRANSPOSE, SHAPE(K(2), T_, K(3), K(5)), .perm = {0, 2, 1, 3}),
      UNARY(IR_TRANSPOSE, SHAPE(K(2), T_, K(3), K(5)), .perm = {3, 1, 0, 2}),
      UNARY(IR_REPEAT, SHAPE(P_T, K(4), K(32)), .axis = 1, .times = 2),
      UNARY(IR_REPEAT, SHAPE(T_, K(3), K(5)), .axis = 2, .times = 3),
      UNARY(IR_REPEAT, SHAPE(T_, K(3), K(21)), .axis = 0, .times = 4),
      UNARY(IR_CAUSAL_MASK, SHAPE(T_, P_T)), UNARY(IR_CAUSAL_MASK, SHAPE(K(4), T_, P_T)),
      UNARY(IR_CAUSAL_MASK, SHAPE(K(2), K(3), T_, P_T)),
  };
  cases[5].node.axis = 2, cases[6].node.axis = 1, cases[7].node.axis = 2; /* the others along axis 0 */
  for (int i = 0; i < COUNT(cases); i++)
    cases[i].tol = EXACT;
  run_all(state, cases, COUNT(cases));
}

/* ---- elementwise ops with the broadcasts an unfused graph has ---- */

static void test_elementwise_broadcasts(void **state) {
  op_case cases[] = {
      BINARY(IR_MUL, SHAPE(T_, K(8), K(32)), SHAPE(T_, K(1), K(32))), /* rope's tables over heads */
      BINARY(IR_MUL, SHAPE(K(4), T_, P_T), SCALAR),                    /* scores * scale */
      BINARY(IR_ADD, SHAPE(T_, K(1)), SCALAR),                         /* mean + eps */
      BINARY(IR_MUL, SHAPE(K(17)), SHAPE(T_, K(17))),                  /* w * normed */
      BINARY(IR_SUB, SHAPE(T_, K(21)), SHAPE(T_, K(1))),               /* one value per row */
      BINARY(IR_DIV, SHAPE(K(3), K(1), K(5)), SHAPE(T_, K(1))),        /* both broadcast */
      BINARY(IR_ADD, SHAPE(P_T), SHAPE(P_T)),                          /* a symbolic vector */
      BINARY(IR_MUL, SHAPE(K(2), T_, K(16)), SHAPE(T_, K(16))),        /* a symbolic inner dim */
      UNARY(IR_NEG, SHAPE(T_, K(8), K(16))), UNARY(IR_SQRT, SHAPE(K(3), T_, P_T)),
      UNARY(IR_RSQRT, SHAPE(T_, K(19))),
  };
  for (int i = 0; i < COUNT(cases); i++)
    cases[i].tol = EXACT, cases[i].lo = 0.25f, cases[i].hi = 4;
  run_all(state, cases, COUNT(cases));
  op_case transcendental[] = {UNARY(IR_EXP, SHAPE(K(2), T_, P_T)), UNARY(IR_SIGMOID, SHAPE(T_, K(33)))};
  for (int i = 0; i < COUNT(transcendental); i++) /* the polynomial exp */
    transcendental[i].tol = (tolerance){2e-6, 0}, transcendental[i].lo = -8, transcendental[i].hi = 8;
  run_all(state, transcendental, COUNT(transcendental));
  report("elementwise exp, sigmoid");
}

/* ---- keys out of scope fail with a message ---- */

static void test_key_errors(void **state) {
  cg_jit **jits = *state, *j = jits[0];
  int compiles = cg_jit_compile_count(j);
  expect_error(j, (cg_kernel_key){.op = IR_SOFTMAX}, "softmax kernel: 0 input shapes, expected 1");
  expect_error(j, (cg_kernel_key){.op = IR_SOFTMAX, .n_in = 1, .in = {SHAPE(T_, K(4))}, .out = SHAPE(T_, K(5))},
               "the inputs give f32[T,4], not the key's f32[T,5]");
  expect_error(j, (cg_kernel_key){.op = IR_TRANSPOSE, .n_in = 1, .in = {SHAPE(T_, K(4))}, .out = SHAPE(K(4), T_),
                                  .perm = {1, 1}}, "transpose kernel");
  expect_error(j, (cg_kernel_key){.op = IR_SLICE, .n_in = 1, .in = {SHAPE(T_, K(4))}, .out = SHAPE(T_, K(3)),
                                  .axis = 1, .start = 2}, "slice kernel");
  expect_error(j, (cg_kernel_key){.op = IR_CAUSAL_MASK, .n_in = 1, .in = {SHAPE(T_, K(4))}, .out = SHAPE(T_, K(4))},
               "causal_mask needs [..., T, P+T]");
  expect_error(j, (cg_kernel_key){.op = IR_ELTWISE, .expr = "%0 %1 mul", .n_in = 2,
                                  .in = {SHAPE(T_, K(3), K(16)), SHAPE(T_, K(4), K(16))}, .out = SHAPE(T_, K(4), K(16))},
               "input %0 f32[T,3,16] does not broadcast to the output f32[T,4,16]");
  expect_error(j, (cg_kernel_key){.op = IR_KV_APPEND}, "no kernel for op kv_append");
  assert_int_equal(cg_jit_compile_count(j), compiles);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reductions),  cmocka_unit_test(test_softmax),
      cmocka_unit_test(test_batched_matmul), cmocka_unit_test(test_copies),
      cmocka_unit_test(test_elementwise_broadcasts), cmocka_unit_test(test_key_errors),
  };
  return cmocka_run_group_tests(tests, make_jits, free_jits);
}
