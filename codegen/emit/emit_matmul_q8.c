/* The q8 kernels: the activation quantizer (x rows -> int8 groups of 32 with
 * an f32 scale each, codegen.h) and the matmuls over q8 weights packed by
 * panels/panel_q8.c, or q4 weights packed by panels/panel_q4.c, with the f32
 * kernels' epilogues (+ r; silu(x.wg) * (x.wu)).
 *
 * Per group of 32 k, each output's int32 dot product of quantized x and w is
 * exact: with AVX512_VNNI, vpdpbusd (uint8 weights + 128 times int8 x, four
 * products per int32 lane) starting from the group's -128*sum(x) correction;
 * without it, vpmaddubsw on |x| and w with x's sign (each pair sum stays
 * within int16: 2*127*127 < 32767) then vpmaddwd by 1s. Then, per group,
 * acc = fma((float)dot, sw * sx, acc): one f32 chain over the groups in order,
 * so the bits depend neither on the tile, the range nor the instruction set.
 * q4 weights are the same int8 products once unpacked in registers: a byte's
 * low nibble (quads 0-3 of a group) or high nibble (quads 4-7), each the
 * weight + 8, so the VNNI correction is -8*sum(x), the stored -128*sum(x)
 * shifted right by 4 (exact).
 *
 * Tiles as in emit_matmul.c: an outer product of R rows by a panel of 2*vw
 * columns (two int32 vectors, one lane per column), rows looping over a panel
 * held in L2 for T > 1; several panels per row for decode. */

#include "emit.h"
#include "../panels/panels.h"

typedef struct q8 {
  const cg_kernel_key *k;
  int mats;                   /* weight matrices: 2 for swiglu, else 1 */
  bool vnni;                  /* vpdpbusd, else vpmaddubsw + vpmaddwd */
  bool q4;                    /* 4-bit weights (panel_q4.c), else 8-bit */
  int64_t nr, G, blk, row;    /* panel width, groups, bytes per group block and per x row */
  LLVMValueRef x, w[2], r, y; /* parameters (x: quantized rows) */
  LLVMValueRef n0, n1;        /* the column range */
  LLVMTypeRef i8, vi32, vi8;  /* <vw x i32>, <4vw x i8> */
} q8;

static LLVMValueRef byte_at(cg_emit *e, const q8 *g, LLVMValueRef ptr, LLVMValueRef off) {
  return LLVMBuildGEP2(e->b, g->i8, ptr, &off, 1, "");
}

static LLVMValueRef load(cg_emit *e, LLVMTypeRef t, LLVMValueRef at) {
  LLVMValueRef v = LLVMBuildLoad2(e->b, t, at, "");
  LLVMSetAlignment(v, 1);
  return v;
}

/* <n x t> with every lane v. */
static LLVMValueRef splat_of(cg_emit *e, LLVMValueRef v, unsigned n) {
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(v), n);
  LLVMValueRef one = LLVMBuildInsertElement(e->b, LLVMGetUndef(vt), v, LLVMConstInt(e->i32, 0, 0), "");
  return LLVMBuildShuffleVector(e->b, one, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(e->i32, n)), "");
}

/* acc + the int32 dot products of the weight quads wv (uint8, +128 or +8 for
 * q4) with the broadcast x quad xb (int8), lane by lane; without VNNI the
 * offset is taken off the weights here and acc carries no correction. */
