/* cse: a node computing the same op on the same inputs with the same
 * attributes and type as an earlier node is replaced by that node. Leaves with
 * a name (inputs, weights, caches) and effects are never merged; consts are,
 * by the bits of their value. Invariant: when node i is visited its inputs are
 * made the canonical ones first (the kept copy of each merged node), so one
 * pass in order finds every duplicate, and the merged copies are killed at
 * the end: linear in the nodes, however many merge. */
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
  if (rw_begin(&r, g, env, e))
    return -1;
  size_t cap = 64;
  while (cap < 2 * (size_t)g->n)
    cap *= 2;
  int *table = oc_malloc(cap * sizeof *table); /* node ids, -1 empty */
  int *canon = oc_malloc(((size_t)g->n + 1) * sizeof *canon); /* [n]: the node each one is merged into, or itself */
  if (!table || !canon) {
    free(table);
    free(canon);
    rw_finish(&r);
    return oc_fail(e, "out of memory for cse's table");
  }
  memset(table, -1, cap * sizeof *table);
  for (int id = 0; id < g->n; id++)
    canon[id] = id;
  for (int id = 0; id < g->n; id++) {
    ir_node *n = &g->nodes[id];
    if (r.dead[id])
      continue;
    for (int i = 0; i < ir_arity(n); i++) { /* read the kept copy of a merged input */
      int from = n->in[i], to = canon[from];
      if (to != from)
        n->in[i] = to, r.uses[to]++, r.uses[from]--;
    }
    if (!mergeable(n))
      continue;
    size_t at = hash(n) & (cap - 1);
    while (table[at] >= 0 && !same(g, &g->nodes[table[at]], n))
      at = (at + 1) & (cap - 1);
    if (table[at] < 0)
      table[at] = id;
    else
      canon[id] = table[at], env->changes++;
  }
  for (int id = g->n - 1; id >= 0; id--) /* the merged copies, read by nothing now */
    if (canon[id] != id)
      rw_kill_if_unused(&r, id);
  free(table);
  free(canon);
  rw_finish(&r);
  return 0;
}
