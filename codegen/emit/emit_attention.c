/* The attention kernel over the KV cache, flash-style: each (h,t) pair makes
 * one pass over its keys j <= P+t, vw keys at a time, keeping a running max
 * m, a running sum l of exp(s_j - m) and an accumulator of exp(s_j - m) * v_j,
 * rescaled once per block of keys; y = acc / l. No T x S buffer.
 *
 * Pairs are numbered head-major, p = h*T + t, so a static split of the pairs
 * gives each thread whole heads (the same causal work each) whose keys stay
 * in cache from one query to the next. Up to `rows` consecutive pairs that
 * read the same KV head make a tile: each key row is loaded once for all of
 * them. A block's vw scores come out of one transpose-and-add tree, not vw
 * horizontal sums.
 *
 * The caches are laid out position-major, [ctx][KV][D] as the IR has them, or
 * head-major, [KV][ctx][D], which the JIT chooses when only attention reads
 * them: a head's keys are then one contiguous stream. They hold f32, or bf16
 * (--kv-cache bf16) widened in registers.
 *
 * Invariant: a pair's result depends on nothing but its own q row, keys and
 * values, computed in one fixed order with fixed lanes whether it is in a tile
 * or alone, so any split of the pairs gives the same bits. */
#include <math.h>

#include "emit.h"

#define MAX_CHUNKS 64 /* D <= 64 vectors: kernel_cache refuses more */
#define MAX_ROWS 4

typedef struct attn {
  const cg_kernel_key *key;
  LLVMValueRef q, k, v, y, T, P, ctx;
  ir_dtype kv_type; /* the caches': f32, or bf16 widened as it is loaded */
  int nv, last; /* vectors per row of D, the last one `last` lanes */
  int order[64]; /* lane i of the score tree's result sums input order[i] */
} attn;

typedef struct row {
  LLVMValueRef qrow, yrow, nkeys; /* nkeys = P + t + 1 */
  LLVMValueRef acc[MAX_CHUNKS];   /* var <vw x float>: sum of p_j v_j so far */
  LLVMValueRef m, l;              /* var float: running max and sum */
} row;

static int lanes_of(const attn *a, int c, int vw) { return c == a->nv - 1 ? a->last : vw; }

/* The tree that turns vw vectors into one whose lane i sums vector i: each
 * level adds the low and high halves of every group of two vectors at once,
 * halving the lanes per vector and doubling the vectors per register. Lanes
 * end in an interleaved order; tree_order works it out at emit time so the
 * inputs can be placed where each lands on its own lane. */
static void halve(int vw, int w, int *mask_lo, int *mask_hi) {
  for (int g = 0, n = 0; g < vw / w; g++)
    for (int src = 0; src < 2; src++)
      for (int i = 0; i < w / 2; i++, n++) {
        mask_lo[n] = src * vw + g * w + i;
        mask_hi[n] = src * vw + g * w + w / 2 + i;
      }
}

static void tree_order(int vw, int *order) {
  int label[64][64], n = vw; /* label[v][lane]: the input vector lane holds */
  for (int v = 0; v < vw; v++)
    for (int i = 0; i < vw; i++)
      label[v][i] = v;
  for (int w = vw; w > 1; w /= 2, n /= 2) {
    int lo[64], hi[64];
    halve(vw, w, lo, hi);
    for (int v = 0; v < n / 2; v++) {
      int out[64];
      for (int i = 0; i < vw; i++)
        out[i] = lo[i] < vw ? label[2 * v][lo[i]] : label[2 * v + 1][lo[i] - vw];
      for (int i = 0; i < vw; i++)
        label[v][i] = out[i];
    }
  }
  for (int i = 0; i < vw; i++)
    order[i] = label[0][i];
}