static LLVMValueRef dot(cg_emit *e, const q8 *g, LLVMValueRef acc, LLVMValueRef wv, LLVMValueRef xb) {
  if (g->vnni)
    return cg_x86(e, "llvm.x86.avx512.vpdpbusd.512", (LLVMValueRef[]){acc, wv, xb}, 3);
  LLVMValueRef xs = LLVMBuildBitCast(e->b, xb, g->vi8, "");
  LLVMValueRef wb = LLVMBuildBitCast(e->b, wv, g->vi8, "");
  LLVMValueRef ws = g->q4 ? LLVMBuildSub(e->b, wb, cg_iconst(g->vi8, 8), "") : LLVMBuildXor(e->b, wb, cg_iconst(g->vi8, 0x80), "");
  LLVMValueRef xa = cg_intrinsic(e, "llvm.abs", g->vi8, (LLVMValueRef[]){xs, LLVMConstInt(e->i1, 0, 0)}, 2);
  LLVMValueRef signed_w, pairs, quads;
  LLVMTypeRef vi16 = LLVMVectorType(e->i16, (unsigned)(2 * e->vw));
  if (e->vw == 8) {
    signed_w = cg_x86(e, "llvm.x86.avx2.psign.b", (LLVMValueRef[]){ws, xs}, 2);
    pairs = cg_x86(e, "llvm.x86.avx2.pmadd.ub.sw", (LLVMValueRef[]){xa, signed_w}, 2);
    quads = cg_x86(e, "llvm.x86.avx2.pmadd.wd", (LLVMValueRef[]){pairs, cg_iconst(vi16, 1)}, 2);
  } else {
    LLVMValueRef neg = LLVMBuildICmp(e->b, LLVMIntSLT, xs, LLVMConstNull(g->vi8), "");
    signed_w = LLVMBuildSelect(e->b, neg, LLVMBuildNeg(e->b, ws, ""), ws, "");
    pairs = cg_x86(e, "llvm.x86.avx512.pmaddubs.w.512", (LLVMValueRef[]){xa, signed_w}, 2);
    quads = cg_x86(e, "llvm.x86.avx512.pmaddw.d.512", (LLVMValueRef[]){pairs, cg_iconst(vi16, 1)}, 2);
  }
  return LLVMBuildAdd(e->b, acc, quads, "");
}

/* Where a group block's scales start, in units of nr bytes. */
static int64_t scales_at(const q8 *g) { return g->q4 ? CG_Q8_GROUP / 2 : CG_Q8_GROUP; }

/* The unsigned weights of quad `quad` of the group block at wblk of panel,
 * columns h*vw .. h*vw+vw-1: four bytes a column, one int32 lane each. */
static LLVMValueRef weights(cg_emit *e, const q8 *g, LLVMValueRef panel, LLVMValueRef wblk, int quad, int h) {
  int pair = g->q4 ? quad % 4 : quad;
  LLVMValueRef off = LLVMBuildNSWAdd(e->b, wblk, cg_i64(e, (pair * g->nr + h * e->vw) * 4), "");
  LLVMValueRef wv = load(e, g->vi32, byte_at(e, g, panel, off));
  if (!g->q4)
    return wv;
  if (quad >= 4)
    wv = LLVMBuildLShr(e->b, wv, cg_iconst(g->vi32, 4), "");
  return LLVMBuildAnd(e->b, wv, cg_iconst(g->vi32, 0x0f0f0f0f), "");
}

/* Rows m .. m+rows by panels p .. p+panels: per group, the exact int32 dots
 * then one fma per output; the epilogue stores the columns of [n0, n1). */
