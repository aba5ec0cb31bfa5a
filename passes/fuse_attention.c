/* fuse-attention: the primitive attention of one layer,
 *   transpose(matmul(softmax(causal_mask(matmul(q', k') * scale)), v''), [1,0,2])
 * with q' = transpose(q, [1,0,2]), k' = transpose(K, [1,0,2]), v'' =
 * transpose(V, [1,2,0]), K and V optionally repeat(.., axis 1) of the cache's
 * rows (GQA), becomes attention(q, k, v) {value=scale}. Exact only: scale a
 * scalar const, these perms and axes, every intermediate read once. */
#include <string.h>

#include "rewrite.h"

/* transpose(x, perm) of a rank-3 x at node id, read once unless it is the
 * root: returns x, or -1. */
static int untranspose(const rw *r, int id, const int *perm, bool root) {
  const ir_node *n = &r->g->nodes[id];
  if (!rw_is(r, id, IR_TRANSPOSE) || (!root && r->uses[id] != 1) ||
      r->g->nodes[n->in[0]].type.shape.rank != 3 || memcmp(n->perm, perm, 3 * sizeof *perm))
    return -1;
  return n->in[0];
}

/* K and V as attention takes them: both repeats along axis 1 peeled, or none. */
static void unrepeat(const rw *r, int *k, int *v) {
  const ir_node *a = &r->g->nodes[*k], *b = &r->g->nodes[*v];
  if (rw_is_single(r, *k, IR_REPEAT) && rw_is_single(r, *v, IR_REPEAT) && a->axis == 1 &&
      b->axis == 1 && a->times == b->times)
    *k = a->in[0], *v = b->in[0];
}

/* Root transpose: fills in[3] = {q, k, v} and the scale, or returns false. */
static bool match(const rw *r, int id, int *in, double *scale) {
  static const int swap01[] = {1, 0, 2}, keys_last[] = {1, 2, 0};
  const ir_graph *g = r->g;
  int out = untranspose(r, id, swap01, true);
  if (out < 0 || !rw_is_single(r, out, IR_MATMUL))
    return false;
  int probs = g->nodes[out].in[0], v = untranspose(r, g->nodes[out].in[1], keys_last, false);
  if (v < 0 || !rw_is_single(r, probs, IR_SOFTMAX))
    return false;
  int masked = g->nodes[probs].in[0];
  if (!rw_is_single(r, masked, IR_CAUSAL_MASK))
    return false;
  int scaled = g->nodes[masked].in[0];
  if (!rw_is_single(r, scaled, IR_MUL))
    return false;
  for (int side = 0; side < 2; side++) {
    int s = g->nodes[scaled].in[side], c = g->nodes[scaled].in[1 - side];
    if (!rw_is_single(r, s, IR_MATMUL) || !rw_is_scalar_const(r, c))
      continue;
    int q = untranspose(r, g->nodes[s].in[0], swap01, false);
    int k = untranspose(r, g->nodes[s].in[1], swap01, false);
    if (q < 0 || k < 0)
      return false;
    unrepeat(r, &k, &v);
    in[0] = q, in[1] = k, in[2] = v;
    *scale = g->nodes[c].value;
    return true;
  }
  return false;
}

int pass_fuse_attention(ir_graph *g, pass_env *env, oc_error *e) {
  rw r;
  if (rw_begin(&r, g, env, e))
    return -1;
  for (int id = 0; id < g->n; id++) {
    int in[3];
    double scale;
    if (!match(&r, id, in, &scale))
      continue;
    ir_node fused = {.op = IR_ATTENTION, .in = {in[0], in[1], in[2]}, .value = scale};
    env->changes += rw_try_replace(&r, id, &fused);
  }
  rw_finish(&r);
  return 0;
}
