/* The matmul kernels in GEMV form: for each row m of x in a range, the
 * columns n of a range, y[m,n] = x[m].w[n] with w f32 or bf16 (widened in
 * registers), plus the fused epilogues (+ r; silu(x.wg) * (x.wu)). COLS rows
 * of w share each load of x; K (baked in) runs in whole vectors, then one
 * masked vector. Invariant: each output is one <vw x float> accumulator
 * reduced once, so its value does not depend on the range it was computed in. */
#include "cg_internal.h"

#define COLS 4 /* output columns per step of the main loop */

typedef struct gemv {
  const cg_kernel_key *k;
  int mats;              /* weight matrices: 2 for swiglu, else 1 */
  LLVMValueRef w[2];     /* the weight matrices [N,K] */
  LLVMValueRef x, r, y;  /* this row of x [K], of r and y [N] (r NULL unless matmul_add) */
} gemv;

/* acc[c][t] += x[kk..] * w_t[n+c][kk..] over `lanes` lanes. */
static void fma_step(cg_emit *e, const gemv *g, LLVMValueRef kk, int lanes, int cols,
                     LLVMValueRef acc[][2], LLVMValueRef row[][2]) {
  LLVMValueRef xv = cg_load_vec(e, IR_F32, g->x, kk, lanes);
  for (int c = 0; c < cols; c++)
    for (int t = 0; t < g->mats; t++) {
      LLVMValueRef wv = cg_load_vec(e, g->k->wtype, row[c][t], kk, lanes);
      cg_set(e, acc[c][t], cg_fma(e, xv, wv, cg_get(e, e->vf32, acc[c][t])));
    }
}

/* y[n .. n+cols) of the current row. */
static void columns(cg_emit *e, const gemv *g, LLVMValueRef n, int cols) {
  int64_t K = g->k->k;
  ir_dtype wt = g->k->wtype;
  LLVMValueRef acc[COLS][2], row[COLS][2];
  for (int c = 0; c < cols; c++)
    for (int t = 0; t < g->mats; t++) {
      acc[c][t] = cg_var(e, e->vf32, cg_fconst(e->vf32, 0.0));
      LLVMValueRef at = LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, n, cg_i64(e, c), ""), cg_i64(e, K), "");
      row[c][t] = cg_elem(e, wt, g->w[t], at);
    }
  cg_loop l;
  fma_step(e, g, cg_loop_begin(e, &l, cg_i64(e, 0), cg_i64(e, K), e->vw), e->vw, cols, acc, row);
  cg_loop_end(e, &l);
  if (K % e->vw)
    fma_step(e, g, cg_i64(e, K - K % e->vw), (int)(K % e->vw), cols, acc, row);
  for (int c = 0; c < cols; c++) {
    LLVMValueRef at = LLVMBuildNSWAdd(e->b, n, cg_i64(e, c), "");
    LLVMValueRef s = cg_reduce_add(e, cg_get(e, e->vf32, acc[c][0]));
    if (g->mats == 2)
      s = cg_silu_mul(e, s, cg_reduce_add(e, cg_get(e, e->vf32, acc[c][1])));
    if (g->r)
      s = LLVMBuildFAdd(e->b, cg_load_f32(e, IR_F32, g->r, at), s, "");
    cg_store_f32(e, s, g->y, at);
  }
}

/* k(x, w, [w2 | r,] y, m0, m1, n0, n1) */
LLVMModuleRef cg_emit_matmul(cg_jit *j, const cg_kernel_key *k, const char *name) {
  int np = k->op == IR_MATMUL ? 3 : 4;
  cg_emit em, *e = &em;
  cg_emit_begin(e, j, name, np, 4);
  gemv g = {.k = k, .mats = k->op == IR_MATMUL_SWIGLU ? 2 : 1, .w = {cg_param(e, 1), cg_param(e, 2)}};
  LLVMValueRef n0 = cg_param(e, np + 2), n1 = cg_param(e, np + 3);
  cg_loop rows, main, tail;
  LLVMValueRef m = cg_loop_begin(e, &rows, cg_param(e, np), cg_param(e, np + 1), 1);
  g.x = cg_elem(e, IR_F32, cg_param(e, 0), LLVMBuildNSWMul(e->b, m, cg_i64(e, k->k), ""));
  LLVMValueRef at = LLVMBuildNSWMul(e->b, m, cg_i64(e, k->n), "");
  g.y = cg_elem(e, IR_F32, cg_param(e, np - 1), at);
  g.r = k->op == IR_MATMUL_ADD ? cg_elem(e, IR_F32, cg_param(e, 2), at) : NULL;
  columns(e, &g, cg_loop_begin(e, &main, n0, n1, COLS), COLS);
  cg_loop_end(e, &main);
  columns(e, &g, cg_loop_begin(e, &tail, cg_get(e, e->i64, main.var), n1, 1), 1);
  cg_loop_end(e, &tail);
  cg_loop_end(e, &rows);
  return cg_emit_finish(e);
}