static LLVMValueRef shuffle(cg_emit *e, LLVMValueRef a, LLVMValueRef b, const int *mask) {
  LLVMValueRef m[64];
  for (int i = 0; i < e->vw; i++)
    m[i] = LLVMConstInt(e->i32, (unsigned)mask[i], 0);
  return LLVMBuildShuffleVector(e->b, a, b, LLVMConstVector(m, (unsigned)e->vw), "");
}

static LLVMValueRef tree_sum(cg_emit *e, LLVMValueRef *v) {
  int n = e->vw;
  for (int w = e->vw; w > 1; w /= 2, n /= 2) {
    int lo[64], hi[64];
    halve(e->vw, w, lo, hi);
    for (int i = 0; i < n / 2; i++)
      v[i] = LLVMBuildFAdd(e->b, shuffle(e, v[2 * i], v[2 * i + 1], lo), shuffle(e, v[2 * i], v[2 * i + 1], hi), "");
  }
  return v[0];
}

/* Pair p's row: its t and h, q and y rows, and fresh running state. */
static void row_begin(cg_emit *e, const attn *a, LLVMValueRef p, row *r) {
  int64_t H = a->key->n, D = a->key->k;
  LLVMValueRef h = LLVMBuildSDiv(e->b, p, a->T, ""), t = LLVMBuildSRem(e->b, p, a->T, "");
  LLVMValueRef at = LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, t, cg_i64(e, H), ""), h, ""),
                                    cg_i64(e, D), "");
  r->qrow = cg_elem(e, IR_F32, a->q, at);
  r->yrow = cg_elem(e, IR_F32, a->y, at);
  r->nkeys = LLVMBuildNSWAdd(e->b, LLVMBuildNSWAdd(e->b, a->P, t, ""), cg_i64(e, 1), "");
  for (int c = 0; c < a->nv; c++)
    r->acc[c] = cg_var(e, e->vf32, cg_fconst(e->vf32, 0.0));
  r->m = cg_var(e, e->f32, cg_fconst(e->f32, -INFINITY));
  r->l = cg_var(e, e->f32, cg_fconst(e->f32, 0.0));
}

static void row_end(cg_emit *e, const attn *a, const row *r) {
  LLVMValueRef inv = cg_splat(e, LLVMBuildFDiv(e->b, cg_fconst(e->f32, 1.0), cg_get(e, e->f32, r->l), ""));
  for (int c = 0; c < a->nv; c++)
    cg_store_vec(e, LLVMBuildFMul(e->b, cg_get(e, e->vf32, r->acc[c]), inv, ""), r->yrow,
                 cg_i64(e, (int64_t)c * e->vw), lanes_of(a, c, e->vw));
}

/* Row r's step over the keys jb.. with scores s: m' = max(m, s),
 * p = exp(s - m'), c = exp(m - m'); l = l*c + sum(p), acc = acc*c + sum_i
 * p_i v_i. A block wholly past its keys (a longer row of its tile reached
 * it) leaves the state as it was. */
