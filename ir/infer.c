/* Type inference: the type each op must produce from its inputs and
 * attributes. The builder uses it to type new nodes; the verifier uses it to
 * check that every declared type is the inferred one. Compute ops produce f32;
 * data-movement ops keep their input's dtype. */
#include <stdio.h>

#include "olmoc/ir.h"

static char *shape_str(const ir_type *t, char *buf, size_t n) { return ir_type_str(t, buf, n); }

static int need_float(const ir_type *t, const char *what, oc_error *e) {
  char b[128];
  if (!ir_dtype_is_float(t->dtype))
    return oc_fail(e, "%s must be a float tensor, found %s", what, shape_str(t, b, sizeof b));
  return 0;
}

static int need_rank(const ir_type *t, int min, const char *what, oc_error *e) {
  char b[128];
  if (t->shape.rank < min)
    return oc_fail(e, "%s needs rank >= %d, found %s", what, min, shape_str(t, b, sizeof b));
  return 0;
}

/* Dim arithmetic that refuses to overflow (a graph from a file may try). */
static bool dim_add(ir_dim a, ir_dim b, ir_dim *out) {
  return !__builtin_add_overflow(a.c, b.c, &out->c) && !__builtin_add_overflow(a.t, b.t, &out->t) &&
         !__builtin_add_overflow(a.p, b.p, &out->p);
}

static bool dim_scale(ir_dim a, int k, ir_dim *out) {
  return !__builtin_mul_overflow(a.c, k, &out->c) && !__builtin_mul_overflow(a.t, k, &out->t) &&
         !__builtin_mul_overflow(a.p, k, &out->p);
}

static const ir_dim P_PLUS_T = {0, 1, 1};
static bool is_one(ir_dim d) { return ir_dim_eq(d, ir_const_dim(1)); }

/* numpy broadcasting, aligned from the right; a dim of 1 stretches. */
static int broadcast(const ir_type *a, const ir_type *b, ir_type *out, oc_error *e) {
  const ir_shape *sa = &a->shape, *sb = &b->shape;
  int rank = sa->rank > sb->rank ? sa->rank : sb->rank;
  out->dtype = IR_F32;
  out->shape.rank = rank;
  for (int i = 0; i < rank; i++) {
    int ia = sa->rank - rank + i, ib = sb->rank - rank + i;
    ir_dim da = ia >= 0 ? sa->dim[ia] : ir_const_dim(1);
    ir_dim db = ib >= 0 ? sb->dim[ib] : ir_const_dim(1);
    if (ir_dim_eq(da, db) || is_one(db))
      out->shape.dim[i] = da;
    else if (is_one(da))
      out->shape.dim[i] = db;
    else {
      char x[128], y[128];
      return oc_fail(e, "shapes %s and %s do not broadcast", shape_str(a, x, sizeof x),
                     shape_str(b, y, sizeof y));
    }
  }
  return 0;
}

/* Symbolic element counts match when the constant parts multiply to the same
 * number and the symbolic dims are the same multiset. */
static bool same_numel(const ir_shape *a, const ir_shape *b) {
  int64_t ca = 1, cb = 1;
  bool used[IR_MAX_DIMS] = {false};
  int sym_a = 0, sym_b = 0;
  for (int i = 0; i < a->rank; i++) {
    if (ir_dim_is_const(a->dim[i])) {
      if (__builtin_mul_overflow(ca, a->dim[i].c, &ca))
        return false;
      continue;
    }
    sym_a++;
    bool found = false;
    for (int j = 0; j < b->rank && !found; j++)
      if (!used[j] && ir_dim_eq(a->dim[i], b->dim[j]))
        used[j] = found = true;
    if (!found)
      return false;
  }
  for (int j = 0; j < b->rank; j++) {
    if (!ir_dim_is_const(b->dim[j]))
      sym_b++;
    else if (__builtin_mul_overflow(cb, b->dim[j].c, &cb))
      return false;
  }
  return ca == cb && sym_a == sym_b;
}

