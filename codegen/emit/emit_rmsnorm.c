/* The rmsnorm and rmsnorm_add kernels over a range of rows of width D (D and
 * eps baked in): y = (r +) w * (x * (1 / sqrt(mean(x^2) + eps))). Invariant:
 * each row is read whole (sum of squares) before any of its y is written, and
 * y[j] is written only after x[j] and r[j] are read, so y may alias x or r. */
#include "emit.h"

/* One pass over a row: whole vectors, then one masked vector for D % vw.
 * body(e, j, lanes, ctx) emits the work for the vector at column j. */
typedef void row_body(cg_emit *e, LLVMValueRef j, int lanes, void *ctx);

static void over_row(cg_emit *e, int64_t D, row_body *body, void *ctx) {
  cg_loop l;
  LLVMValueRef j = cg_loop_begin(e, &l, cg_i64(e, 0), cg_i64(e, D), e->vw);
  body(e, j, e->vw, ctx);
  cg_loop_end(e, &l);
  if (D % e->vw)
    body(e, cg_i64(e, D - D % e->vw), (int)(D % e->vw), ctx);
}

typedef struct row {
  LLVMValueRef x, w, r, y; /* row pointers (w: the weight vector; r NULL for rmsnorm) */
  LLVMValueRef acc;        /* var <vw x float>: sum of squares */
  LLVMValueRef inv;        /* <vw x float>: the row's 1/rms */
} row;

static void square_sum(cg_emit *e, LLVMValueRef j, int lanes, void *ctx) {
  row *rw = ctx;
  LLVMValueRef v = cg_load_vec(e, IR_F32, rw->x, j, lanes);
  cg_set(e, rw->acc, cg_fma(e, v, v, cg_get(e, e->vf32, rw->acc)));
}

static void scale(cg_emit *e, LLVMValueRef j, int lanes, void *ctx) {
  row *rw = ctx;
  LLVMValueRef normed = LLVMBuildFMul(e->b, cg_load_vec(e, IR_F32, rw->x, j, lanes), rw->inv, "");
  LLVMValueRef v = LLVMBuildFMul(e->b, cg_load_vec(e, IR_F32, rw->w, j, lanes), normed, "");
  if (rw->r)
    v = LLVMBuildFAdd(e->b, cg_load_vec(e, IR_F32, rw->r, j, lanes), v, "");
  cg_store_vec(e, v, rw->y, j, lanes);
}

/* k(x, w, [r,] y, row0, row1) */
LLVMModuleRef cg_emit_rmsnorm(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  bool add = k->op == IR_RMSNORM_ADD;
  int np = add ? 4 : 3;
  int64_t D = k->k;
  cg_emit em, *e = &em;
  cg_emit_begin(e, tgt, name, np, 2);
  row rw = {.w = cg_param(e, 1)};
  cg_loop rows;
  LLVMValueRef i = cg_loop_begin(e, &rows, cg_param(e, np), cg_param(e, np + 1), 1);
  LLVMValueRef at = LLVMBuildNSWMul(e->b, i, cg_i64(e, D), "");
  rw.x = cg_elem(e, IR_F32, cg_param(e, 0), at);
  rw.y = cg_elem(e, IR_F32, cg_param(e, np - 1), at);
  rw.r = add ? cg_elem(e, IR_F32, cg_param(e, 2), at) : NULL;
  rw.acc = cg_var(e, e->vf32, cg_fconst(e->vf32, 0.0));
  over_row(e, D, square_sum, &rw);
  LLVMValueRef mean = LLVMBuildFDiv(e->b, cg_reduce_add(e, cg_get(e, e->vf32, rw.acc)),
                                    cg_fconst(e->f32, (double)D), "");
  LLVMValueRef ms = LLVMBuildFAdd(e->b, mean, cg_fconst(e->f32, k->eps), "");
  LLVMValueRef inv = LLVMBuildFDiv(e->b, cg_fconst(e->f32, 1.0), cg_intrinsic(e, "llvm.sqrt", e->f32, &ms, 1), "");
  rw.inv = cg_splat(e, inv);
  over_row(e, D, scale, &rw);
  cg_loop_end(e, &rows);
  return cg_emit_finish(e);
}
