/* The matmul kernels: y[m,n] = x[m].w[n] for the rows m and columns n of a
 * range, with w f32 or bf16 (widened in registers) packed into panels of
 * 2*vw columns (codegen/panels/panel.c), plus the fused epilogues (+ r; silu(x.wg) *
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
 * (a prompt's last row equals the same token decoded alone).
 *
 * --compute bf16 (bf16 weights packed in k pairs): one row is still that fma
 * chain, bit for bit the bf16 kernel's; T > 1 rows round x to bf16 and run
 * vdpbf16ps (dot_chains), the same bits for any tile, range or thread count,
 * within a documented bound of the f32 chain (a prompt's last row then differs
 * from the token decoded alone by that much). */
#include "emit.h"

typedef struct mm {
  const cg_kernel_key *k;
  int mats;                   /* weight matrices: 2 for swiglu, else 1 */
  int64_t nr;                 /* panel width: 2 * vw columns */
  bool pairs;                 /* bf16 panels in k pairs (--compute bf16, panels/panel.c) */
  LLVMValueRef x, w[2], r, y; /* parameters */
  LLVMValueRef n0, n1;        /* the column range */
} mm;

/* One tile's registers: accumulator ((i * panels + q) * mats + t) * 2 + h
 * holds row i, panel q, matrix t, half h (columns h*vw ..). */
enum { MAX_ACC = 24 };
typedef struct tile_regs {
  int rows, panels;
  bool gemv;
  LLVMValueRef acc[MAX_ACC], panel[4][2], xrow[12];
} tile_regs;

static LLVMValueRef *acc_of(const mm *g, tile_regs *r, int i, int q, int t, int h) {
  return &r->acc[((i * r->panels + q) * g->mats + t) * 2 + h];
}

/* The two vw-wide f32 halves of row k of a panel. A bf16 panel row is vw
 * 32-bit words holding column c in the low half and column vw + c in the high
 * half (panels/panel.c), so each half is one shift or one mask away. */
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

/* The words of half h of pair row kp of a k-pair panel, as type t: lane c
 * holds column h*vw + c at k = 2kp (low 16 bits) and 2kp + 1 (high). */
static LLVMValueRef pair_words(cg_emit *e, const mm *g, LLVMValueRef panel, LLVMValueRef kp, int h, LLVMTypeRef t) {
  LLVMValueRef row = LLVMBuildNSWMul(e->b, kp, cg_i64(e, 2 * g->nr), "");
  LLVMValueRef at = LLVMBuildNSWAdd(e->b, row, cg_i64(e, 2 * h * e->vw), "");
  LLVMValueRef v = LLVMBuildLoad2(e->b, t, cg_elem(e, IR_BF16, panel, at), "");
  LLVMSetAlignment(v, 4);
  return v;
}

/* Step k of every chain: acc += x[i,k] * w[k, columns]. From a k-pair panel
 * (kp = k / 2, odd = k % 2) the weights are the low or high halves of the words. */
static void fma_step(cg_emit *e, const mm *g, tile_regs *r, LLVMValueRef k, LLVMValueRef kp, int odd) {
  LLVMValueRef xb[12];
  for (int i = 0; i < r->rows; i++)
    xb[i] = cg_splat(e, cg_load_f32(e, IR_F32, r->xrow[i], k));
  LLVMTypeRef vi32 = LLVMVectorType(e->i32, (unsigned)e->vw);
  for (int q = 0; q < r->panels; q++)
    for (int t = 0; t < g->mats; t++) {
      LLVMValueRef half[2];
      if (!g->pairs)
        panel_row(e, g, r->panel[q][t], k, half);
      for (int h = 0; g->pairs && h < 2; h++) {
        LLVMValueRef words = pair_words(e, g, r->panel[q][t], kp, h, vi32);
        words = odd ? LLVMBuildAnd(e->b, words, cg_iconst(vi32, (int64_t)0xffff0000), "")
                    : LLVMBuildShl(e->b, words, cg_iconst(vi32, 16), "");
        half[h] = LLVMBuildBitCast(e->b, words, e->vf32, "");
      }
      for (int i = 0; i < r->rows; i++)
        for (int h = 0; h < 2; h++) {
          LLVMValueRef *a = acc_of(g, r, i, q, t, h);
          cg_set(e, *a, cg_fma(e, xb[i], half[h], cg_get(e, e->vf32, *a)));
        }
    }
}

/* How far ahead a bf16 GEMV fetches its panels, in k rows (one 64-byte line
 * of a panel each). A bf16 row costs more instructions per byte than an f32
 * one, so the out-of-order window holds fewer lines in flight and one core's
 * read fell to 12-15 GB/s against f32's 16-17; fetched 3 KiB ahead it reads
 * 16 (matmul_kernel_bench 2048 8192 5 1 1). f32 gained nothing from it. */
#define BF16_GEMV_PREFETCH_ROWS 48

