/* The causal mask, shaped: x[..., T, P+T] -> y, row i of each [T, P+T]
 * matrix (query i, at position P + i) keeps keys j <= P + i and sets the rest
 * to -inf, a vector of keys at a time (compare the lanes' j, select). Exact. */
#include <math.h>

#include "emit.h"

typedef struct mask_row {
  LLVMValueRef x, y;    /* this row of x and y [P+T] */
  LLVMValueRef last;    /* i64: the last key the query sees, P + i */
  LLVMValueRef iota;    /* <vw x i64>: 0, 1, ..., vw-1 */
} mask_row;

static void mask_step(cg_emit *e, LLVMValueRef j, LLVMValueRef mask, void *ctx) {
  const mask_row *m = ctx;
  LLVMTypeRef vi = LLVMTypeOf(m->iota);
  LLVMValueRef first = LLVMBuildInsertElement(e->b, LLVMGetUndef(vi), j, LLVMConstInt(e->i32, 0, 0), "");
  LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(e->i32, (unsigned)e->vw));
  LLVMValueRef keys = LLVMBuildAdd(e->b, LLVMBuildShuffleVector(e->b, first, LLVMGetUndef(vi), zeros, ""), m->iota, "");
  LLVMValueRef lim = LLVMBuildInsertElement(e->b, LLVMGetUndef(vi), m->last, LLVMConstInt(e->i32, 0, 0), "");
  lim = LLVMBuildShuffleVector(e->b, lim, LLVMGetUndef(vi), zeros, "");
  LLVMValueRef hidden = LLVMBuildICmp(e->b, LLVMIntSGT, keys, lim, "");
  LLVMValueRef v = cg_load_masked(e, m->x, j, mask, 0.0);
  cg_store_masked(e, LLVMBuildSelect(e->b, hidden, cg_fconst(e->vf32, -INFINITY), v, ""), m->y, j, mask);
}

/* shaped: arg = {x, y} */
LLVMModuleRef cg_emit_causal_mask(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  cg_emit em, *e = &em;
  LLVMValueRef arg[2], dims[IR_MAX_DIMS], iota[64];
  cg_emit_begin_shaped(e, tgt, name, 2, arg);
  int r = k->in[0].rank;
  cg_extents(e, &k->in[0], dims);
  LLVMValueRef queries = dims[r - 2], keys = dims[r - 1];
  for (int i = 0; i < e->vw; i++)
    iota[i] = LLVMConstInt(e->i64, (unsigned long long)i, 0);
  mask_row m = {.iota = LLVMConstVector(iota, (unsigned)e->vw)};
  cg_loop rows;
  LLVMValueRef row = cg_loop_begin(e, &rows, cg_row0(e), cg_row1(e), 1), at = LLVMBuildNSWMul(e->b, row, keys, "");
  m.x = cg_elem(e, IR_F32, arg[0], at);
  m.y = cg_elem(e, IR_F32, arg[1], at);
  m.last = LLVMBuildNSWAdd(e->b, e->P, LLVMBuildSRem(e->b, row, queries, ""), "");
  cg_span(e, keys, mask_step, &m);
  cg_loop_end(e, &rows);
  return cg_emit_finish(e);
}
