/* The matmul kernels: y[m,n] = x[m].w[n] for the rows m and columns n of a
 * range, with w f32 or bf16 (widened in registers) packed into panels of
 * 2*vw columns (codegen/pack.c), plus the fused epilogues (+ r; silu(x.wg) *
 * (x.wu)). The kernel is an outer product: per k, each x[m,k] is broadcast
 * against a panel's row of 2*vw weights, so a tile of R rows by a panel keeps
 * 2R accumulators in registers while the panel streams from memory.
 *
 * T > 1 (GEMM): for each panel, every tile of rows; the panel (K*2*vw
 * weights) stays in L2 while all rows pass over it, so weights come from DRAM
 * once per call, not once per tile. One row (GEMV, decode): several panels at
 * once, for enough independent accumulators to cover the FMA latency.
 *
 * Invariant: every output is one f32 fma chain over k = 0..K-1 from 0, so its
 * bits do not depend on the tile, the range or the path it was computed in
 * (a prompt's last row equals the same token decoded alone). */
#include "cg_internal.h"

typedef struct mm {
  const cg_kernel_key *k;
  int mats;                   /* weight matrices: 2 for swiglu, else 1 */
  int64_t nr;                 /* panel width: 2 * vw columns */
  LLVMValueRef x, w[2], r, y; /* parameters */
  LLVMValueRef n0, n1;        /* the column range */
} mm;

/* The two vw-wide f32 halves of row k of a panel. A bf16 panel row is vw
 * 32-bit words holding column c in the low half and column vw + c in the high
 * half (pack.c), so each half is one shift or one mask away. */
static void panel_row(cg_emit *e, const mm *g, LLVMValueRef panel, LLVMValueRef k, LLVMValueRef half[2]) {
  LLVMValueRef at = LLVMBuildNSWMul(e->b, k, cg_i64(e, g->nr), "");
  if (g->k->wtype == IR_F32) {
    half[0] = cg_load_vec(e, IR_F32, panel, at, e->vw);
    half[1] = cg_load_vec(e, IR_F32, panel, LLVMBuildNSWAdd(e->b, at, cg_i64(e, e->vw), ""), e->vw);
    return;
  }
  LLVMTypeRef vi32 = LLVMVectorType(e->i32, (unsigned)e->vw);
  LLVMValueRef words = LLVMBuildLoad2(e->b, vi32, cg_elem(e, IR_BF16, panel, at), "");
  LLVMSetAlignment(words, 4);
  half[0] = LLVMBuildBitCast(e->b, LLVMBuildShl(e->b, words, cg_iconst(vi32, 16), ""), e->vf32, "");
  half[1] = LLVMBuildBitCast(e->b, LLVMBuildAnd(e->b, words, cg_iconst(vi32, (int64_t)0xffff0000), ""),
                             e->vf32, "");
}

/* Rows m .. m+rows by panels p .. p+panels: the fma chains over all of K,
 * then the epilogue, stored to the columns of [n0, n1) only. */
static void tile(cg_emit *e, const mm *g, LLVMValueRef m, LLVMValueRef p, int rows, int panels) {
  enum { MAX = 24 };
  int64_t K = g->k->k;
  LLVMValueRef acc[MAX], panel[4][2], xrow[12];
  int n_acc = rows * panels * g->mats * 2;
  for (int i = 0; i < n_acc; i++)
    acc[i] = cg_var(e, e->vf32, cg_fconst(e->vf32, 0.0));
  for (int q = 0; q < panels; q++)
    for (int t = 0; t < g->mats; t++) {
      LLVMValueRef at = LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, p, cg_i64(e, q), ""), cg_i64(e, K * g->nr), "");
      panel[q][t] = cg_elem(e, g->k->wtype, g->w[t], at);
    }
  for (int i = 0; i < rows; i++)
    xrow[i] = cg_elem(e, IR_F32, g->x, LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, m, cg_i64(e, i), ""), cg_i64(e, K), ""));

  cg_loop kl;
  LLVMValueRef k = cg_loop_begin(e, &kl, cg_i64(e, 0), cg_i64(e, K), 1);
  LLVMValueRef xb[12];
  for (int i = 0; i < rows; i++)
    xb[i] = cg_splat(e, cg_load_f32(e, IR_F32, xrow[i], k));
  for (int q = 0; q < panels; q++)
    for (int t = 0; t < g->mats; t++) {
      LLVMValueRef half[2];
      panel_row(e, g, panel[q][t], k, half);
      for (int i = 0; i < rows; i++)
        for (int h = 0; h < 2; h++) {
          LLVMValueRef a = acc[((i * panels + q) * g->mats + t) * 2 + h];
          cg_set(e, a, cg_fma(e, xb[i], half[h], cg_get(e, e->vf32, a)));
        }
    }
  cg_loop_end(e, &kl);

  for (int i = 0; i < rows; i++) {
    LLVMValueRef row = LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, m, cg_i64(e, i), ""), cg_i64(e, g->k->n), "");
    for (int q = 0; q < panels; q++)
      for (int h = 0; h < 2; h++) {
        LLVMValueRef col = LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, p, cg_i64(e, q), ""),
                                                                 cg_i64(e, g->nr), ""),
                                           cg_i64(e, h * e->vw), "");
        LLVMValueRef mask = cg_lanes_in(e, col, g->n0, g->n1), at = LLVMBuildNSWAdd(e->b, row, col, "");
        LLVMValueRef *a = &acc[((i * panels + q) * g->mats) * 2 + h];
        LLVMValueRef v = cg_get(e, e->vf32, a[0]);
        if (g->mats == 2)
          v = cg_silu_mul(e, v, cg_get(e, e->vf32, a[2]));
        if (g->r)
          v = LLVMBuildFAdd(e->b, cg_load_masked(e, g->r, at, mask, 0.0), v, "");
        cg_store_masked(e, v, g->y, at, mask);
      }
  }
}