static int infer_matmul(const ir_type *a, const ir_type *b, ir_type *out, oc_error *e) {
  char x[128], y[128];
  if (need_float(a, "matmul's left operand", e) || need_float(b, "matmul's right operand", e) ||
      need_rank(a, 2, "matmul's left operand", e))
    return -1;
  int ra = a->shape.rank, rb = b->shape.rank;
  if (rb != 2 && rb != ra)
    return oc_fail(e, "matmul's right operand must be [N,K] or have the left's rank, found %s",
                   shape_str(b, y, sizeof y));
  for (int i = 0; rb == ra && i < ra - 2; i++)
    if (!ir_dim_eq(a->shape.dim[i], b->shape.dim[i]))
      return oc_fail(e, "matmul batch dims differ: %s and %s", shape_str(a, x, sizeof x),
                     shape_str(b, y, sizeof y));
  if (!ir_dim_eq(a->shape.dim[ra - 1], b->shape.dim[rb - 1]))
    return oc_fail(e, "matmul contracts the last dims, which differ: %s and %s",
                   shape_str(a, x, sizeof x), shape_str(b, y, sizeof y));
  *out = (ir_type){IR_F32, a->shape};
  out->shape.dim[ra - 1] = b->shape.dim[rb - 2];
  return 0;
}

static int infer_gather(const ir_type *table, const ir_type *ids, ir_type *out, oc_error *e) {
  char x[128];
  if (need_float(table, "gather's table", e))
    return -1;
  if (table->shape.rank != 2)
    return oc_fail(e, "gather's table must be [V,D], found %s", shape_str(table, x, sizeof x));
  if (ids->dtype != IR_I32)
    return oc_fail(e, "gather's ids must be i32, found %s", shape_str(ids, x, sizeof x));
  if (ids->shape.rank + 1 > IR_MAX_DIMS)
    return oc_fail(e, "gather's ids have too many dims");
  *out = (ir_type){IR_F32, ids->shape};
  out->shape.dim[out->shape.rank++] = table->shape.dim[1];
  return 0;
}

static int infer_slice(const ir_node *n, const ir_type *a, ir_type *out, oc_error *e) {
  if (n->axis < 0 || n->axis >= a->shape.rank)
    return oc_fail(e, "axis %d is out of range for rank %d", n->axis, a->shape.rank);
  ir_dim d = a->shape.dim[n->axis];
  if (!ir_dim_is_const(d))
    return oc_fail(e, "slice along axis %d needs a constant dim", n->axis);
  if (n->start < 0 || n->start >= n->end || n->end > d.c)
    return oc_fail(e, "slice [%lld, %lld) is not inside [0, %lld)", (long long)n->start,
                   (long long)n->end, (long long)d.c);
  *out = *a;
  out->shape.dim[n->axis] = ir_const_dim(n->end - n->start);
  return 0;
}

static int infer_concat(const ir_node *n, const ir_type *a, const ir_type *b, ir_type *out,
                        oc_error *e) {
  char x[128], y[128];
  if (a->dtype != b->dtype || a->shape.rank != b->shape.rank)
    return oc_fail(e, "cannot concat %s and %s", shape_str(a, x, sizeof x), shape_str(b, y, sizeof y));
  if (n->axis < 0 || n->axis >= a->shape.rank)
    return oc_fail(e, "axis %d is out of range for rank %d", n->axis, a->shape.rank);
  for (int i = 0; i < a->shape.rank; i++)
    if (i != n->axis && !ir_dim_eq(a->shape.dim[i], b->shape.dim[i]))
      return oc_fail(e, "cannot concat %s and %s along axis %d", shape_str(a, x, sizeof x),
                     shape_str(b, y, sizeof y), n->axis);
  *out = *a;
  if (!dim_add(a->shape.dim[n->axis], b->shape.dim[n->axis], &out->shape.dim[n->axis]))
    return oc_fail(e, "concat along axis %d overflows", n->axis);
  return 0;
}

static int infer_transpose(const ir_node *n, const ir_type *a, ir_type *out, oc_error *e) {
  bool seen[IR_MAX_DIMS] = {false};
  *out = *a;
  for (int i = 0; i < a->shape.rank; i++) {
    int p = n->perm[i];
    if (p < 0 || p >= a->shape.rank || seen[p])
      return oc_fail(e, "perm is not a permutation of the %d axes", a->shape.rank);
    seen[p] = true;
    out->shape.dim[i] = a->shape.dim[p];
  }
  return 0;
}

