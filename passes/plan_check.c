/* The memory plan's independent checker: recomputes sizes and lifetimes from
 * the graph alone (sharing nothing with the planner but plan.h) and verifies
 * that every value needing arena storage has an aligned buffer inside the arena
 * big enough for its largest T and P, and that no two buffers live at the same
 * time share a byte, unless one is a view of the other or an elementwise op
 * writes in place over an input of its type that dies at it. */
#include <stdbool.h>
#include <stdlib.h>

#include "olmoc/alloc.h"
#include "olmoc/plan.h"

static const char *op_name(const ir_graph *g, int i) { return ir_op_table[g->nodes[i].op].name; }

/* Bytes of ty at T, P; INT64_MAX on overflow, so any plan fails against it. */
static int64_t size_at(const ir_type *ty, int64_t T, int64_t P) {
  int64_t n = (int64_t)ir_dtype_size(ty->dtype);
  for (int i = 0; i < ty->shape.rank; i++) {
    int64_t d = ir_dim_eval(ty->shape.dim[i], T, P);
    if (d < 0)
      return INT64_MAX;
    if (d && n > INT64_MAX / d)
      return INT64_MAX;
    n *= d;
  }
  return n;
}

/* Largest size over every call the plan allows (T <= max_tokens, P + T <= max_ctx). */
static int64_t largest(const ir_type *ty, int64_t max_tokens, int64_t max_ctx) {
  int64_t worst = 0;
  for (int64_t T = 1; T <= max_tokens; T++) {
    int64_t s = size_at(ty, T, max_ctx - T);
    worst = s > worst ? s : worst;
  }
  return worst;
}

/* Only computed values need arena storage; leaves other than positions come
 * from outside, and kv_append's result is its cache. */
static bool needs_storage(ir_op op) {
  return !((ir_op_table[op].flags & IR_LEAF) && op != IR_POSITIONS) && op != IR_KV_APPEND;
}

/* A legal view: reshape or output of its input, kv_append of its cache. */
static int check_alias(const ir_graph *g, const pass_plan *p, int i, oc_error *e) {
  const ir_node *n = &g->nodes[i];
  int src = p->alias_of[i];
  if (!(n->op == IR_RESHAPE || n->op == IR_OUTPUT || n->op == IR_KV_APPEND) || src != n->in[0])
    return oc_fail(e, "node %%%d (%s) is planned as a view of %%%d, but only reshape, output and "
                   "kv_append can view their first input", i, op_name(g, i), src);
  if (p->offset[i] != p->offset[src])
    return oc_fail(e, "node %%%d (%s) views %%%d (%s) but is placed at %lld, not at its %lld", i,
                   op_name(g, i), src, op_name(g, src), (long long)p->offset[i],
                   (long long)p->offset[src]);
  if (p->offset[i] >= 0 && p->bytes[i] > p->bytes[src])
    return oc_fail(e, "node %%%d (%s) views %%%d (%s) but needs %lld bytes of its %lld", i,
                   op_name(g, i), src, op_name(g, src), (long long)p->bytes[i],
                   (long long)p->bytes[src]);
  return 0;
}

static int check_buffer(const ir_graph *g, const pass_plan *p, int i, oc_error *e) {
  int64_t need = largest(&g->nodes[i].type, p->max_tokens, p->max_ctx);
  if (p->alias_of[i] < 0 && needs_storage(g->nodes[i].op) && p->offset[i] < 0)
    return oc_fail(e, "node %%%d (%s) is computed but has no place in the arena", i, op_name(g, i));
  if (p->offset[i] < 0)
    return 0;
  if (p->bytes[i] < need)
    return oc_fail(e, "node %%%d (%s) is given %lld bytes but needs %lld at T <= %lld, P+T <= %lld",
                   i, op_name(g, i), (long long)p->bytes[i], (long long)need,
                   (long long)p->max_tokens, (long long)p->max_ctx);
  if (p->offset[i] % PASS_PLAN_ALIGN)
    return oc_fail(e, "node %%%d (%s) is placed at offset %lld, not a multiple of %d", i,
                   op_name(g, i), (long long)p->offset[i], PASS_PLAN_ALIGN);
  if (p->offset[i] > p->arena_bytes - p->bytes[i])
    return oc_fail(e, "node %%%d (%s) at [%lld, %lld) runs past the arena's end at %lld", i,
                   op_name(g, i), (long long)p->offset[i], (long long)(p->offset[i] + p->bytes[i]),
                   (long long)p->arena_bytes);
  return 0;
}

