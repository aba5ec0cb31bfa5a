/* cse: a node computing the same op on the same inputs with the same
 * attributes and type as an earlier node is replaced by that node. Leaves with
 * a name (inputs, weights, caches) and effects are never merged; consts are,
 * by the bits of their value. Invariant: when node i is visited its inputs are
 * already the canonical ones, so one pass in order finds every duplicate. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"
#include "olmoc/alloc.h"

static bool mergeable(const ir_node *n) {
  return !(ir_op_table[n->op].flags & IR_EFFECT) && !(ir_op_table[n->op].attrs & IR_A_NAME);
}

static uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 1099511628211u; }

static uint64_t hash(const ir_node *n) {
  uint64_t h = mix(1469598103934665603u, (uint64_t)n->op), bits;
  for (int i = 0; i < ir_arity(n); i++)
    h = mix(h, (uint64_t)n->in[i]);
  memcpy(&bits, &n->value, sizeof bits);
  return mix(mix(h, bits), (uint64_t)n->axis);
}

/* perm compares the entries of its input's rank only (the same input for both). */
static bool same(const ir_graph *g, const ir_node *a, const ir_node *b) {
  unsigned at = ir_op_table[a->op].attrs;
  if (a->op != b->op || ir_arity(a) != ir_arity(b) || !ir_type_eq(&a->type, &b->type))
    return false;
  for (int i = 0; i < ir_arity(a); i++)
    if (a->in[i] != b->in[i])
      return false;
  return (!(at & IR_A_VALUE) || !memcmp(&a->value, &b->value, sizeof a->value)) &&
         (!(at & IR_A_AXIS) || a->axis == b->axis) &&
         (!(at & IR_A_RANGE) || (a->start == b->start && a->end == b->end)) &&
         (!(at & IR_A_TIMES) || a->times == b->times) &&
         (!(at & IR_A_PERM) ||
          !memcmp(a->perm, b->perm, sizeof *a->perm * (size_t)g->nodes[a->in[0]].type.shape.rank)) &&
         (!(at & IR_A_ROPE) || (a->dim == b->dim && !memcmp(&a->theta, &b->theta, sizeof a->theta))) &&
         (!(at & IR_A_EXPR) || !strcmp(a->name, b->name));
}

int pass_cse(ir_graph *g, pass_env *env, oc_error *e) {
  rw r;
  if (rw_begin(&r, g, e))
    return -1;
  size_t cap = 64;
  while (cap < 2 * (size_t)g->n)
    cap *= 2;
  int *table = oc_malloc(cap * sizeof *table); /* node ids, -1 empty */
  if (!table) {
    rw_finish(&r);
    return oc_fail(e, "out of memory for cse's table");
  }
  memset(table, -1, cap * sizeof *table);
  for (int id = 0; id < g->n; id++) {
    const ir_node *n = &g->nodes[id];
    if (r.dead[id] || !mergeable(n))
      continue;
    size_t at = hash(n) & (cap - 1);
    while (table[at] >= 0 && !same(g, &g->nodes[table[at]], n))
      at = (at + 1) & (cap - 1);
    if (table[at] < 0) {
      table[at] = id;
      continue;
    }
    rw_forward(&r, id, table[at]);
    env->changes++;
  }
  free(table);
  rw_finish(&r);
  return 0;
}