static int infer_kv_append(const ir_graph *g, const ir_node *n, ir_type *out, oc_error *e) {
  const ir_type *cache = &g->nodes[n->in[0]].type, *x = &g->nodes[n->in[1]].type;
  char a[128], b[128];
  if (g->nodes[n->in[0]].op != IR_KV_CACHE)
    return oc_fail(e, "kv_append's first input must be a kv_cache");
  if (need_float(x, "kv_append's new rows", e))
    return -1;
  bool ok = x->shape.rank == cache->shape.rank && ir_dim_eq(x->shape.dim[0], IR_DIM_T);
  for (int i = 1; ok && i < x->shape.rank; i++)
    ok = ir_dim_eq(x->shape.dim[i], cache->shape.dim[i]);
  if (!ok)
    return oc_fail(e, "new rows %s do not fit cache %s (want [T, ...the cache's row shape])",
                   shape_str(x, a, sizeof a), shape_str(cache, b, sizeof b));
  *out = (ir_type){IR_F32, cache->shape};
  out->shape.dim[0] = P_PLUS_T;
  return 0;
}

static int infer_leaf(const ir_node *n, ir_type *out, oc_error *e) {
  char b[128];
  switch (n->op) {
  case IR_CONST:
    *out = (ir_type){IR_F32, {0}};
    return 0;
  case IR_POSITIONS:
    *out = (ir_type){IR_I32, {1, {IR_DIM_T}}};
    return 0;
  case IR_KV_CACHE:
    if (n->type.shape.rank < 2 || !ir_dim_eq(n->type.shape.dim[0], IR_DIM_P) ||
        !ir_dtype_is_float(n->type.dtype))
      return oc_fail(e, "a kv_cache is a float [P, ...] tensor, found %s",
                     shape_str(&n->type, b, sizeof b));
    for (int i = 1; i < n->type.shape.rank; i++) /* a row is allocated per position */
      if (!ir_dim_is_const(n->type.shape.dim[i]) || n->type.shape.dim[i].c <= 0)
        return oc_fail(e, "a kv_cache's row dims (all but P) must be positive constants, found %s",
                       shape_str(&n->type, b, sizeof b));
    break;
  case IR_WEIGHT:
    for (int i = 0; i < n->type.shape.rank; i++)
      if (!ir_dim_is_const(n->type.shape.dim[i]) || n->type.shape.dim[i].c <= 0)
        return oc_fail(e, "a weight's dims must be positive constants, found %s",
                       shape_str(&n->type, b, sizeof b));
    break;
  default:
    break;
  }
  *out = n->type;
  return 0;
}

/* x[...,D] and w[D]: the operands of an RMSNorm. */
static int check_norm(const ir_type *x, const ir_type *w, oc_error *e) {
  char a[128], b[128];
  if (need_float(x, "the normed value", e) || need_float(w, "the norm weight", e) ||
      need_rank(x, 1, "the normed value", e))
    return -1;
  if (w->shape.rank != 1 || !ir_dim_eq(w->shape.dim[0], x->shape.dim[x->shape.rank - 1]))
    return oc_fail(e, "the norm weight must be [D] for a value [...,D], found %s and %s",
                   shape_str(w, a, sizeof a), shape_str(x, b, sizeof b));
  return 0;
}

static int need_same_shape(const ir_type *want, const ir_type *got, const char *what, oc_error *e) {
  char a[128], b[128];
  if (need_float(got, what, e))
    return -1;
  if (!ir_shape_eq(&want->shape, &got->shape))
    return oc_fail(e, "%s must have shape %s, found %s", what, shape_str(want, a, sizeof a),
                   shape_str(got, b, sizeof b));
  return 0;
}

/* q[T,H,D], k and v [P+T,KV,D] with KV dividing H. */
static int infer_attention(const ir_type *q, const ir_type *k, const ir_type *v, ir_type *out,
                           oc_error *e) {
  char a[128], b[128], c[128];
  if (need_float(q, "q", e) || need_float(k, "k", e) || need_float(v, "v", e))
    return -1;
  const ir_dim *qd = q->shape.dim, *kd = k->shape.dim;
  bool ok = q->shape.rank == 3 && k->shape.rank == 3 && ir_shape_eq(&k->shape, &v->shape) &&
            ir_dim_eq(qd[0], IR_DIM_T) && ir_dim_eq(kd[0], P_PLUS_T) && ir_dim_is_const(qd[1]) &&
            ir_dim_is_const(kd[1]) && kd[1].c > 0 && qd[1].c % kd[1].c == 0 && ir_dim_eq(qd[2], kd[2]);
  if (!ok)
    return oc_fail(e, "attention needs q[T,H,D], k and v [P+T,KV,D] with KV dividing H, found "
                   "%s, %s, %s", shape_str(q, a, sizeof a), shape_str(k, b, sizeof b),
                   shape_str(v, c, sizeof c));
  *out = (ir_type){IR_F32, q->shape};
  return 0;
}

