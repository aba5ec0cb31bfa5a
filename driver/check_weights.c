/* drv_check_weights: does a checkpoint fit a model's graph? Every
 * weight node must find its tensor with the node's shape and dtype (or,
 * from a quantized checkpoint, its matrices quantized), and no tensor may
 * be left over; and does it fit the options and the session (a quantized
 * one runs as it was quantized). A graph reading the weights in another
 * dtype than stored is built after the check against the stored one
 * (drv_checked_graph). It needs the IR and the weights, so it lives above
 * both; messages name the file and the tensor. */
#include <stdlib.h>

#include "olmoc/alloc.h"
#include "olmoc/check_weights.h"
#include "olmoc/driver.h"

/* The first problem between one weight node and the checkpoint, or 0. */
static int check_weight(const rt_weights *w, const ir_node *node, int id, bool *used,
                        oc_error *e) {
  if (!node->name) return oc_fail(e, "weight node %%%d has no name", id);
  const ir_shape *s = &node->type.shape;
  int64_t want[IR_MAX_DIMS] = {0};
  if (s->rank < 0 || s->rank > IR_MAX_DIMS)
    return oc_fail(e, "weight '%s' has rank %d in the graph", node->name, s->rank);
  for (int i = 0; i < s->rank; i++) {
    if (!ir_dim_is_const(s->dim[i]))
      return oc_fail(e, "weight '%s' has a symbolic dim in the graph (dim %d)", node->name, i);
    want[i] = ir_dim_eval(s->dim[i], 0, 0);
  }
  char wants[128], has[128];
  rt_dims_str(want, s->rank, wants, sizeof wants);
  const rt_tensor *t = rt_weights_find(w, node->name);
  if (!t)
    return oc_fail(e, "%s: tensor '%s' is missing (the model needs it, shape %s)",
                   rt_weights_path(w), node->name, wants);
  for (int i = 0; i < rt_weights_count(w); i++)
    if (rt_weights_at(w, i) == t)
      used[i] = true;
  bool quantized = (t->dtype == IR_Q4 || t->dtype == IR_I8) && rt_weights_quantized(w).dtype != IR_F32;
  if (!ir_dtype_is_float(t->dtype) && !quantized)
    return oc_fail(e, "%s: tensor '%s' is %s; the model needs a float tensor (F32, BF16 or F16)",
                   t->file, t->name, rt_safetensors_dtype_name(t->dtype));
  bool same = t->rank == s->rank;
  for (int i = 0; same && i < s->rank; i++) same = t->dims[i] == want[i];
  if (!same)
    return oc_fail(e, "%s: tensor '%s' has shape %s but the model needs %s", t->file, t->name,
                   rt_dims_str(t->dims, t->rank, has, sizeof has), wants);
  /* The graph says what its kernels read; a bf16 checkpoint needs a bf16 graph. */
  if (t->dtype != node->type.dtype && !quantized)
    return oc_fail(e, "%s: tensor '%s' is %s but the graph reads it as %s", t->file, t->name,
                   rt_safetensors_dtype_name(t->dtype), ir_dtype_name(node->type.dtype));
  return 0;
}

int drv_check_weights(const rt_weights *w, const ir_graph *g, oc_error *e) {
  int n = rt_weights_count(w);
  bool *used = oc_calloc((size_t)n + 1, sizeof *used);
  if (!used) return oc_fail(e, "%s: out of memory", rt_weights_path(w));
  int rc = 0;
  for (int id = 0; id < g->n && !rc; id++)
    if (g->nodes[id].op == IR_WEIGHT) rc = check_weight(w, &g->nodes[id], id, used, e);
  for (int i = 0; i < n && !rc; i++)
    if (!used[i])
      rc = oc_fail(e, "unexpected tensor '%s' in %s (no weight of the model uses it)",
                   rt_weights_at(w, i)->name, rt_weights_at(w, i)->file);
  free(used);
  return rc;
}

static const char *quantized_name(ir_dtype d) { return d == IR_Q4 ? "q4" : "q8"; }

int drv_quantized_config(const char *dir, const rt_weights *w, const drv_config *c, drv_config *out, oc_error *e) {
  rt_quantized q = rt_weights_quantized(w);
  *out = *c;
  if (q.dtype == IR_F32)
    return 0;
  drv_weights as = q.dtype == IR_Q4 ? DRV_Q4 : DRV_Q8;
  if (c->backend == DRV_INTERP)
    return oc_fail(e, "%s: %s weights quantized by olmoc quantize run on the JIT's kernels; the interpreter "
                   "reads f32, bf16 or f16 checkpoints (give it the checkpoint this was made from)", dir,
                   quantized_name(q.dtype)), 1;
  if (c->weights != DRV_AS_STORED && c->weights != as)
    return oc_fail(e, "%s: %s weights (quantized by olmoc quantize), so --dtype %s, or none; other dtypes "
                   "need the checkpoint this was made from", dir, quantized_name(q.dtype),
                   quantized_name(q.dtype)), 1;
  out->weights = as;
  return 0;
}

int drv_check_panels(const rt_weights *w, const cg_jit *j, oc_error *e) {
  rt_quantized q = rt_weights_quantized(w);
  if (q.dtype == IR_F32 || q.panel == cg_matmul_panel(j))
    return 0;
  return oc_fail(e, RT_QUANTIZED_FILE " is quantized for kernels that read panels of %lld columns; these read "
                 "%lld (%s): quantize again with the --target these kernels are for",
                 (long long)q.panel, (long long)cg_matmul_panel(j),
                 cg_matmul_panel(j) == 16 ? "AVX2" : "AVX-512");
}

int drv_checked_graph(const olmo2_config *c, const rt_weights *w, ir_dtype stored, ir_dtype dtype, ir_graph **out,
                      oc_error *e) {
  ir_graph *g = NULL;
  int rc = olmo2_build_graph(c, stored, &g, e) || drv_check_weights(w, g, e);
  if (!rc && dtype != stored) {
    ir_graph_free(g);
    g = NULL;
    rc = olmo2_build_graph(c, dtype, &g, e);
  }
  if (rc) {
    ir_graph_free(g);
    return -1;
  }
  *out = g;
  return 0;
}
