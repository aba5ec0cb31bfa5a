/* Rewriting a graph in place, shared by the passes. A fusion replaces the
 * pattern's last node (its root) by the fused op: every input of the fused op
 * is an input of some pattern node, hence earlier than the root, so order
 * stays topological. Invariant: uses[i] counts the input slots reading node
 * i among live nodes; a node whose count falls to 0 dies (unless it is an
 * effect or a graph input), and rw_finish drops the dead and renumbers. */
#ifndef OLMOC_PASSES_REWRITE_H
#define OLMOC_PASSES_REWRITE_H

#include "olmoc/passes.h"

typedef struct rw {
  ir_graph *g;
  pass_env *env;
  int *uses;     /* [n]: input slots reading each node (mul %x, %x counts 2) */
  bool *dead;    /* [n] */
  int *pending;  /* [n]: nodes found dead whose inputs are still to visit (a stack) */
  int64_t steps; /* nodes visited forwarding and killing, for env->work */
} rw;

int rw_begin(rw *r, ir_graph *g, pass_env *env, oc_error *e);
/* Drops the dead nodes, renumbers the rest in order, adds the steps to
 * the pass's work, frees r. */
void rw_finish(rw *r);

/* Node id, live, of op `op`, read by exactly one input slot. */
bool rw_is(const rw *r, int id, ir_op op);
bool rw_is_single(const rw *r, int id, ir_op op);
/* A const scalar f32[]. */
bool rw_is_scalar_const(const rw *r, int id);

/* Makes node id compute `proto` (op, inputs, attributes, name copied; type and
 * layer kept) if the fused op's inferred type is exactly the node's type.
 * Returns true when it did; the old inputs lose a use (and may die). Out of
 * memory copying the name, it records the error in the graph (ir_graph_status)
 * and returns false. */
bool rw_try_replace(rw *r, int id, const ir_node *proto);

/* Points every reader of `from` at `to` (to < from): `from` dies. It scans
 * every later node: a pass forwarding many nodes keeps its own map instead
 * (cse). */
void rw_forward(rw *r, int from, int to);

/* Kills node id if nothing reads it and it is neither an effect nor an input,
 * then its inputs the same way: without recursion, so a dead chain of any
 * length is killed in time and stack linear in it. */
void rw_kill_if_unused(rw *r, int id);

#endif
