/* The product of two activations, shaped: a[...,M,K] and b[...,N,K] (or one
 * b[N,K] for every batch) give y[...,M,N] = a.b^T, with M, N and K at the
 * call's T and P (attention's q.k^T and p.v in an unfused graph). Work is the
 * rows of y; a row's columns go COLS at a time, each a <vw x float> FMA
 * accumulator over K (whole vectors, then one masked) reduced once, as the
 * weight matmul kernels do. Invariant: an output's value depends on nothing
 * but its own accumulator, so the tiling and any split of the rows give the
 * same bits. */
#include "emit.h"

#define COLS 4

typedef struct dots {
  int cols;
  LLVMValueRef a;          /* this row of a [K] */
  LLVMValueRef b[COLS];    /* rows n .. n+cols of b [K] */
  LLVMValueRef acc[COLS];  /* var <vw x float> */
} dots;

static void dot_step(cg_emit *e, LLVMValueRef j, LLVMValueRef mask, void *ctx) {
  dots *d = ctx;
  LLVMValueRef av = cg_load_masked(e, d->a, j, mask, 0.0);
  for (int c = 0; c < d->cols; c++) {
    LLVMValueRef bv = cg_load_masked(e, d->b[c], j, mask, 0.0);
    cg_set(e, d->acc[c], cg_fma(e, av, bv, cg_get(e, e->vf32, d->acc[c])));
  }
}

/* y[n .. n+cols) of this row. */
static void columns(cg_emit *e, dots *d, LLVMValueRef b, LLVMValueRef y, LLVMValueRef n, LLVMValueRef K) {
  for (int c = 0; c < d->cols; c++) {
    LLVMValueRef nc = LLVMBuildNSWAdd(e->b, n, cg_i64(e, c), "");
    d->b[c] = cg_elem(e, IR_F32, b, LLVMBuildNSWMul(e->b, nc, K, ""));
    d->acc[c] = cg_var(e, e->vf32, cg_fconst(e->vf32, 0.0));
  }
  cg_span(e, K, dot_step, d);
  for (int c = 0; c < d->cols; c++)
    cg_store_f32(e, cg_reduce_add(e, cg_get(e, e->vf32, d->acc[c])), y, LLVMBuildNSWAdd(e->b, n, cg_i64(e, c), ""));
}

/* shaped: arg = {a, b, y} */
LLVMModuleRef cg_emit_batched_matmul(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  cg_emit em, *e = &em;
  LLVMValueRef arg[3], ad[IR_MAX_DIMS], bd[IR_MAX_DIMS];
  cg_emit_begin_shaped(e, tgt, name, 3, arg);
  const ir_shape *as = &k->in[0], *bs = &k->in[1];
  cg_extents(e, as, ad);
  cg_extents(e, bs, bd);
  int ra = as->rank, rb = bs->rank;
  LLVMValueRef M = ad[ra - 2], K = ad[ra - 1], N = bd[rb - 2];
  LLVMValueRef b_batch = rb == 2 ? cg_i64(e, 0) : LLVMBuildNSWMul(e->b, N, K, ""); /* b's elements per batch */
  cg_loop rows, main, tail;
  LLVMValueRef i = cg_loop_begin(e, &rows, cg_row0(e), cg_row1(e), 1);
  LLVMValueRef b = cg_elem(e, IR_F32, arg[1], LLVMBuildNSWMul(e->b, LLVMBuildSDiv(e->b, i, M, ""), b_batch, ""));
  LLVMValueRef y = cg_elem(e, IR_F32, arg[2], LLVMBuildNSWMul(e->b, i, N, ""));
  dots d = {.cols = COLS, .a = cg_elem(e, IR_F32, arg[0], LLVMBuildNSWMul(e->b, i, K, ""))};
  columns(e, &d, b, y, cg_loop_begin(e, &main, cg_i64(e, 0), N, COLS), K);
  cg_loop_end(e, &main);
  d.cols = 1;
  columns(e, &d, b, y, cg_loop_begin(e, &tail, cg_get(e, e->i64, main.var), N, 1), K);
  cg_loop_end(e, &tail);
  cg_loop_end(e, &rows);
  return cg_emit_finish(e);
}