/* x[T,H,D] (D even), cos and sin [T,1,D]. */
static int infer_rope(const ir_type *x, const ir_type *cos, const ir_type *sin, ir_type *out,
                      oc_error *e) {
  char a[128], b[128];
  if (need_float(x, "rope's x", e) || need_float(cos, "rope's cos", e) || need_float(sin, "rope's sin", e))
    return -1;
  const ir_dim *d = x->shape.dim;
  ir_type table = {IR_F32, {3, {d[0], ir_const_dim(1), d[2]}}};
  if (x->shape.rank != 3 || !ir_dim_is_const(d[2]) || d[2].c % 2)
    return oc_fail(e, "rope's x must be [T,H,D] with an even D, found %s", shape_str(x, a, sizeof a));
  if (!ir_shape_eq(&cos->shape, &table.shape) || !ir_shape_eq(&sin->shape, &table.shape))
    return oc_fail(e, "rope's cos and sin must be %s, found %s", shape_str(&table, a, sizeof a),
                   shape_str(ir_shape_eq(&cos->shape, &table.shape) ? sin : cos, b, sizeof b));
  *out = (ir_type){IR_F32, x->shape};
  return 0;
}

static int infer_elementwise(const ir_graph *g, const ir_node *n, ir_type *out, oc_error *e) {
  ir_expr_tok tok[IR_EXPR_MAX];
  if (ir_expr_parse(n->name, n->n_in, tok, e) < 0)
    return -1;
  *out = (ir_type){IR_F32, {0}};
  for (int i = 0; i < n->n_in; i++) {
    const ir_type *t = &g->nodes[n->in[i]].type;
    ir_type acc = *out;
    if (need_float(t, "an elementwise input", e) || broadcast(&acc, t, out, e))
      return -1;
  }
  return 0;
}

static int infer_fused(const ir_graph *g, const ir_node *n, ir_type *out, oc_error *e) {
  const ir_type *t[IR_MAX_INPUTS];
  for (int i = 0; i < ir_arity(n); i++)
    t[i] = &g->nodes[n->in[i]].type;
  switch (n->op) {
  case IR_RMSNORM: case IR_RMSNORM_ADD:
    if (check_norm(t[0], t[1], e))
      return -1;
    *out = (ir_type){IR_F32, t[0]->shape};
    return n->op == IR_RMSNORM_ADD ? need_same_shape(out, t[2], "the residual", e) : 0;
  case IR_ROPE:
    return infer_rope(t[0], t[1], t[2], out, e);
  case IR_SWIGLU:
    if (need_float(t[0], "the gate", e) || need_same_shape(t[0], t[1], "the up projection", e))
      return -1;
    *out = (ir_type){IR_F32, t[0]->shape};
    return 0;
  case IR_MATMUL_SWIGLU:
    if (infer_matmul(t[0], t[1], out, e))
      return -1;
    if (t[1]->shape.rank != 2)
      return oc_fail(e, "matmul_swiglu's weights must be [N,K]");
    return need_same_shape(t[1], t[2], "the up weight", e);
  case IR_MATMUL_ADD:
    return infer_matmul(t[0], t[1], out, e) || need_same_shape(out, t[2], "the addend", e) ? -1 : 0;
  case IR_ATTENTION:
    return infer_attention(t[0], t[1], t[2], out, e);
  case IR_ELTWISE:
    return infer_elementwise(g, n, out, e);
  default:
    return oc_fail(e, "no type rule for op %d", (int)n->op);
  }
}

