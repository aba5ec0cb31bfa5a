/* The attention kernel over the KV cache, flash-style: for each (t,h) pair of
 * a range, one pass over the keys j <= P+t, vw keys at a time, keeps a running
 * max m, a running sum l of exp(s_j - m) and an accumulator of exp(s_j - m) *
 * v_j, rescaled once per block of keys; y = acc / l. A block's scores are one
 * vector, so its max, exp and sum are vector operations, not one per key. No T x S buffer. D, H, KV and the scale are baked
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
  LLVMValueRef k, v;             /* the caches */
  float scale;
} head;

static int lanes_of(const head *hd, int c, int vw) { return c == hd->nv - 1 ? hd->last : vw; }

/* q . k_row: two accumulators, then one reduction. */
static LLVMValueRef dot(cg_emit *e, const head *hd, LLVMValueRef krow) {
  LLVMValueRef part[2] = {cg_fconst(e->vf32, 0.0), cg_fconst(e->vf32, 0.0)};
  for (int c = 0; c < hd->nv; c++) {
    LLVMValueRef kv = cg_load_vec(e, IR_F32, krow, cg_i64(e, (int64_t)c * e->vw), lanes_of(hd, c, e->vw));
    part[c % 2] = cg_fma(e, hd->q[c], kv, part[c % 2]);
  }
  return cg_reduce_add(e, LLVMBuildFAdd(e->b, part[0], part[1], ""));
}

/* The keys jb .. jb+vw at once: their scores s (-inf past the last key),
 * m' = max(m, s), p = exp(s - m'), c = exp(m - m'); l = l*c + sum(p),
 * acc = acc*c + sum_i p_i v_i. Keys past the last read the last key's row,
 * so no load leaves the rows written so far. */
static void block(cg_emit *e, head *hd, const cg_kernel_key *k, LLVMValueRef jb, LLVMValueRef nkeys,
                  LLVMValueRef g) {
  int64_t KV = k->kv, D = k->k;
  LLVMValueRef s = LLVMGetUndef(e->vf32), row[64];
  LLVMValueRef last = LLVMBuildNSWSub(e->b, nkeys, cg_i64(e, 1), "");
  for (int i = 0; i < e->vw; i++) {
    LLVMValueRef j = LLVMBuildNSWAdd(e->b, jb, cg_i64(e, i), "");
    j = LLVMBuildSelect(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, j, nkeys, ""), j, last, "");
    row[i] = LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, j, cg_i64(e, KV), ""), g, ""),
                             cg_i64(e, D), "");
    s = LLVMBuildInsertElement(e->b, s, dot(e, hd, cg_elem(e, IR_F32, hd->k, row[i])), LLVMConstInt(e->i32, (unsigned)i, 0), "");
  }
  s = LLVMBuildFMul(e->b, s, cg_fconst(e->vf32, hd->scale), "");
  s = LLVMBuildSelect(e->b, cg_lanes_in(e, jb, cg_i64(e, 0), nkeys), s, cg_fconst(e->vf32, -INFINITY), "");
  LLVMValueRef m = cg_get(e, e->f32, hd->m);
  LLVMValueRef bm = cg_intrinsic(e, "llvm.vector.reduce.fmax", e->vf32, &s, 1);
  LLVMValueRef m2 = cg_intrinsic(e, "llvm.maxnum", e->f32, (LLVMValueRef[]){m, bm}, 2);
  LLVMValueRef p = cg_exp(e, LLVMBuildFSub(e->b, s, cg_splat(e, m2), ""));
  LLVMValueRef corr = cg_exp(e, LLVMBuildFSub(e->b, m, m2, ""));
  cg_set(e, hd->m, m2);
  cg_set(e, hd->l, cg_intrinsic(e, "llvm.fma", e->f32,
                                (LLVMValueRef[]){cg_get(e, e->f32, hd->l), corr, cg_reduce_add(e, p)}, 3));
  LLVMValueRef cv = cg_splat(e, corr), acc[MAX_CHUNKS];
  for (int c = 0; c < hd->nv; c++)
    acc[c] = LLVMBuildFMul(e->b, cg_get(e, e->vf32, hd->acc[c]), cv, "");
  for (int i = 0; i < e->vw; i++) {
    LLVMValueRef pi = cg_splat(e, LLVMBuildExtractElement(e->b, p, LLVMConstInt(e->i32, (unsigned)i, 0), ""));
    LLVMValueRef vrow = cg_elem(e, IR_F32, hd->v, row[i]);
    for (int c = 0; c < hd->nv; c++)
      acc[c] = cg_fma(e, pi, cg_load_vec(e, IR_F32, vrow, cg_i64(e, (int64_t)c * e->vw), lanes_of(hd, c, e->vw)),
                      acc[c]);
  }
  for (int c = 0; c < hd->nv; c++)
    cg_set(e, hd->acc[c], acc[c]);
}

/* k(q, k, v, y, P, p0, p1) */
LLVMModuleRef cg_emit_attention(cg_jit *j, const cg_kernel_key *k, const char *name) {
  int64_t D = k->k, H = k->n, group = k->n / k->kv;
  cg_emit em, *e = &em;
  cg_emit_begin(e, j, name, 4, 3);
  head hd = {.nv = (int)((D + e->vw - 1) / e->vw), .k = cg_param(e, 1), .v = cg_param(e, 2), .scale = k->scale};
  hd.last = (int)(D - (int64_t)(hd.nv - 1) * e->vw);
  LLVMValueRef P = cg_param(e, 4);
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
  LLVMValueRef end = LLVMBuildNSWAdd(e->b, nkeys, cg_i64(e, e->vw - 1), "");
  block(e, &hd, k, cg_loop_begin(e, &keys, cg_i64(e, 0), end, e->vw), nkeys, g);
  cg_loop_end(e, &keys);
  LLVMValueRef inv = cg_splat(e, LLVMBuildFDiv(e->b, cg_fconst(e->f32, 1.0), cg_get(e, e->f32, hd.l), ""));
  for (int c = 0; c < hd.nv; c++)
    cg_store_vec(e, LLVMBuildFMul(e->b, cg_get(e, e->vf32, hd.acc[c]), inv, ""), yrow,
                 cg_i64(e, (int64_t)c * e->vw), lanes_of(&hd, c, e->vw));
  cg_loop_end(e, &pairs);
  return cg_emit_finish(e);
}
