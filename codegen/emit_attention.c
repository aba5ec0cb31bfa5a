/* The attention kernel over the KV cache, flash-style: for each (t,h) pair of
 * a range, one pass over the keys j <= P+t keeps a running max m, a running
 * sum l of exp(s_j - m) and an accumulator of exp(s_j - m) * v_j, rescaled
 * when m grows; y = acc / l. No T x S buffer. D, H, KV and the scale are baked
 * in, P comes at run time. Invariant: a pair's result depends on nothing but
 * its own loop (fixed order, fixed lanes), so any split of the range gives the same bits. */
#include <math.h>

#include "cg_internal.h"

#define MAX_CHUNKS 64 /* D <= 64 vectors: kernel_cache refuses more */

typedef struct head {
  int nv;                        /* vectors per row of D, the last one `last` lanes */
  int last;
  LLVMValueRef q[MAX_CHUNKS];    /* this query row, loaded once */
  LLVMValueRef acc[MAX_CHUNKS];  /* var <vw x float>: sum of p_j v_j so far */
  LLVMValueRef m, l;             /* var float: running max and sum */
} head;

static int lanes_of(const head *hd, int c, int vw) { return c == hd->nv - 1 ? hd->last : vw; }

/* s = (q . k_row) * scale: two accumulators, then one reduction. */
static LLVMValueRef score(cg_emit *e, const head *hd, LLVMValueRef krow, float scale) {
  LLVMValueRef part[2] = {cg_fconst(e->vf32, 0.0), cg_fconst(e->vf32, 0.0)};
  for (int c = 0; c < hd->nv; c++) {
    LLVMValueRef kv = cg_load_vec(e, IR_F32, krow, cg_i64(e, (int64_t)c * e->vw), lanes_of(hd, c, e->vw));
    part[c % 2] = cg_fma(e, hd->q[c], kv, part[c % 2]);
  }
  LLVMValueRef dot = cg_reduce_add(e, LLVMBuildFAdd(e->b, part[0], part[1], ""));
  return LLVMBuildFMul(e->b, dot, cg_fconst(e->f32, scale), "");
}

/* One key: m' = max(m, s); (c, p) = exp(<m - m', s - m'>) in one vector exp;
 * l = l*c + p; acc = acc*c + p*v. */
static void step(cg_emit *e, head *hd, LLVMValueRef s, LLVMValueRef vrow) {
  LLVMValueRef m = cg_get(e, e->f32, hd->m);
  LLVMValueRef m2 = cg_intrinsic(e, "llvm.maxnum", e->f32, (LLVMValueRef[]){m, s}, 2);
  LLVMTypeRef v2 = LLVMVectorType(e->f32, 2);
  LLVMValueRef d = LLVMGetUndef(v2);
  d = LLVMBuildInsertElement(e->b, d, LLVMBuildFSub(e->b, m, m2, ""), LLVMConstInt(e->i32, 0, 0), "");
  d = LLVMBuildInsertElement(e->b, d, LLVMBuildFSub(e->b, s, m2, ""), LLVMConstInt(e->i32, 1, 0), "");
  LLVMValueRef ex = cg_exp(e, d);
  LLVMValueRef corr = LLVMBuildExtractElement(e->b, ex, LLVMConstInt(e->i32, 0, 0), "");
  LLVMValueRef p = LLVMBuildExtractElement(e->b, ex, LLVMConstInt(e->i32, 1, 0), "");
  cg_set(e, hd->m, m2);
  cg_set(e, hd->l, cg_intrinsic(e, "llvm.fma", e->f32, (LLVMValueRef[]){cg_get(e, e->f32, hd->l), corr, p}, 3));
  LLVMValueRef cv = cg_splat(e, corr), pv = cg_splat(e, p);
  for (int c = 0; c < hd->nv; c++) {
    LLVMValueRef vv = cg_load_vec(e, IR_F32, vrow, cg_i64(e, (int64_t)c * e->vw), lanes_of(hd, c, e->vw));
    LLVMValueRef scaled = LLVMBuildFMul(e->b, cg_get(e, e->vf32, hd->acc[c]), cv, "");
    cg_set(e, hd->acc[c], cg_fma(e, pv, vv, scaled));
  }
}

/* k(q, k, v, y, P, p0, p1) */
LLVMModuleRef cg_emit_attention(cg_jit *j, const cg_kernel_key *k, const char *name) {
  int64_t D = k->k, H = k->n, KV = k->kv, group = k->n / k->kv;
  cg_emit em, *e = &em;
  cg_emit_begin(e, j, name, 4, 3);
  head hd = {.nv = (int)((D + e->vw - 1) / e->vw)};
  hd.last = (int)(D - (int64_t)(hd.nv - 1) * e->vw);
  LLVMValueRef kc = cg_param(e, 1), vc = cg_param(e, 2), P = cg_param(e, 4);
  cg_loop pairs, keys;
  LLVMValueRef p = cg_loop_begin(e, &pairs, cg_param(e, 5), cg_param(e, 6), 1);
  LLVMValueRef t = LLVMBuildSDiv(e->b, p, cg_i64(e, H), "");
  LLVMValueRef g = LLVMBuildSDiv(e->b, LLVMBuildSRem(e->b, p, cg_i64(e, H), ""), cg_i64(e, group), "");
  LLVMValueRef at = LLVMBuildNSWMul(e->b, p, cg_i64(e, D), "");
  LLVMValueRef qrow = cg_elem(e, IR_F32, cg_param(e, 0), at), yrow = cg_elem(e, IR_F32, cg_param(e, 3), at);
  for (int c = 0; c < hd.nv; c++) {
    hd.q[c] = cg_load_vec(e, IR_F32, qrow, cg_i64(e, (int64_t)c * e->vw), lanes_of(&hd, c, e->vw));
    hd.acc[c] = cg_var(e, e->vf32, cg_fconst(e->vf32, 0.0));
  }
  hd.m = cg_var(e, e->f32, cg_fconst(e->f32, -INFINITY));
  hd.l = cg_var(e, e->f32, cg_fconst(e->f32, 0.0));
  LLVMValueRef nkeys = LLVMBuildNSWAdd(e->b, LLVMBuildNSWAdd(e->b, P, t, ""), cg_i64(e, 1), "");
  LLVMValueRef jj = cg_loop_begin(e, &keys, cg_i64(e, 0), nkeys, 1);
  LLVMValueRef row = LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, jj, cg_i64(e, KV), ""), g, ""),
                                     cg_i64(e, D), "");
  LLVMValueRef s = score(e, &hd, cg_elem(e, IR_F32, kc, row), k->scale);
  step(e, &hd, s, cg_elem(e, IR_F32, vc, row));
  cg_loop_end(e, &keys);
  LLVMValueRef inv = cg_splat(e, LLVMBuildFDiv(e->b, cg_fconst(e->f32, 1.0), cg_get(e, e->f32, hd.l), ""));
  for (int c = 0; c < hd.nv; c++)
    cg_store_vec(e, LLVMBuildFMul(e->b, cg_get(e, e->vf32, hd.acc[c]), inv, ""), yrow,
                 cg_i64(e, (int64_t)c * e->vw), lanes_of(&hd, c, e->vw));
  cg_loop_end(e, &pairs);
  return cg_emit_finish(e);
}
