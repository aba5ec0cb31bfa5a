/* fuse-matmul-swiglu: swiglu(x.Wg^T, x.Wu^T) becomes matmul_swiglu(x, Wg, Wu):
 * the gate and up projections in one op with the SwiGLU as its epilogue.
 * Exact only: one x for both products, weights [N,K] of one shape, each
 * product read only by the swiglu. */
#include "rewrite.h"

int pass_fuse_matmul_swiglu(ir_graph *g, pass_env *env, oc_error *e) {
  rw r;
  if (rw_begin(&r, g, env, e))
    return -1;
  for (int id = 0; id < g->n; id++) {
    if (!rw_is(&r, id, IR_SWIGLU))
      continue;
    int gate = g->nodes[id].in[0], up = g->nodes[id].in[1];
    if (gate == up || !rw_is_single(&r, gate, IR_MATMUL) || !rw_is_single(&r, up, IR_MATMUL))
      continue;
    const ir_node *gm = &g->nodes[gate], *um = &g->nodes[up];
    if (gm->in[0] != um->in[0])
      continue;
    ir_node fused = {.op = IR_MATMUL_SWIGLU, .in = {gm->in[0], gm->in[1], um->in[1]}};
    env->changes += rw_try_replace(&r, id, &fused);
  }
  rw_finish(&r);
  return 0;
}