static void tile(cg_emit *e, const q8 *g, LLVMValueRef m, LLVMValueRef p, int rows, int panels) {
  enum { MAX = 16 };
  LLVMValueRef acc[MAX], panel[4][2], xrow[8];
  int n_acc = rows * panels * g->mats * 2;
  for (int i = 0; i < n_acc; i++)
    acc[i] = cg_var(e, e->vf32, cg_fconst(e->vf32, 0.0));
  for (int q = 0; q < panels; q++)
    for (int t = 0; t < g->mats; t++)
      panel[q][t] = byte_at(e, g, g->w[t], LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, p, cg_i64(e, q), ""),
                                                           cg_i64(e, g->G * g->blk), ""));
  for (int i = 0; i < rows; i++)
    xrow[i] = byte_at(e, g, g->x, LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, m, cg_i64(e, i), ""), cg_i64(e, g->row), ""));

  cg_loop gl;
  LLVMValueRef gi = cg_loop_begin(e, &gl, cg_i64(e, 0), cg_i64(e, g->G), 1);
  LLVMValueRef wblk = LLVMBuildNSWMul(e->b, gi, cg_i64(e, g->blk), ""), idot[MAX];
  LLVMValueRef xq = LLVMBuildNSWMul(e->b, gi, cg_i64(e, CG_Q8_GROUP), "");
  LLVMValueRef four = LLVMBuildNSWMul(e->b, gi, cg_i64(e, 4), "");
  for (int i = 0; i < rows; i++) {
    LLVMValueRef corr = g->vnni ? load(e, e->i32, byte_at(e, g, xrow[i], LLVMBuildNSWAdd(e->b, four, cg_i64(e, g->G * (CG_Q8_GROUP + 4)), "")))
                                       : LLVMConstInt(e->i32, 0, 0);
    if (g->vnni && g->q4)
      corr = LLVMBuildAShr(e->b, corr, LLVMConstInt(e->i32, 4, 0), "");
    for (int a = 0; a < panels * g->mats * 2; a++)
      idot[i * panels * g->mats * 2 + a] = splat_of(e, corr, (unsigned)e->vw);
  }
  for (int quad = 0; quad < CG_Q8_GROUP / 4; quad++) {
    LLVMValueRef xb[8];
    for (int i = 0; i < rows; i++)
      xb[i] = splat_of(e, load(e, e->i32, byte_at(e, g, xrow[i], LLVMBuildNSWAdd(e->b, xq, cg_i64(e, 4 * quad), ""))),
                       (unsigned)e->vw);
    for (int q = 0; q < panels; q++)
      for (int t = 0; t < g->mats; t++)
        for (int h = 0; h < 2; h++) {
          LLVMValueRef wv = weights(e, g, panel[q][t], wblk, quad, h);
          for (int i = 0; i < rows; i++) {
            LLVMValueRef *a = &idot[((i * panels + q) * g->mats + t) * 2 + h];
            *a = dot(e, g, *a, wv, xb[i]);
          }
        }
  }
  LLVMTypeRef vhalf = LLVMVectorType(LLVMHalfTypeInContext(e->ctx), (unsigned)e->vw);
  for (int q = 0; q < panels; q++)
    for (int t = 0; t < g->mats; t++)
      for (int h = 0; h < 2; h++) {
        LLVMValueRef off = LLVMBuildNSWAdd(e->b, wblk, cg_i64(e, scales_at(g) * g->nr + 2 * h * e->vw), "");
        LLVMValueRef sw = LLVMBuildFPExt(e->b, load(e, vhalf, byte_at(e, g, panel[q][t], off)), e->vf32, "");
        for (int i = 0; i < rows; i++) {
          LLVMValueRef sx = load(e, e->f32, byte_at(e, g, xrow[i], LLVMBuildNSWAdd(e->b, four, cg_i64(e, g->G * CG_Q8_GROUP), "")));
          int at = ((i * panels + q) * g->mats + t) * 2 + h;
          LLVMValueRef d = LLVMBuildSIToFP(e->b, idot[at], e->vf32, "");
          cg_set(e, acc[at], cg_fma(e, d, LLVMBuildFMul(e->b, sw, cg_splat(e, sx), ""), cg_get(e, e->vf32, acc[at])));
        }
      }
  cg_loop_end(e, &gl);

  for (int i = 0; i < rows; i++) {
    LLVMValueRef row = LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, m, cg_i64(e, i), ""), cg_i64(e, g->k->n), "");
    for (int q = 0; q < panels; q++)
      for (int h = 0; h < 2; h++) {
        LLVMValueRef col = LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, p, cg_i64(e, q), ""), cg_i64(e, g->nr), ""),
                                           cg_i64(e, h * e->vw), "");
        LLVMValueRef mask = cg_lanes_in(e, col, g->n0, g->n1), at = LLVMBuildNSWAdd(e->b, row, col, "");
        LLVMValueRef *a = &acc[((i * panels + q) * g->mats) * 2 + h];
        LLVMValueRef v = g->mats == 2 ? cg_silu_mul(e, cg_get(e, e->vf32, a[0]), cg_get(e, e->vf32, a[2]))
                                      : cg_get(e, e->vf32, a[0]);
        if (g->r)
          v = LLVMBuildFAdd(e->b, cg_load_masked(e, g->r, at, mask, 0.0), v, "");
        cg_store_masked(e, v, g->y, at, mask);
      }
  }
}

