/* fold-constants: a primitive elementwise op on scalar consts becomes a const
 * holding the f32 value the interpreter would compute (operands and result
 * rounded to f32), and shape-only ops that change nothing go away: a reshape
 * to its input's type, a transpose by the identity, a slice of a whole axis,
 * a repeat once; a reshape of a reshape reads the first one's input. */
#include <math.h>

#include "rewrite.h"

static bool fold_scalar(rw *r, int id) {
  const ir_node *n = &r->g->nodes[id];
  const ir_op_info *info = &ir_op_table[n->op];
  if (!(info->flags & IR_ELEMENTWISE) || (info->flags & IR_FUSED))
    return false;
  double v[2] = {0, 0};
  for (int i = 0; i < info->arity; i++) {
    if (!rw_is_scalar_const(r, n->in[i]))
      return false;
    v[i] = (float)r->g->nodes[n->in[i]].value;
  }
  return rw_try_replace(r, id, &(ir_node){.op = IR_CONST, .value = (float)ir_op_apply(n->op, v[0], v[1])});
}

/* The input node id's value equals, or -1. */
static int no_op_source(const rw *r, int id) {
  const ir_graph *g = r->g;
  const ir_node *n = &g->nodes[id];
  if (ir_arity(n) < 1)
    return -1;
  const ir_type *in = &g->nodes[n->in[0]].type;
  bool identity = n->op == IR_REPEAT && n->times == 1;
  if (n->op == IR_RESHAPE)
    identity = ir_type_eq(in, &n->type);
  if (n->op == IR_SLICE)
    identity = n->start == 0 && ir_dim_eq(in->shape.dim[n->axis], ir_const_dim(n->end));
  if (n->op == IR_TRANSPOSE) {
    identity = true;
    for (int i = 0; i < in->shape.rank; i++)
      identity &= n->perm[i] == i;
  }
  return identity ? n->in[0] : -1;
}

int pass_fold_constants(ir_graph *g, pass_env *env, oc_error *e) {
  rw r;
  if (rw_begin(&r, g, env, e))
    return -1;
  for (int id = 0; id < g->n; id++) {
    if (r.dead[id])
      continue;
    ir_node *n = &g->nodes[id];
    int src = no_op_source(&r, id);
    if (src >= 0) {
      rw_forward(&r, id, src);
      env->changes++;
    } else if (n->op == IR_RESHAPE && rw_is(&r, n->in[0], IR_RESHAPE)) {
      ir_node proto = *n;
      proto.in[0] = g->nodes[n->in[0]].in[0];
      env->changes += rw_try_replace(&r, id, &proto);
    } else
      env->changes += fold_scalar(&r, id);
  }
  rw_finish(&r);
  return 0;
}
