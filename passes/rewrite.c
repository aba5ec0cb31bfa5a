/* Use counts, in-place replacement, forwarding and compaction for the passes
 * (rewrite.h). Dead nodes stay in the array, flagged, until rw_finish, so ids
 * are stable while a pass runs. */
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"
#include "olmoc/alloc.h"

int rw_begin(rw *r, ir_graph *g, pass_env *env, oc_error *e) {
  *r = (rw){.g = g, .env = env};
  size_t n = (size_t)g->n + 1;
  r->uses = oc_calloc(n, sizeof *r->uses);
  r->dead = oc_calloc(n, sizeof *r->dead);
  r->pending = oc_malloc(n * sizeof *r->pending);
  if (!r->uses || !r->dead || !r->pending) {
    free(r->uses);
    free(r->dead);
    free(r->pending);
    return oc_fail(e, "out of memory for the use counts of %d nodes", g->n);
  }
  for (int id = 0; id < g->n; id++)
    for (int i = 0; i < ir_arity(&g->nodes[id]); i++)
      r->uses[g->nodes[id].in[i]]++;
  return 0;
}

void rw_finish(rw *r) {
  ir_graph *g = r->g;
  int *map = r->uses; /* reused: old id -> new id */
  int k = 0;
  for (int id = 0; id < g->n; id++) {
    if (r->dead[id]) {
      free(g->nodes[id].name);
      continue;
    }
    ir_node n = g->nodes[id];
    for (int i = 0; i < ir_arity(&n); i++)
      n.in[i] = map[n.in[i]];
    map[id] = k;
    g->nodes[k++] = n;
  }
  g->n = k;
  r->env->work += r->steps;
  free(r->uses);
  free(r->dead);
  free(r->pending);
  *r = (rw){0};
}

bool rw_is(const rw *r, int id, ir_op op) { return !r->dead[id] && r->g->nodes[id].op == op; }

bool rw_is_single(const rw *r, int id, ir_op op) { return rw_is(r, id, op) && r->uses[id] == 1; }

bool rw_is_scalar_const(const rw *r, int id) {
  const ir_node *n = &r->g->nodes[id];
  return rw_is(r, id, IR_CONST) && n->type.dtype == IR_F32 && n->type.shape.rank == 0;
}

/* Marks id dead and pending if nothing reads it and it may die. A node's
 * count reaches 0 once, so each is pending at most once: n slots suffice. */
static void kill(rw *r, int id, int *top) {
  const ir_node *n = &r->g->nodes[id];
  r->steps++;
  if (r->dead[id] || r->uses[id] > 0 || n->op == IR_INPUT || (ir_op_table[n->op].flags & IR_EFFECT))
    return;
  r->dead[id] = true;
  r->pending[(*top)++] = id;
}

void rw_kill_if_unused(rw *r, int id) {
  int top = 0;
  kill(r, id, &top);
  while (top > 0) {
    const ir_node *n = &r->g->nodes[r->pending[--top]];
    for (int i = 0; i < ir_arity(n); i++) {
      r->uses[n->in[i]]--;
      kill(r, n->in[i], &top);
    }
  }
}

bool rw_try_replace(rw *r, int id, const ir_node *proto) {
  ir_graph *g = r->g;
  ir_node old = g->nodes[id], trial = *proto;
  trial.type = old.type;
  trial.layer = old.layer;
  g->nodes[id] = trial; /* name borrowed from proto while inferring */
  ir_type t;
  bool ok = ir_infer(g, id, &t, NULL) == 0 && ir_type_eq(&t, &old.type);
  char *name = ok && proto->name ? oc_strdup(proto->name) : NULL;
  if (!ok || (proto->name && !name)) {
    g->nodes[id] = old;
    if (ok && !g->failed) /* the pass manager reports it: a fusion is never skipped silently */
      g->failed = true, oc_fail(&g->error, "out of memory rewriting node %%%d", id);
    return false;
  }
  g->nodes[id].name = name;
  free(old.name);
  for (int i = 0; i < ir_arity(&trial); i++)
    r->uses[trial.in[i]]++;
  for (int i = 0; i < ir_arity(&old); i++) {
    r->uses[old.in[i]]--;
    rw_kill_if_unused(r, old.in[i]);
  }
  return true;
}

void rw_forward(rw *r, int from, int to) {
  ir_graph *g = r->g;
  for (int id = from + 1; id < g->n; id++) {
    ir_node *n = &g->nodes[id];
    r->steps++;
    for (int i = 0; !r->dead[id] && i < ir_arity(n); i++)
      if (n->in[i] == from) {
        n->in[i] = to;
        r->uses[to]++;
        r->uses[from]--;
      }
  }
  rw_kill_if_unused(r, from);
}
