/* fuse-residual: an add whose operand is an rmsnorm or a matmul read only by
 * that add folds into it as an epilogue: r + rmsnorm(x, w) becomes
 * rmsnorm_add(x, w, r), r + a.b^T becomes matmul_add(a, b, r). Exact only: r
 * of the product's or norm's own shape (no broadcasting either way). */
#include "rewrite.h"

static bool fold(rw *r, int id, int side) {
  const ir_graph *g = r->g;
  int p = g->nodes[id].in[side], res = g->nodes[id].in[1 - side];
  const ir_node *n = &g->nodes[p];
  if (rw_is_single(r, p, IR_RMSNORM))
    return rw_try_replace(r, id, &(ir_node){.op = IR_RMSNORM_ADD, .in = {n->in[0], n->in[1], res},
                                            .value = n->value});
  if (rw_is_single(r, p, IR_MATMUL))
    return rw_try_replace(r, id, &(ir_node){.op = IR_MATMUL_ADD, .in = {n->in[0], n->in[1], res}});
  return false;
}

int pass_fuse_residual(ir_graph *g, pass_env *env, oc_error *e) {
  rw r;
  if (rw_begin(&r, g, env, e))
    return -1;
  for (int id = 0; id < g->n; id++)
    if (rw_is(&r, id, IR_ADD) && g->nodes[id].in[0] != g->nodes[id].in[1])
      env->changes += fold(&r, id, 1) || fold(&r, id, 0);
  rw_finish(&r);
  return 0;
}