/* The line at element `at` of every panel of the tile. */
static void prefetch_panels(cg_emit *e, const mm *g, tile_regs *r, LLVMValueRef at) {
  for (int q = 0; q < r->panels; q++)
    for (int t = 0; t < g->mats; t++) { /* a read, into all cache levels, of data */
      LLVMValueRef args[] = {cg_elem(e, IR_BF16, r->panel[q][t], at), LLVMConstInt(e->i32, 0, 0),
                             LLVMConstInt(e->i32, 3, 0), LLVMConstInt(e->i32, 1, 0)};
      cg_intrinsic(e, "llvm.prefetch", e->ptr, args, 4);
    }
}

/* The f32 chains over k = 0..K-1 in order: one fma per k, on any layout. */
static void fma_chains(cg_emit *e, const mm *g, tile_regs *r) {
  int64_t K = g->k->k;
  cg_loop kl;
  if (!g->pairs) {
    LLVMValueRef k = cg_loop_begin(e, &kl, cg_i64(e, 0), cg_i64(e, K), 1);
    if (r->gemv && g->k->wtype == IR_BF16)
      prefetch_panels(e, g, r, LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, k, cg_i64(e, BF16_GEMV_PREFETCH_ROWS), ""),
                                               cg_i64(e, g->nr), ""));
    fma_step(e, g, r, k, NULL, 0);
    cg_loop_end(e, &kl);
    return;
  }
  LLVMValueRef kp = cg_loop_begin(e, &kl, cg_i64(e, 0), cg_i64(e, K / 2), 1);
  LLVMValueRef k = LLVMBuildNSWMul(e->b, kp, cg_i64(e, 2), "");
  if (r->gemv) { /* a pair row is two lines */
    LLVMValueRef ahead = LLVMBuildNSWAdd(e->b, k, cg_i64(e, BF16_GEMV_PREFETCH_ROWS), "");
    prefetch_panels(e, g, r, LLVMBuildNSWMul(e->b, ahead, cg_i64(e, g->nr), ""));
    prefetch_panels(e, g, r, LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, ahead, cg_i64(e, g->nr), ""),
                                             cg_i64(e, g->nr), ""));
  }
  fma_step(e, g, r, k, kp, 0);
  fma_step(e, g, r, LLVMBuildNSWAdd(e->b, k, cg_i64(e, 1), ""), kp, 1);
  cg_loop_end(e, &kl);
  if (K % 2)
    fma_step(e, g, r, cg_i64(e, K - 1), cg_i64(e, K / 2), 0);
}

/* Up to 8 k pairs from k0 (the pairs of a block of 16 k, fewer at the end):
 * each row's 16 x rounded to bf16 once into xs (zero past K, which meets the
 * panel's zero padding), then per pair one vdpbf16ps per row and half. */
static void dot_block(cg_emit *e, const mm *g, tile_regs *r, LLVMValueRef xs, LLVMValueRef k0, int64_t ks) {
  LLVMTypeRef v32bf = LLVMVectorType(LLVMBFloatTypeInContext(e->ctx), 32), row_t = LLVMVectorType(e->i32, 8);
  for (int i = 0; i < r->rows; i++) {
    LLVMValueRef x = cg_load_vec(e, IR_F32, r->xrow[i], k0, (int)ks);
    LLVMValueRef b = cg_x86(e, "llvm.x86.avx512bf16.cvtneps2bf16.512", &x, 1);
    LLVMValueRef at = LLVMBuildGEP2(e->b, row_t, xs, (LLVMValueRef[]){cg_i64(e, i)}, 1, "");
    LLVMBuildStore(e->b, LLVMBuildBitCast(e->b, b, row_t, ""), at);
  }
  LLVMValueRef kp0 = LLVMBuildSDiv(e->b, k0, cg_i64(e, 2), "");
  for (int j = 0; j < (ks + 1) / 2; j++) {
    LLVMValueRef kp = LLVMBuildNSWAdd(e->b, kp0, cg_i64(e, j), ""), w[2][2];
    for (int t = 0; t < g->mats; t++)
      for (int h = 0; h < 2; h++)
        w[t][h] = pair_words(e, g, r->panel[0][t], kp, h, v32bf);
    for (int i = 0; i < r->rows; i++) {
      LLVMValueRef at = LLVMBuildGEP2(e->b, e->i32, xs, (LLVMValueRef[]){cg_i64(e, 8 * i + j)}, 1, "");
      LLVMValueRef pair = LLVMBuildLoad2(e->b, e->i32, at, "");
      LLVMValueRef xb = LLVMBuildBitCast(e->b, cg_splat(e, pair), v32bf, "");
      for (int t = 0; t < g->mats; t++)
        for (int h = 0; h < 2; h++) {
          LLVMValueRef *a = acc_of(g, r, i, 0, t, h);
          LLVMValueRef args[] = {cg_get(e, e->vf32, *a), xb, w[t][h]};
          cg_set(e, *a, cg_x86(e, "llvm.x86.avx512bf16.dpbf16ps.512", args, 3));
        }
    }
  }
}

