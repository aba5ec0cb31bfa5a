/* The reductions over the last axis, shaped (the row length L is the input's
 * last dim at the call's T and P): reduce_sum and reduce_mean add a row's f32
 * values in double and round once, as the interpreter does; softmax takes the
 * row's max in f32, writes exp(x - max) (the polynomial exp, in f32, corrected
 * for the rounding of x - max) to y while adding it up in double, then
 * divides y by the sum in double and rounds.
 * Invariant: a row's result depends on nothing but that row (fixed lanes,
 * fixed order), so any split of the rows gives the same bits. */
#include <math.h>

#include "emit.h"

typedef struct row {
  LLVMValueRef x, y;   /* this row of x [L] and, for softmax, of y [L] */
  LLVMTypeRef vd;      /* <vw x double> */
  LLVMValueRef acc;    /* var <vw x double>: the sum so far */
  LLVMValueRef max;    /* softmax: var <vw x float> in pass 1, then the row's max splat */
  LLVMValueRef sum;    /* softmax: the row's sum splat, <vw x double> */
} row;

static void add_to(cg_emit *e, row *r, LLVMValueRef v) {
  LLVMValueRef wide = LLVMBuildFPExt(e->b, v, r->vd, "");
  cg_set(e, r->acc, LLVMBuildFAdd(e->b, cg_get(e, r->vd, r->acc), wide, ""));
}

static void sum_step(cg_emit *e, LLVMValueRef j, LLVMValueRef mask, void *ctx) {
  add_to(e, ctx, cg_load_masked(e, ((row *)ctx)->x, j, mask, 0.0));
}

static void max_step(cg_emit *e, LLVMValueRef j, LLVMValueRef mask, void *ctx) {
  row *r = ctx;
  LLVMValueRef v = cg_load_masked(e, r->x, j, mask, -INFINITY);
  LLVMValueRef m = cg_get(e, e->vf32, r->max);
  cg_set(e, r->max, cg_intrinsic(e, "llvm.maxnum", e->vf32, (LLVMValueRef[]){m, v}, 2));
}

/* p = exp(x - max) into y; masked-off lanes read -inf, so add 0. The f32
 * difference d is off from the exact one by err (TwoSum, exact), up to
 * |d| * 6e-8 (3e-6 at d = -50): p = exp(d) * (1 + err) puts it back, so only
 * the polynomial's ~1e-7 remains. err is NaN for infinite x: then 0. */
static void exp_step(cg_emit *e, LLVMValueRef j, LLVMValueRef mask, void *ctx) {
  row *r = ctx;
  LLVMBuilderRef b = e->b;
  LLVMValueRef x = cg_load_masked(e, r->x, j, mask, -INFINITY), d = LLVMBuildFSub(b, x, r->max, "");
  LLVMValueRef xd = LLVMBuildFAdd(b, d, r->max, ""), md = LLVMBuildFSub(b, xd, d, "");
  LLVMValueRef err = LLVMBuildFAdd(b, LLVMBuildFSub(b, x, xd, ""), LLVMBuildFSub(b, md, r->max, ""), "");
  err = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, err, err, ""), cg_fconst(e->vf32, 0.0), err, "");
  LLVMValueRef p = cg_exp(e, d);
  p = cg_fma(e, p, err, p);
  cg_store_masked(e, p, r->y, j, mask);
  add_to(e, r, p);
}

static void scale_step(cg_emit *e, LLVMValueRef j, LLVMValueRef mask, void *ctx) {
  row *r = ctx;
  LLVMValueRef p = LLVMBuildFPExt(e->b, cg_load_masked(e, r->y, j, mask, 0.0), r->vd, "");
  cg_store_masked(e, LLVMBuildFPTrunc(e->b, LLVMBuildFDiv(e->b, p, r->sum, ""), e->vf32, ""), r->y, j, mask);
}

/* A double splat of the double d. */
static LLVMValueRef splat_double(cg_emit *e, LLVMTypeRef vd, LLVMValueRef d) {
  LLVMValueRef v = LLVMBuildInsertElement(e->b, LLVMGetUndef(vd), d, LLVMConstInt(e->i32, 0, 0), "");
  return LLVMBuildShuffleVector(e->b, v, LLVMGetUndef(vd), LLVMConstNull(LLVMVectorType(e->i32, (unsigned)e->vw)), "");
}

/* shaped: arg = {x, y} */
LLVMModuleRef cg_emit_reduce(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  cg_emit em, *e = &em;
  LLVMValueRef arg[2];
  cg_emit_begin_shaped(e, tgt, name, 2, arg);
  LLVMTypeRef f64 = LLVMDoubleTypeInContext(e->ctx);
  const ir_shape *s = &k->in[0];
  LLVMValueRef L = cg_extent(e, s->dim[s->rank - 1]);
  cg_loop rows;
  LLVMValueRef i = cg_loop_begin(e, &rows, cg_row0(e), cg_row1(e), 1), at = LLVMBuildNSWMul(e->b, i, L, "");
  row r = {.x = cg_elem(e, IR_F32, arg[0], at), .y = cg_elem(e, IR_F32, arg[1], at),
           .vd = LLVMVectorType(f64, (unsigned)e->vw)};
  r.acc = cg_var(e, r.vd, LLVMConstNull(r.vd));
  if (k->op == IR_SOFTMAX) {
    r.max = cg_var(e, e->vf32, cg_fconst(e->vf32, -INFINITY));
    cg_span(e, L, max_step, &r);
    LLVMValueRef m = cg_reduce_max(e, cg_get(e, e->vf32, r.max));
    r.max = cg_splat(e, m);
    cg_span(e, L, exp_step, &r);
    r.sum = splat_double(e, r.vd, cg_reduce_add(e, cg_get(e, r.vd, r.acc)));
    cg_span(e, L, scale_step, &r);
  } else {
    cg_span(e, L, sum_step, &r);
    LLVMValueRef sum = cg_reduce_add(e, cg_get(e, r.vd, r.acc));
    if (k->op == IR_REDUCE_MEAN)
      sum = LLVMBuildFDiv(e->b, sum, LLVMBuildSIToFP(e->b, L, f64, ""), "");
    cg_store_f32(e, LLVMBuildFPTrunc(e->b, sum, e->f32, ""), arg[1], i);
  }
  cg_loop_end(e, &rows);
  return cg_emit_finish(e);
}