static void f32_tile(cg_emit *e, const void *g, LLVMValueRef m, LLVMValueRef p, int rows, int panels) {
  tile(e, g, m, p, rows, panels);
}

/* A loop over [begin, end) in steps of `rows` rows of one tile each, leaving
 * the first uncovered index in *next. */
static void row_tiles(cg_emit *e, cg_tile_fn *tile_fn, const void *g, LLVMValueRef begin, LLVMValueRef end,
                      LLVMValueRef p, int rows, LLVMValueRef *next) {
  cg_loop l;
  tile_fn(e, g, cg_loop_begin(e, &l, begin, end, rows), p, rows, 1);
  cg_loop_end(e, &l);
  *next = cg_get(e, e->i64, l.var);
}

void cg_matmul_loops(cg_emit *e, cg_tile_fn *tile_fn, const void *g, LLVMValueRef m0, LLVMValueRef m1, LLVMValueRef p0,
                     LLVMValueRef p1, int gemv_panels, int gemm_rows) {
  LLVMBasicBlockRef gemv = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "gemv");
  LLVMBasicBlockRef gemm = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "gemm");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "ret");
  LLVMValueRef one_row = LLVMBuildICmp(e->b, LLVMIntEQ, LLVMBuildNSWSub(e->b, m1, m0, ""), cg_i64(e, 1), "");
  LLVMBuildCondBr(e->b, one_row, gemv, gemm);

  LLVMPositionBuilderAtEnd(e->b, gemv);
  cg_loop wide, narrow;
  tile_fn(e, g, m0, cg_loop_begin(e, &wide, p0, p1, gemv_panels), 1, gemv_panels);
  cg_loop_end(e, &wide);
  tile_fn(e, g, m0, cg_loop_begin(e, &narrow, cg_get(e, e->i64, wide.var), p1, 1), 1, 1);
  cg_loop_end(e, &narrow);
  LLVMBuildBr(e->b, done);

  LLVMPositionBuilderAtEnd(e->b, gemm);
  cg_loop panels;
  LLVMValueRef p = cg_loop_begin(e, &panels, p0, p1, 1), next;
  row_tiles(e, tile_fn, g, m0, m1, p, gemm_rows, &next);
  if (gemm_rows > 4)
    row_tiles(e, tile_fn, g, next, m1, p, 4, &next);
  if (gemm_rows > 1)
    row_tiles(e, tile_fn, g, next, m1, p, 1, &next);
  cg_loop_end(e, &panels);
  LLVMBuildBr(e->b, done);

  LLVMPositionBuilderAtEnd(e->b, done);
}

/* k(x, w, [w2 | r,] y, m0, m1, n0, n1) */
LLVMModuleRef cg_emit_matmul(cg_jit *j, const cg_kernel_key *k, const char *name) {
  int np = k->op == IR_MATMUL ? 3 : 4;
  cg_emit em, *e = &em;
  cg_emit_begin(e, j, name, np, 4);
  mm g = {.k = k, .mats = k->op == IR_MATMUL_SWIGLU ? 2 : 1, .nr = 2 * e->vw, .x = cg_param(e, 0),
          .w = {cg_param(e, 1), cg_param(e, 2)}, .r = k->op == IR_MATMUL_ADD ? cg_param(e, 2) : NULL,
          .y = cg_param(e, np - 1), .n0 = cg_param(e, np + 2), .n1 = cg_param(e, np + 3)};
  LLVMValueRef m0 = cg_param(e, np), m1 = cg_param(e, np + 1);
  /* register budget: 2 accumulators per row, panel and matrix, within 24 of 32 (12 of 16 on AVX2) */
  int gemm_rows = (e->vw == 16 ? 12 : 6) / g.mats, gemv_panels = (e->vw == 16 ? 4 : 2) / g.mats;
  LLVMValueRef p0 = LLVMBuildSDiv(e->b, g.n0, cg_i64(e, g.nr), "");
  LLVMValueRef p1 = LLVMBuildSDiv(e->b, LLVMBuildNSWAdd(e->b, g.n1, cg_i64(e, g.nr - 1), ""), cg_i64(e, g.nr), "");

  cg_matmul_loops(e, f32_tile, &g, m0, m1, p0, p1, gemv_panels, gemm_rows);
  return cg_emit_finish(e);
}