/* --compute bf16 rows (T > 1): x rounded to bf16 (round to nearest even, as
 * the weights were), k pairs multiplied exactly and added into f32 by
 * vdpbf16ps (odd k first, denormals flushed). bf16 keeps 8 significant bits,
 * so a rounded x is within 2^-8 of x relative; with the f32 sums in another
 * order, |y - x.w| <= (2^-8 + K 2^-23) sum_k |x_k w_k| (README has the
 * figures measured). One panel per tile. */
static void dot_chains(cg_emit *e, const mm *g, tile_regs *r) {
  int64_t K = g->k->k, tail = K % 16;
  LLVMTypeRef rows_t = LLVMArrayType(LLVMVectorType(e->i32, 8), 12); /* 16 bf16 x per row */
  LLVMValueRef xs = cg_var(e, rows_t, LLVMGetUndef(rows_t));
  cg_loop kl;
  LLVMValueRef k0 = cg_loop_begin(e, &kl, cg_i64(e, 0), cg_i64(e, K - tail), 16);
  dot_block(e, g, r, xs, k0, 16);
  cg_loop_end(e, &kl);
  if (tail)
    dot_block(e, g, r, xs, cg_i64(e, K - tail), tail);
}

/* Rows m .. m+rows by panels p .. p+panels: the chains over all of K, then
 * the epilogue, stored to the columns of [n0, n1) only. */
static void tile(cg_emit *e, const mm *g, LLVMValueRef m, LLVMValueRef p, int rows, int panels, bool gemv) {
  int64_t K = g->k->k;
  tile_regs r = {.rows = rows, .panels = panels, .gemv = gemv};
  int n_acc = rows * panels * g->mats * 2;
  for (int i = 0; i < n_acc; i++)
    r.acc[i] = cg_var(e, e->vf32, cg_fconst(e->vf32, 0.0));
  int64_t panel_elems = (g->pairs ? (K + 1) / 2 * 2 : K) * g->nr;
  for (int q = 0; q < panels; q++)
    for (int t = 0; t < g->mats; t++) {
      LLVMValueRef at = LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, p, cg_i64(e, q), ""), cg_i64(e, panel_elems), "");
      r.panel[q][t] = cg_elem(e, g->k->wtype, g->w[t], at);
    }
  for (int i = 0; i < rows; i++)
    r.xrow[i] = cg_elem(e, IR_F32, g->x, LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, m, cg_i64(e, i), ""), cg_i64(e, K), ""));

  if (g->pairs && !gemv)
    dot_chains(e, g, &r);
  else
    fma_chains(e, g, &r);

  for (int i = 0; i < rows; i++) {
    LLVMValueRef row = LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, m, cg_i64(e, i), ""), cg_i64(e, g->k->n), "");
    for (int q = 0; q < panels; q++)
      for (int h = 0; h < 2; h++) {
        LLVMValueRef col = LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, p, cg_i64(e, q), ""),
                                                                 cg_i64(e, g->nr), ""),
                                           cg_i64(e, h * e->vw), "");
        LLVMValueRef mask = cg_lanes_in(e, col, g->n0, g->n1), at = LLVMBuildNSWAdd(e->b, row, col, "");
        LLVMValueRef v = cg_get(e, e->vf32, *acc_of(g, &r, i, q, 0, h));
        if (g->mats == 2)
          v = cg_silu_mul(e, v, cg_get(e, e->vf32, *acc_of(g, &r, i, q, 1, h)));
        if (g->r)
          v = LLVMBuildFAdd(e->b, cg_load_masked(e, g->r, at, mask, 0.0), v, "");
        cg_store_masked(e, v, g->y, at, mask);
      }
  }
}

static void f32_tile(cg_emit *e, const void *g, LLVMValueRef m, LLVMValueRef p, int rows, int panels, bool gemv) {
  tile(e, g, m, p, rows, panels, gemv);
}

/* A loop over [begin, end) in steps of `rows` rows of one tile each, leaving
 * the first uncovered index in *next. */
static void row_tiles(cg_emit *e, cg_tile_fn *tile_fn, const void *g, LLVMValueRef begin, LLVMValueRef end,
                      LLVMValueRef p, int rows, LLVMValueRef *next) {
  cg_loop l;
  tile_fn(e, g, cg_loop_begin(e, &l, begin, end, rows), p, rows, 1, false);
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
  tile_fn(e, g, m0, cg_loop_begin(e, &wide, p0, p1, gemv_panels), 1, gemv_panels, true);
  cg_loop_end(e, &wide);
  tile_fn(e, g, m0, cg_loop_begin(e, &narrow, cg_get(e, e->i64, wide.var), p1, 1), 1, 1, true);
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
LLVMModuleRef cg_emit_matmul(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  int np = k->op == IR_MATMUL ? 3 : 4;
  cg_emit em, *e = &em;
  cg_emit_begin(e, tgt, name, np, 4);
  mm g = {.k = k, .mats = k->op == IR_MATMUL_SWIGLU ? 2 : 1, .nr = 2 * e->vw, .x = cg_param(e, 0),
          .pairs = k->wtype == IR_BF16 && tgt->bf16_compute,
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
