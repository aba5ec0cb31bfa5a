/* fuse-rope: x*cos + concat(-x[..,D/2:], x[..,:D/2], axis 2)*sin becomes
 * rope(x, cos, sin), any operand order of the muls and the add. Exact only:
 * x [T,H,D] sliced into exactly its halves along the last axis, the upper
 * half negated and put first, cos and sin [T,1,D], intermediates read once. */
#include "rewrite.h"

/* concat(-x[..,D/2:], x[..,:D/2]) at node id: returns x, or -1. */
static int match_rotate_half(const rw *r, int id) {
  const ir_graph *g = r->g;
  if (!rw_is_single(r, id, IR_CONCAT))
    return -1;
  const ir_node *cat = &g->nodes[id];
  int neg = cat->in[0], lo = cat->in[1];
  if (!rw_is_single(r, neg, IR_NEG) || !rw_is_single(r, lo, IR_SLICE))
    return -1;
  int hi = g->nodes[neg].in[0];
  if (!rw_is_single(r, hi, IR_SLICE))
    return -1;
  const ir_node *h = &g->nodes[hi], *l = &g->nodes[lo];
  int x = h->in[0];
  const ir_type *t = &g->nodes[x].type;
  if (l->in[0] != x || t->shape.rank != 3 || !ir_dim_is_const(t->shape.dim[2]))
    return -1;
  int64_t D = t->shape.dim[2].c;
  bool ok = cat->axis == 2 && h->axis == 2 && l->axis == 2 && D % 2 == 0 && h->start == D / 2 &&
            h->end == D && l->start == 0 && l->end == D / 2;
  return ok ? x : -1;
}

/* Root add(x*cos, rot*sin): fills in[3] = {x, cos, sin}. */
static bool match(const rw *r, int id, int *in) {
  const ir_graph *g = r->g;
  for (int side = 0; side < 2; side++) {
    int a = g->nodes[id].in[side], b = g->nodes[id].in[1 - side];
    if (!rw_is_single(r, a, IR_MUL) || !rw_is_single(r, b, IR_MUL))
      continue;
    for (int k = 0; k < 2; k++) {
      int x = match_rotate_half(r, g->nodes[b].in[k]);
      if (x < 0)
        continue;
      const ir_node *m = &g->nodes[a];
      int cos = m->in[0] == x ? m->in[1] : m->in[1] == x ? m->in[0] : -1;
      if (cos < 0)
        continue;
      in[0] = x, in[1] = cos, in[2] = g->nodes[b].in[1 - k];
      return true;
    }
  }
  return false;
}

int pass_fuse_rope(ir_graph *g, pass_env *env, oc_error *e) {
  rw r;
  if (rw_begin(&r, g, env, e))
    return -1;
  for (int id = 0; id < g->n; id++) {
    int in[3];
    if (rw_is(&r, id, IR_ADD) && match(&r, id, in) &&
        rw_try_replace(&r, id, &(ir_node){.op = IR_ROPE, .in = {in[0], in[1], in[2]}}))
      env->changes++;
  }
  rw_finish(&r);
  return 0;
}