static void q8_tile(cg_emit *e, const void *g, LLVMValueRef m, LLVMValueRef p, int rows, int panels, bool gemv) {
  (void)gemv; /* one f32 chain over the groups either way */
  tile(e, g, m, p, rows, panels);
}

/* k(xq, w, [w2 | r,] y, m0, m1, n0, n1) */
LLVMModuleRef cg_emit_matmul_q8(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  int np = k->op == IR_MATMUL ? 3 : 4;
  cg_emit em, *e = &em;
  cg_emit_begin(e, tgt, name, np, 4);
  q8 g = {.k = k, .mats = k->op == IR_MATMUL_SWIGLU ? 2 : 1, .nr = 2 * e->vw, .G = (k->k + CG_Q8_GROUP - 1) / CG_Q8_GROUP,
          .x = cg_param(e, 0), .w = {cg_param(e, 1), cg_param(e, 2)}, .r = k->op == IR_MATMUL_ADD ? cg_param(e, 2) : NULL,
          .y = cg_param(e, np - 1), .n0 = cg_param(e, np + 2), .n1 = cg_param(e, np + 3),
          .vnni = tgt->vnni, .q4 = k->wtype == IR_Q4, .i8 = LLVMInt8TypeInContext(e->ctx),
          .vi32 = LLVMVectorType(e->i32, (unsigned)e->vw)};
  g.vi8 = LLVMVectorType(g.i8, (unsigned)(4 * e->vw));
  g.blk = g.q4 ? cg_q4_block_bytes(g.nr) : cg_q8_block_bytes(g.nr);
  g.row = (int64_t)cg_q8_row_bytes(k->k);
  LLVMValueRef m0 = cg_param(e, np), m1 = cg_param(e, np + 1);
  /* registers: per row, panel and matrix, 2 int32 and 2 f32 accumulators */
  int gemm_rows = (tgt->vnni ? 4 : e->vw == 16 ? 3 : 2) / g.mats, gemv_panels = (e->vw == 16 ? 4 : 2) / g.mats;
  gemm_rows = gemm_rows ? gemm_rows : 1;
  LLVMValueRef p0 = LLVMBuildSDiv(e->b, g.n0, cg_i64(e, g.nr), "");
  LLVMValueRef p1 = LLVMBuildSDiv(e->b, LLVMBuildNSWAdd(e->b, g.n1, cg_i64(e, g.nr - 1), ""), cg_i64(e, g.nr), "");

  cg_matmul_loops(e, q8_tile, &g, m0, m1, p0, p1, gemv_panels, gemm_rows);
  return cg_emit_finish(e);
}