static void row_update(cg_emit *e, const attn *a, row *r, LLVMValueRef jb, LLVMValueRef s, LLVMValueRef *vrow) {
  s = LLVMBuildSelect(e->b, cg_lanes_in(e, jb, cg_i64(e, 0), r->nkeys), s, cg_fconst(e->vf32, -INFINITY), "");
  LLVMValueRef active = LLVMBuildICmp(e->b, LLVMIntSLT, jb, r->nkeys, "");
  LLVMValueRef m = cg_get(e, e->f32, r->m), l = cg_get(e, e->f32, r->l);
  LLVMValueRef bm = cg_reduce_max(e, s);
  LLVMValueRef m2 = cg_intrinsic(e, "llvm.maxnum", e->f32, (LLVMValueRef[]){m, bm}, 2);
  LLVMValueRef p = cg_exp(e, LLVMBuildFSub(e->b, s, cg_splat(e, m2), ""));
  LLVMValueRef corr = cg_exp(e, LLVMBuildFSub(e->b, m, m2, ""));
  LLVMValueRef l2 = cg_intrinsic(e, "llvm.fma", e->f32, (LLVMValueRef[]){l, corr, cg_reduce_add(e, p)}, 3);
  cg_set(e, r->m, LLVMBuildSelect(e->b, active, m2, m, ""));
  cg_set(e, r->l, LLVMBuildSelect(e->b, active, l2, l, ""));
  LLVMValueRef cv = cg_splat(e, corr), acc[MAX_CHUNKS], old[MAX_CHUNKS];
  for (int c = 0; c < a->nv; c++)
    acc[c] = LLVMBuildFMul(e->b, old[c] = cg_get(e, e->vf32, r->acc[c]), cv, "");
  for (int i = 0; i < e->vw; i++) {
    int lane[64];
    for (int x = 0; x < e->vw; x++)
      lane[x] = i;
    LLVMValueRef pi = shuffle(e, p, LLVMGetUndef(e->vf32), lane);
    for (int c = 0; c < a->nv; c++)
      acc[c] = cg_fma(e, pi, cg_load_vec(e, a->kv_type, vrow[i], cg_i64(e, (int64_t)c * e->vw), lanes_of(a, c, e->vw)),
                      acc[c]);
  }
  for (int c = 0; c < a->nv; c++)
    cg_set(e, r->acc[c], LLVMBuildSelect(e->b, active, acc[c], old[c], ""));
}

/* Pairs p .. p+n, which share KV head g: one pass over the keys of the
 * longest, each key and value row loaded once for all of them. */
static void tile(cg_emit *e, const attn *a, LLVMValueRef p, LLVMValueRef g, int n) {
  int64_t KV = a->key->kv, D = a->key->k;
  row r[MAX_ROWS];
  LLVMValueRef nkeys = NULL;
  for (int i = 0; i < n; i++) {
    row_begin(e, a, LLVMBuildNSWAdd(e->b, p, cg_i64(e, i), ""), &r[i]);
    nkeys = i ? cg_intrinsic(e, "llvm.smax", e->i64, (LLVMValueRef[]){nkeys, r[i].nkeys}, 2) : r[i].nkeys;
  }
  bool head_major = a->key->kv_head_major;
  LLVMValueRef row_stride = cg_i64(e, head_major ? D : KV * D);
  LLVMValueRef base = LLVMBuildNSWMul(e->b, g, head_major ? LLVMBuildNSWMul(e->b, a->ctx, cg_i64(e, D), "")
                                                          : cg_i64(e, D), "");
  cg_loop keys;
  LLVMValueRef end = LLVMBuildNSWAdd(e->b, nkeys, cg_i64(e, e->vw - 1), "");
  LLVMValueRef jb = cg_loop_begin(e, &keys, cg_i64(e, 0), end, e->vw);
  LLVMValueRef last = LLVMBuildNSWSub(e->b, nkeys, cg_i64(e, 1), ""), at[64], krow[64], vrow[64];
  for (int i = 0; i < e->vw; i++) { /* keys past the last read the last key's row: no load leaves the cache */
    LLVMValueRef j = LLVMBuildNSWAdd(e->b, jb, cg_i64(e, i), "");
    j = LLVMBuildSelect(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, j, nkeys, ""), j, last, "");
    at[i] = LLVMBuildNSWAdd(e->b, base, LLVMBuildNSWMul(e->b, j, row_stride, ""), "");
    krow[i] = cg_elem(e, a->kv_type, a->k, at[i]);
    vrow[i] = cg_elem(e, a->kv_type, a->v, at[i]);
  }
  LLVMValueRef part[MAX_ROWS][64];
  for (int i = 0; i < e->vw; i++) {
    LLVMValueRef kv[MAX_CHUNKS];
    for (int c = 0; c < a->nv; c++)
      kv[c] = cg_load_vec(e, a->kv_type, krow[i], cg_i64(e, (int64_t)c * e->vw), lanes_of(a, c, e->vw));
    for (int x = 0; x < n; x++) { /* key i's products, summed along D, go where the tree puts them on lane i */
      LLVMValueRef sum = cg_fconst(e->vf32, 0.0);
      for (int c = 0; c < a->nv; c++)
        sum = cg_fma(e, cg_load_vec(e, IR_F32, r[x].qrow, cg_i64(e, (int64_t)c * e->vw), lanes_of(a, c, e->vw)),
                     kv[c], sum);
      part[x][a->order[i]] = sum;
    }
  }
  for (int x = 0; x < n; x++) {
    LLVMValueRef s = LLVMBuildFMul(e->b, tree_sum(e, part[x]), cg_fconst(e->vf32, a->key->scale), "");
    row_update(e, a, &r[x], jb, s, vrow);
  }
  cg_loop_end(e, &keys);
  for (int i = 0; i < n; i++)
    row_end(e, a, &r[i]);
}

