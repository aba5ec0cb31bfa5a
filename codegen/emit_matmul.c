/* The matmul kernels, register-tiled: for the rows m of x and the columns n
 * of a range, y[m,n] = x[m].w[n] with w f32 or bf16 (widened in registers),
 * plus the fused epilogues (+ r; silu(x.wg) * (x.wu)). A step covers ROWS rows
 * of x (GEMM, T > 1; one row for GEMV and the rows left over) by COLS rows of
 * w, so each load of w serves ROWS rows and each load of x COLS columns; K
 * (baked in) runs in whole vectors, then one masked vector. Invariant: each
 * output is one <vw x float> accumulator over the same K steps reduced once,
 * so its value does not depend on the tile or range it was computed in. */
#include "cg_internal.h"

#define COLS 4 /* output columns per step of the main loop */
#define ROWS 4 /* rows of x per step of the GEMM loop (2 for swiglu: two accumulators each) */

typedef struct gemv {
  const cg_kernel_key *k;
  int mats;                    /* weight matrices: 2 for swiglu, else 1 */
  int rows;                    /* rows of x in this tile */
  LLVMValueRef w[2];           /* the weight matrices [N,K] */
  LLVMValueRef x[ROWS], r[ROWS], y[ROWS]; /* the tile's rows of x [K], of r and y [N] (r NULL unless matmul_add) */
} gemv;

/* acc[i][c][t] += x_i[kk..] * w_t[n+c][kk..] over `lanes` lanes. */
static void fma_step(cg_emit *e, const gemv *g, LLVMValueRef kk, int lanes, int cols,
                     LLVMValueRef acc[][COLS][2], LLVMValueRef row[][2]) {
  LLVMValueRef xv[ROWS];
  for (int i = 0; i < g->rows; i++)
    xv[i] = cg_load_vec(e, IR_F32, g->x[i], kk, lanes);
  for (int c = 0; c < cols; c++)
    for (int t = 0; t < g->mats; t++) {
      LLVMValueRef wv = cg_load_vec(e, g->k->wtype, row[c][t], kk, lanes);
      for (int i = 0; i < g->rows; i++)
        cg_set(e, acc[i][c][t], cg_fma(e, xv[i], wv, cg_get(e, e->vf32, acc[i][c][t])));
    }
}

/* y[n .. n+cols) of the tile's rows. */
static void columns(cg_emit *e, const gemv *g, LLVMValueRef n, int cols) {
  int64_t K = g->k->k;
  ir_dtype wt = g->k->wtype;
  LLVMValueRef acc[ROWS][COLS][2], row[COLS][2];
  for (int c = 0; c < cols; c++)
    for (int t = 0; t < g->mats; t++) {
      for (int i = 0; i < g->rows; i++)
        acc[i][c][t] = cg_var(e, e->vf32, cg_fconst(e->vf32, 0.0));
      LLVMValueRef at = LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, n, cg_i64(e, c), ""), cg_i64(e, K), "");
      row[c][t] = cg_elem(e, wt, g->w[t], at);
    }
  cg_loop l;
  fma_step(e, g, cg_loop_begin(e, &l, cg_i64(e, 0), cg_i64(e, K), e->vw), e->vw, cols, acc, row);
  cg_loop_end(e, &l);
  if (K % e->vw)
    fma_step(e, g, cg_i64(e, K - K % e->vw), (int)(K % e->vw), cols, acc, row);
  for (int i = 0; i < g->rows; i++)
    for (int c = 0; c < cols; c++) {
      LLVMValueRef at = LLVMBuildNSWAdd(e->b, n, cg_i64(e, c), "");
      LLVMValueRef s = cg_reduce_add(e, cg_get(e, e->vf32, acc[i][c][0]));
      if (g->mats == 2)
        s = cg_silu_mul(e, s, cg_reduce_add(e, cg_get(e, e->vf32, acc[i][c][1])));
      if (g->r[i])
        s = LLVMBuildFAdd(e->b, cg_load_f32(e, IR_F32, g->r[i], at), s, "");
      cg_store_f32(e, s, g->y[i], at);
    }
}

/* Rows m .. m+g->rows of x, all columns of [n0,n1): COLS at a time, then one by one. */
static void tile_rows(cg_emit *e, gemv *g, int np, LLVMValueRef m, LLVMValueRef n0, LLVMValueRef n1) {
  for (int i = 0; i < g->rows; i++) {
    LLVMValueRef mi = LLVMBuildNSWAdd(e->b, m, cg_i64(e, i), "");
    g->x[i] = cg_elem(e, IR_F32, cg_param(e, 0), LLVMBuildNSWMul(e->b, mi, cg_i64(e, g->k->k), ""));
    LLVMValueRef at = LLVMBuildNSWMul(e->b, mi, cg_i64(e, g->k->n), "");
    g->y[i] = cg_elem(e, IR_F32, cg_param(e, np - 1), at);
    g->r[i] = g->k->op == IR_MATMUL_ADD ? cg_elem(e, IR_F32, cg_param(e, 2), at) : NULL;
  }
  cg_loop main, tail;
  columns(e, g, cg_loop_begin(e, &main, n0, n1, COLS), COLS);
  cg_loop_end(e, &main);
  columns(e, g, cg_loop_begin(e, &tail, cg_get(e, e->i64, main.var), n1, 1), 1);
  cg_loop_end(e, &tail);
}

/* k(x, w, [w2 | r,] y, m0, m1, n0, n1) */
LLVMModuleRef cg_emit_matmul(cg_jit *j, const cg_kernel_key *k, const char *name) {
  int np = k->op == IR_MATMUL ? 3 : 4;
  cg_emit em, *e = &em;
  cg_emit_begin(e, j, name, np, 4);
  gemv g = {.k = k, .mats = k->op == IR_MATMUL_SWIGLU ? 2 : 1, .w = {cg_param(e, 1), cg_param(e, 2)}};
  LLVMValueRef n0 = cg_param(e, np + 2), n1 = cg_param(e, np + 3), m1 = cg_param(e, np + 1);
  cg_loop tiles, rest;
  g.rows = g.mats == 2 ? ROWS / 2 : ROWS;
  tile_rows(e, &g, np, cg_loop_begin(e, &tiles, cg_param(e, np), m1, g.rows), n0, n1);
  cg_loop_end(e, &tiles);
  g.rows = 1;
  tile_rows(e, &g, np, cg_loop_begin(e, &rest, cg_get(e, e->i64, tiles.var), m1, 1), n0, n1);
  cg_loop_end(e, &rest);
  return cg_emit_finish(e);
}