/* One group of `lanes` values (32, or K's tail) of row x into xq; see codegen.h. */
static void quantize_group(cg_emit *e, LLVMValueRef x, LLVMValueRef xq, LLVMValueRef gi, int64_t G, int lanes) {
  LLVMTypeRef v32 = LLVMVectorType(e->f32, CG_Q8_GROUP), i32x = LLVMVectorType(e->i32, CG_Q8_GROUP);
  LLVMTypeRef i8 = LLVMInt8TypeInContext(e->ctx);
  LLVMValueRef base = LLVMBuildNSWMul(e->b, gi, cg_i64(e, CG_Q8_GROUP), "");
  LLVMValueRef at = cg_elem(e, IR_F32, x, base), v;
  if (lanes == CG_Q8_GROUP) {
    v = load(e, v32, at);
  } else {
    LLVMValueRef bits[CG_Q8_GROUP];
    for (int i = 0; i < CG_Q8_GROUP; i++)
      bits[i] = LLVMConstInt(e->i1, i < lanes, 0);
    LLVMValueRef args[] = {at, LLVMConstInt(e->i32, 4, 0), LLVMConstVector(bits, CG_Q8_GROUP), LLVMConstNull(v32)};
    LLVMTypeRef over[] = {v32, e->ptr};
    unsigned id = LLVMLookupIntrinsicID("llvm.masked.load", 16);
    v = LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->ctx, id, over, 2), LLVMGetIntrinsicDeclaration(e->mod, id, over, 2),
                       args, 4, "");
  }
  LLVMValueRef a = cg_reduce_max(e, cg_intrinsic(e, "llvm.fabs", v32, &v, 1));
  LLVMValueRef s = LLVMBuildFDiv(e->b, a, cg_fconst(e->f32, 127.0), "");
  LLVMValueRef inv = LLVMBuildSelect(e->b, LLVMBuildFCmp(e->b, LLVMRealOGT, a, cg_fconst(e->f32, 0.0), ""),
                                     LLVMBuildFDiv(e->b, cg_fconst(e->f32, 127.0), a, ""), cg_fconst(e->f32, 0.0), "");
  LLVMValueRef one = LLVMBuildInsertElement(e->b, LLVMGetUndef(v32), inv, LLVMConstInt(e->i32, 0, 0), "");
  LLVMValueRef invs = LLVMBuildShuffleVector(e->b, one, LLVMGetUndef(v32), LLVMConstNull(i32x), "");
  LLVMValueRef scaled = LLVMBuildFMul(e->b, v, invs, "");
  LLVMValueRef q = LLVMBuildFPToSI(e->b, cg_intrinsic(e, "llvm.rint", v32, &scaled, 1), i32x, "");
  LLVMValueRef qb = LLVMBuildTrunc(e->b, q, LLVMVectorType(i8, CG_Q8_GROUP), "");
  LLVMSetAlignment(LLVMBuildStore(e->b, qb, LLVMBuildGEP2(e->b, i8, xq, &base, 1, "")), 1);
  LLVMValueRef sum = cg_intrinsic(e, "llvm.vector.reduce.add", i32x, &q, 1);
  LLVMValueRef four = LLVMBuildNSWMul(e->b, gi, cg_i64(e, 4), "");
  LLVMValueRef s_at = LLVMBuildNSWAdd(e->b, four, cg_i64(e, G * CG_Q8_GROUP), "");
  LLVMValueRef c_at = LLVMBuildNSWAdd(e->b, s_at, cg_i64(e, G * 4), "");
  LLVMSetAlignment(LLVMBuildStore(e->b, s, LLVMBuildGEP2(e->b, i8, xq, &s_at, 1, "")), 1);
  LLVMValueRef corr = LLVMBuildMul(e->b, sum, LLVMConstInt(e->i32, (unsigned long long)-128, 1), "");
  LLVMSetAlignment(LLVMBuildStore(e->b, corr, LLVMBuildGEP2(e->b, i8, xq, &c_at, 1, "")), 1);
}

/* k(x, xq, row0, row1) */
LLVMModuleRef cg_emit_q8_quantize(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  int64_t K = k->k, G = (K + CG_Q8_GROUP - 1) / CG_Q8_GROUP, full = K / CG_Q8_GROUP;
  cg_emit em, *e = &em;
  cg_emit_begin(e, tgt, name, 2, 2);
  LLVMTypeRef i8 = LLVMInt8TypeInContext(e->ctx);
  cg_loop rows, groups;
  LLVMValueRef r = cg_loop_begin(e, &rows, cg_param(e, 2), cg_param(e, 3), 1);
  LLVMValueRef x = cg_elem(e, IR_F32, cg_param(e, 0), LLVMBuildNSWMul(e->b, r, cg_i64(e, K), ""));
  LLVMValueRef off = LLVMBuildNSWMul(e->b, r, cg_i64(e, (int64_t)cg_q8_row_bytes(K)), "");
  LLVMValueRef xq = LLVMBuildGEP2(e->b, i8, cg_param(e, 1), &off, 1, "");
  quantize_group(e, x, xq, cg_loop_begin(e, &groups, cg_i64(e, 0), cg_i64(e, full), 1), G, CG_Q8_GROUP);
  cg_loop_end(e, &groups);
  if (full < G)
    quantize_group(e, x, xq, cg_i64(e, full), G, (int)(K - full * CG_Q8_GROUP));
  cg_loop_end(e, &rows);
  return cg_emit_finish(e);
}