/* Node b computes in place over owner a: b is elementwise, one of its inputs
 * is a (or a view of it) with b's type, and a dies at b. */
static bool in_place(const ir_graph *g, const pass_plan *p, const int *owner, const int *dies,
                     int a, int b) {
  const ir_node *n = &g->nodes[b];
  if (!(ir_op_table[n->op].flags & IR_ELEMENTWISE) || dies[a] != b ||
      p->offset[a] != p->offset[b] || p->bytes[a] != p->bytes[b])
    return false;
  for (int k = 0; k < ir_arity(n); k++) {
    const ir_node *in = &g->nodes[n->in[k]];
    if (owner[n->in[k]] == a && in->type.dtype == n->type.dtype &&
        ir_shape_eq(&in->type.shape, &n->type.shape))
      return true;
  }
  return false;
}

/* owner[i]: the value whose storage i is; dies[o]: the last node reading
 * owner o through any of its views (g->n for outputs, read after the call). */
static void liveness(const ir_graph *g, const pass_plan *p, int *owner, int *dies) {
  for (int i = 0; i < g->n; i++) {
    owner[i] = p->alias_of[i] >= 0 ? owner[p->alias_of[i]] : i;
    dies[i] = i;
  }
  for (int i = 0; i < g->n; i++) {
    const ir_node *n = &g->nodes[i];
    int last = n->op == IR_OUTPUT ? g->n : i;
    if (dies[owner[i]] < last)
      dies[owner[i]] = last;
    for (int k = 0; k < ir_arity(n); k++)
      if (dies[owner[n->in[k]]] < i)
        dies[owner[n->in[k]]] = i;
  }
}

int pass_plan_check(const ir_graph *g, const pass_plan *p, oc_error *e) {
  if (p->n != g->n || !p->bytes || !p->offset || !p->alias_of)
    return oc_fail(e, "the plan is for %d nodes, the graph has %d", p->n, g->n);
  for (int i = 0; i < g->n; i++) {
    if (p->alias_of[i] >= 0 ? check_alias(g, p, i, e) : check_buffer(g, p, i, e))
      return -1;
  }
  int *owner = oc_malloc(((size_t)g->n + 1) * sizeof *owner);
  int *dies = oc_malloc(((size_t)g->n + 1) * sizeof *dies);
  if (!owner || !dies) {
    free(owner);
    free(dies);
    return oc_fail(e, "out of memory checking the plan of %d nodes", g->n);
  }
  liveness(g, p, owner, dies);
  int rc = 0;
  /* a is defined first; b overlaps a's lifetime when b is defined before a dies */
  for (int a = 0; a < g->n && !rc; a++) {
    if (owner[a] != a || p->offset[a] < 0)
      continue;
    for (int b = a + 1; b <= dies[a] && b < g->n && !rc; b++) {
      if (owner[b] != b || p->offset[b] < 0)
        continue;
      int64_t lo = p->offset[a] > p->offset[b] ? p->offset[a] : p->offset[b];
      int64_t ea = p->offset[a] + p->bytes[a], eb = p->offset[b] + p->bytes[b];
      int64_t hi = ea < eb ? ea : eb;
      if (lo < hi && !in_place(g, p, owner, dies, a, b))
        rc = oc_fail(e, "node %%%d (%s, live %d..%d) and node %%%d (%s, live %d..%d) are live at "
                     "the same time and share bytes [%lld, %lld) of the arena", a, op_name(g, a),
                     a, dies[a], b, op_name(g, b), b, dies[b], (long long)lo, (long long)hi);
    }
  }
  free(owner);
  free(dies);
  return rc;
}
