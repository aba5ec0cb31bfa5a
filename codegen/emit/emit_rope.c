/* The rope kernel over a range of rows (t,h) of x[T,H,D] (H and D baked in),
 * cos and sin [T,D]: y = x*cos + rotate_half(x)*sin, rotate_half(x) =
 * concat(-x[D/2:], x[:D/2]), each product and the sum rounded to f32 as the
 * interpreter does (no contraction to fma), so results are bit-identical.
 * Invariant: both halves at a column are read before either is written, so y may be x. */
#include "emit.h"

typedef struct rope_row {
  LLVMValueRef x, y, cos, sin; /* this row of x and y [D], this token's cos and sin [D] */
  int64_t half;
} rope_row;

/* Columns j .. j+lanes of the first half and their partners in the second. */
static void rope_step(cg_emit *e, const rope_row *r, LLVMValueRef j, int lanes) {
  LLVMValueRef jh = LLVMBuildNSWAdd(e->b, j, cg_i64(e, r->half), "");
  LLVMValueRef lo = cg_load_vec(e, IR_F32, r->x, j, lanes), hi = cg_load_vec(e, IR_F32, r->x, jh, lanes);
  LLVMValueRef a = LLVMBuildFMul(e->b, lo, cg_load_vec(e, IR_F32, r->cos, j, lanes), "");
  LLVMValueRef b = LLVMBuildFMul(e->b, LLVMBuildFNeg(e->b, hi, ""), cg_load_vec(e, IR_F32, r->sin, j, lanes), "");
  LLVMValueRef c = LLVMBuildFMul(e->b, hi, cg_load_vec(e, IR_F32, r->cos, jh, lanes), "");
  LLVMValueRef d = LLVMBuildFMul(e->b, lo, cg_load_vec(e, IR_F32, r->sin, jh, lanes), "");
  cg_store_vec(e, LLVMBuildFAdd(e->b, a, b, ""), r->y, j, lanes);
  cg_store_vec(e, LLVMBuildFAdd(e->b, c, d, ""), r->y, jh, lanes);
}

/* k(x, cos, sin, y, row0, row1) */
LLVMModuleRef cg_emit_rope(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  int64_t D = k->k, H = k->n;
  cg_emit em, *e = &em;
  cg_emit_begin(e, tgt, name, 4, 2);
  rope_row r = {.half = D / 2};
  cg_loop rows, cols;
  LLVMValueRef i = cg_loop_begin(e, &rows, cg_param(e, 4), cg_param(e, 5), 1);
  LLVMValueRef at = LLVMBuildNSWMul(e->b, i, cg_i64(e, D), "");
  LLVMValueRef t = LLVMBuildSDiv(e->b, i, cg_i64(e, H), "");
  LLVMValueRef tat = LLVMBuildNSWMul(e->b, t, cg_i64(e, D), "");
  r.x = cg_elem(e, IR_F32, cg_param(e, 0), at);
  r.y = cg_elem(e, IR_F32, cg_param(e, 3), at);
  r.cos = cg_elem(e, IR_F32, cg_param(e, 1), tat);
  r.sin = cg_elem(e, IR_F32, cg_param(e, 2), tat);
  rope_step(e, &r, cg_loop_begin(e, &cols, cg_i64(e, 0), cg_i64(e, r.half), e->vw), e->vw);
  cg_loop_end(e, &cols);
  if (r.half % e->vw)
    rope_step(e, &r, cg_i64(e, r.half - r.half % e->vw), (int)(r.half % e->vw));
  cg_loop_end(e, &rows);
  return cg_emit_finish(e);
}
