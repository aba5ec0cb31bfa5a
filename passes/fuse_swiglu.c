/* fuse-swiglu: (g * sigmoid(g)) * u becomes swiglu(g, u), any operand order of
 * the muls. Exact only: the same g in the sigmoid and the product, g and u of
 * one shape (no broadcasting), the sigmoid and silu read once. */
#include "rewrite.h"

/* g * sigmoid(g) at node id: returns g, or -1. */
static int match_silu(const rw *r, int id) {
  const ir_graph *g = r->g;
  if (!rw_is_single(r, id, IR_MUL))
    return -1;
  for (int side = 0; side < 2; side++) {
    int s = g->nodes[id].in[side], x = g->nodes[id].in[1 - side];
    if (rw_is_single(r, s, IR_SIGMOID) && g->nodes[s].in[0] == x)
      return x;
  }
  return -1;
}

int pass_fuse_swiglu(ir_graph *g, pass_env *env, oc_error *e) {
  rw r;
  if (rw_begin(&r, g, env, e))
    return -1;
  for (int id = 0; id < g->n; id++) {
    if (!rw_is(&r, id, IR_MUL))
      continue;
    for (int side = 0; side < 2; side++) {
      int gate = match_silu(&r, g->nodes[id].in[side]), up = g->nodes[id].in[1 - side];
      if (gate >= 0 && rw_try_replace(&r, id, &(ir_node){.op = IR_SWIGLU, .in = {gate, up}})) {
        env->changes++;
        break;
      }
    }
  }
  rw_finish(&r);
  return 0;
}