int ir_infer(const ir_graph *g, int id, ir_type *out, oc_error *e) {
  const ir_node *n = &g->nodes[id];
  const ir_op_info *info = &ir_op_table[n->op];
  if (info->arity < 0 && (n->n_in < 1 || n->n_in > IR_MAX_INPUTS))
    return oc_fail(e, "takes 1 to %d inputs, found %d", IR_MAX_INPUTS, n->n_in);
  for (int i = 0; i < ir_arity(n); i++) {
    if (n->in[i] < 0 || n->in[i] >= id)
      return oc_fail(e, "input %d refers to %%%d, which is not an earlier node", i, n->in[i]);
    if (g->nodes[n->in[i]].op == IR_OUTPUT)
      return oc_fail(e, "an output is not a value to compute with");
  }
  if ((info->attrs & IR_A_NAME) && (!n->name || !n->name[0]))
    return oc_fail(e, "needs a name");
  if (info->flags & IR_LEAF)
    return infer_leaf(n, out, e);
  if (info->flags & IR_FUSED)
    return infer_fused(g, n, out, e);

  const ir_type *a = &g->nodes[n->in[0]].type;
  const ir_type *b = info->arity > 1 ? &g->nodes[n->in[1]].type : NULL;
  char x[128], y[128];
  switch (n->op) {
  case IR_ADD: case IR_SUB: case IR_MUL: case IR_DIV:
    if (need_float(a, "left operand", e) || need_float(b, "right operand", e))
      return -1;
    return broadcast(a, b, out, e);
  case IR_NEG: case IR_EXP: case IR_SQRT: case IR_RSQRT: case IR_SIGMOID:
    if (need_float(a, "operand", e))
      return -1;
    *out = (ir_type){IR_F32, a->shape};
    return 0;
  case IR_REDUCE_SUM: case IR_REDUCE_MEAN: case IR_SOFTMAX:
    if (need_float(a, "operand", e) || need_rank(a, 1, "operand", e))
      return -1;
    *out = (ir_type){IR_F32, a->shape};
    if (n->op != IR_SOFTMAX)
      out->shape.dim[a->shape.rank - 1] = ir_const_dim(1);
    return 0;
  case IR_GATHER:
    return infer_gather(a, b, out, e);
  case IR_MATMUL:
    return infer_matmul(a, b, out, e);
  case IR_SLICE:
    return infer_slice(n, a, out, e);
  case IR_CONCAT:
    return infer_concat(n, a, b, out, e);
  case IR_RESHAPE:
    if (n->type.dtype != a->dtype || !same_numel(&a->shape, &n->type.shape))
      return oc_fail(e, "cannot reshape %s to %s", shape_str(a, x, sizeof x),
                     shape_str(&n->type, y, sizeof y));
    *out = n->type;
    return 0;
  case IR_TRANSPOSE:
    return infer_transpose(n, a, out, e);
  case IR_REPEAT:
    if (n->axis < 0 || n->axis >= a->shape.rank || n->times < 1)
      return oc_fail(e, "repeat needs 0 <= axis < %d and times >= 1", a->shape.rank);
    *out = *a;
    if (!dim_scale(a->shape.dim[n->axis], n->times, &out->shape.dim[n->axis]))
      return oc_fail(e, "repeat along axis %d overflows", n->axis);
    return 0;
  case IR_ROPE_COS: case IR_ROPE_SIN:
    if (a->dtype != IR_I32 || a->shape.rank != 1)
      return oc_fail(e, "rope tables take i32 positions [n], found %s", shape_str(a, x, sizeof x));
    if (n->dim <= 0 || n->dim % 2 || !(n->theta > 0))
      return oc_fail(e, "rope tables need an even dim > 0 and theta > 0");
    *out = (ir_type){IR_F32, {2, {a->shape.dim[0], ir_const_dim(n->dim)}}};
    return 0;
  case IR_CAUSAL_MASK: {
    if (need_float(a, "operand", e) || need_rank(a, 2, "operand", e))
      return -1;
    int r = a->shape.rank;
    if (!ir_dim_eq(a->shape.dim[r - 2], IR_DIM_T) ||
        !ir_dim_eq(a->shape.dim[r - 1], P_PLUS_T))
      return oc_fail(e, "causal_mask needs [..., T, P+T], found %s", shape_str(a, x, sizeof x));
    *out = (ir_type){IR_F32, a->shape};
    return 0;
  }
  case IR_KV_APPEND:
    return infer_kv_append(g, n, out, e);
  case IR_OUTPUT:
    *out = *a;
    return 0;
  default:
    return oc_fail(e, "no type rule for op %d", (int)n->op);
  }
}