/* The tile height: every row's accumulators stay in registers. */
static int tile_rows(const attn *a) {
  int rows = 16 / a->nv;
  return rows < 1 ? 1 : rows > MAX_ROWS ? MAX_ROWS : rows;
}

/* k(q, k, v, y, T, P, ctx, p0, p1) */
LLVMModuleRef cg_emit_attention(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  cg_emit em, *e = &em;
  cg_emit_begin(e, tgt, name, 4, 5);
  attn a = {.key = k, .q = cg_param(e, 0), .k = cg_param(e, 1), .v = cg_param(e, 2), .y = cg_param(e, 3),
            .T = cg_param(e, 4), .P = cg_param(e, 5), .ctx = cg_param(e, 6),
            .kv_type = k->kv_bf16 ? IR_BF16 : IR_F32};
  a.nv = (int)((k->k + e->vw - 1) / e->vw);
  a.last = (int)(k->k - (int64_t)(a.nv - 1) * e->vw);
  tree_order(e->vw, a.order);
  int rows = tile_rows(&a);
  LLVMValueRef p1 = cg_param(e, 8), per_kv = LLVMBuildNSWMul(e->b, a.T, cg_i64(e, k->n / k->kv), "");
  LLVMValueRef var = cg_var(e, e->i64, cg_param(e, 7));
  LLVMBasicBlockRef cond = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "pair");
  LLVMBasicBlockRef pick = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "pick");
  LLVMBasicBlockRef many = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "tile");
  LLVMBasicBlockRef one = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "single");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "done");
  LLVMBuildBr(e->b, cond);
  LLVMPositionBuilderAtEnd(e->b, cond);
  LLVMValueRef p = cg_get(e, e->i64, var);
  LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, p, p1, ""), pick, done);
  LLVMPositionBuilderAtEnd(e->b, pick);
  LLVMValueRef g = LLVMBuildSDiv(e->b, p, per_kv, "");
  LLVMValueRef tail = LLVMBuildNSWAdd(e->b, p, cg_i64(e, rows - 1), "");
  LLVMValueRef fits = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, tail, p1, ""),
                                   LLVMBuildICmp(e->b, LLVMIntEQ, LLVMBuildSDiv(e->b, tail, per_kv, ""), g, ""), "");
  LLVMBuildCondBr(e->b, rows > 1 ? fits : LLVMConstInt(e->i1, 0, 0), many, one);
  LLVMPositionBuilderAtEnd(e->b, many);
  if (rows > 1)
    tile(e, &a, p, g, rows);
  cg_set(e, var, LLVMBuildNSWAdd(e->b, p, cg_i64(e, rows), ""));
  LLVMBuildBr(e->b, cond);
  LLVMPositionBuilderAtEnd(e->b, one);
  tile(e, &a, p, g, 1);
  cg_set(e, var, LLVMBuildNSWAdd(e->b, p, cg_i64(e, 1), ""));
  LLVMBuildBr(e->b, cond);
  LLVMPositionBuilderAtEnd(e->b, done);
  return cg_emit_finish(e);
}
