/* fuse-rmsnorm: w * (y * rsqrt(reduce_mean(y * y) + eps)) becomes
 * rmsnorm(y, w) {value=eps}, any operand order of the commutative mul and add.
 * Exact only: eps a scalar const, w of shape [D] for y [...,D], the same y
 * squared and scaled, every intermediate read once. */
#include "rewrite.h"

/* y * rsqrt(mean(y*y) + eps) at node id: fills y and eps, or returns false. */
static bool match_normed(const rw *r, int id, int *y, double *eps) {
  const ir_graph *g = r->g;
  if (!rw_is_single(r, id, IR_MUL))
    return false;
  for (int side = 0; side < 2; side++) {
    int inv = g->nodes[id].in[side], x = g->nodes[id].in[1 - side];
    if (!rw_is_single(r, inv, IR_RSQRT))
      continue;
    int var = g->nodes[inv].in[0];
    if (!rw_is_single(r, var, IR_ADD))
      continue;
    for (int k = 0; k < 2; k++) {
      int mean = g->nodes[var].in[k], c = g->nodes[var].in[1 - k];
      if (!rw_is_single(r, mean, IR_REDUCE_MEAN) || !rw_is_scalar_const(r, c))
        continue;
      int sq = g->nodes[mean].in[0];
      if (rw_is_single(r, sq, IR_MUL) && g->nodes[sq].in[0] == x && g->nodes[sq].in[1] == x) {
        *y = x;
        *eps = g->nodes[c].value;
        return true;
      }
    }
  }
  return false;
}

int pass_fuse_rmsnorm(ir_graph *g, pass_env *env, oc_error *e) {
  rw r;
  if (rw_begin(&r, g, env, e))
    return -1;
  for (int id = 0; id < g->n; id++) {
    if (!rw_is(&r, id, IR_MUL))
      continue;
    for (int side = 0; side < 2; side++) {
      int normed = g->nodes[id].in[side], w = g->nodes[id].in[1 - side], y;
      double eps;
      if (!match_normed(&r, normed, &y, &eps))
        continue;
      ir_node fused = {.op = IR_RMSNORM, .in = {y, w}, .value = eps};
      if (rw_try_replace(&r, id, &fused)) {
        env->changes++;
        break;
      }
    }
  }
  rw_finish(&r);
  return 0;
}
