/* The kernel table (kernels.h): one row per kernel op, with the checks and
 * the symbol names its rows point at. Invariant: a check looks only at the
 * fields its row keeps, and a symbol names every field it keeps that is not
 * numbered instead (elementwise and shaped kernels are numbered, their keys
 * being long). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels.h"

static bool is_matmul(int op) { return op == IR_MATMUL || op == IR_MATMUL_ADD || op == IR_MATMUL_SWIGLU; }

static const char *name_of(const cg_kernel_key *key) {
  const cg_kernel_op *r = cg_kernel_op_of(key);
  return r ? r->name : (unsigned)key->op < IR_OP_COUNT ? ir_op_table[key->op].name : "(unknown)";
}

/* ---- checks ---- */

/* f32 or bf16; matmuls also take IR_I8 and IR_Q4, q8 and q4 weights. */
static int check_wtype(const cg_kernel_key *key, const char *what, oc_error *e) {
  if (key->wtype != IR_F32 && key->wtype != IR_BF16 &&
      !(is_matmul(key->op) && (key->wtype == IR_I8 || key->wtype == IR_Q4)))
    return oc_fail(e, "%s kernel: %s %s, expected f32 or bf16%s", name_of(key), what,
                   (unsigned)key->wtype < IR_DTYPE_COUNT ? ir_dtype_name(key->wtype) : "an unknown dtype",
                   is_matmul(key->op) ? " (or i8, q4: quantized)" : "");
  return 0;
}

static int check_matmul(const cg_kernel_key *key, oc_error *e) {
  if (check_wtype(key, "weights are", e))
    return -1;
  if (key->k < 1 || key->n < 1)
    return oc_fail(e, "%s kernel: K=%lld and N=%lld must both be positive", name_of(key), (long long)key->k,
                   (long long)key->n);
  return 0;
}

static int check_rmsnorm(const cg_kernel_key *key, oc_error *e) {
  if (key->k < 1)
    return oc_fail(e, "%s kernel: row width D=%lld must be positive", name_of(key), (long long)key->k);
  if (!(key->eps >= 0))
    return oc_fail(e, "%s kernel: eps %g must be a non-negative number", name_of(key), (double)key->eps);
  return 0;
}

static int check_nothing(const cg_kernel_key *key, oc_error *e) {
  (void)key, (void)e;
  return 0;
}

/* Heads H (n) and head dim D (k) for rope and attention: D even for rope,
 * KV dividing H for attention. */
static int check_heads(const cg_kernel_key *key, oc_error *e) {
  const char *op = name_of(key);
  if (key->k < 1 || key->n < 1)
    return oc_fail(e, "%s kernel: head dim D=%lld and heads H=%lld must both be positive", op,
                   (long long)key->k, (long long)key->n);
  if (key->op == IR_ROPE && key->k % 2)
    return oc_fail(e, "rope kernel: head dim D=%lld must be even", (long long)key->k);
  if (key->op == IR_ATTENTION && (key->kv < 1 || key->n % key->kv))
    return oc_fail(e, "attention kernel: KV=%lld heads must divide H=%lld", (long long)key->kv,
                   (long long)key->n);
  if (key->op == IR_ATTENTION && key->k > 512)
    return oc_fail(e, "attention kernel: head dim D=%lld is above the 512 it supports", (long long)key->k);
  if (key->op == IR_ATTENTION && !isfinite(key->scale))
    return oc_fail(e, "attention kernel: scale %g must be a finite number", (double)key->scale);
  return 0;
}

static int check_gather(const cg_kernel_key *key, oc_error *e) {
  if (check_wtype(key, "table is", e))
    return -1;
  if (key->k < 1)
    return oc_fail(e, "gather kernel: row width D=%lld must be positive", (long long)key->k);
  return 0;
}

static int check_q8(const cg_kernel_key *key, oc_error *e) {
  if (key->k < 1)
    return oc_fail(e, "q8_quantize kernel: row width K=%lld must be positive", (long long)key->k);
  return 0;
}

static int check_eltwise(const cg_kernel_key *key, oc_error *e) { return cg_eltwise_plan_of(key, NULL, e); }

/* A shaped key's shapes and attributes, checked by the IR's own type rules: a
 * graph of n_in f32 inputs of the key's shapes and the op must infer `out`. */
static int check_shaped(const cg_kernel_key *key, oc_error *e) {
  const char *op = name_of(key);
  int arity = ir_op_table[key->op].arity;
  if (key->n_in != arity)
    return oc_fail(e, "%s kernel: %d input shapes, expected %d", op, key->n_in, arity);
  for (int i = 0; i <= arity; i++) {
    const ir_shape *s = i < arity ? &key->in[i] : &key->out;
    if (s->rank < 1 || s->rank > IR_MAX_DIMS)
      return oc_fail(e, "%s kernel: rank %d, expected 1 to %d", op, s->rank, IR_MAX_DIMS);
  }
  ir_node node = {.op = key->op, .in = {0, 1}, .axis = key->axis, .start = key->start, .times = key->times};
  memcpy(node.perm, key->perm, sizeof node.perm);
  if (key->op == IR_SLICE && key->axis >= 0 && key->axis < key->out.rank)
    node.end = key->start + key->out.dim[key->axis].c;
  ir_graph *g = ir_graph_new();
  if (!g)
    return oc_fail(e, "out of memory checking a %s kernel", op);
  for (int i = 0; i < arity; i++)
    ir_input(g, "x", (ir_type){IR_F32, key->in[i]});
  int id = ir_add(g, &node);
  int rc = ir_graph_status(g, e);
  if (!rc && !ir_shape_eq(&g->nodes[id].type.shape, &key->out)) {
    char want[96], got[96];
    ir_type t = {IR_F32, key->out};
    rc = oc_fail(e, "%s kernel: the inputs give %s, not the key's %s", op,
                 ir_type_str(&g->nodes[id].type, got, sizeof got), ir_type_str(&t, want, sizeof want));
  }
  ir_graph_free(g);
  return rc ? oc_wrap(e, "%s kernel", op) : 0;
}

/* ---- symbols: e.g. cg_matmul_bf16_k2048_n8192 ---- */

static void symbol_numbered(const cg_jit *j, const cg_kernel_key *k, const char *op, char *buf, size_t n) {
  (void)k;
  snprintf(buf, n, "cg_%s_%d", op, j->n_kernels);
}

static void symbol_plain(const cg_jit *j, const cg_kernel_key *k, const char *op, char *buf, size_t n) {
  (void)j, (void)k;
  snprintf(buf, n, "cg_%s", op);
}

static void symbol_matmul(const cg_jit *j, const cg_kernel_key *k, const char *op, char *buf, size_t n) {
  const char *wt = k->wtype == IR_I8                        ? "q8"
                   : k->wtype == IR_BF16 && j->bf16_compute ? "bf16dot" /* k-pair panels */
                                                            : ir_dtype_name(k->wtype);
  snprintf(buf, n, "cg_%s_%s_k%lld_n%lld", op, wt, (long long)k->k, (long long)k->n);
}

static void symbol_rmsnorm(const cg_jit *j, const cg_kernel_key *k, const char *op, char *buf, size_t n) {
  (void)j;
  uint32_t bits;
  memcpy(&bits, &k->eps, sizeof bits);
  snprintf(buf, n, "cg_%s_d%lld_eps%08x", op, (long long)k->k, (unsigned)bits);
}

static void symbol_rope(const cg_jit *j, const cg_kernel_key *k, const char *op, char *buf, size_t n) {
  (void)j, (void)op;
  snprintf(buf, n, "cg_rope_h%lld_d%lld", (long long)k->n, (long long)k->k);
}

static void symbol_attention(const cg_jit *j, const cg_kernel_key *k, const char *op, char *buf, size_t n) {
  (void)j, (void)op;
  uint32_t bits;
  memcpy(&bits, &k->scale, sizeof bits);
  snprintf(buf, n, "cg_attention_h%lld_kv%lld%s%s_d%lld_scale%08x", (long long)k->n, (long long)k->kv,
           k->kv_head_major ? "hm" : "", k->kv_bf16 ? "bf16" : "", (long long)k->k, (unsigned)bits);
}

static void symbol_gather(const cg_jit *j, const cg_kernel_key *k, const char *op, char *buf, size_t n) {
  (void)j, (void)op;
  snprintf(buf, n, "cg_gather_%s_d%lld", ir_dtype_name(k->wtype), (long long)k->k);
}

static void symbol_q8(const cg_jit *j, const cg_kernel_key *k, const char *op, char *buf, size_t n) {
  (void)j, (void)op;
  snprintf(buf, n, "cg_q8_quantize_k%lld", (long long)k->k);
}

/* f32/bf16 panels or q8/q4 panels, by the weights' dtype. */
static LLVMModuleRef emit_matmul(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  return k->wtype == IR_I8 || k->wtype == IR_Q4 ? cg_emit_matmul_q8(tgt, k, name) : cg_emit_matmul(tgt, k, name);
}

/* ---- the table ---- */

#define MATMUL CG_KEEP_WTYPE | CG_KEEP_K | CG_KEEP_N
#define SHAPES CG_KEEP_SHAPES

static const cg_kernel_op table[] = {
    /* op, by_activation, name, emit, check, symbol, keep, form, call, lower */
    {IR_MATMUL, false, "matmul", emit_matmul, check_matmul, symbol_matmul, MATMUL, CG_PLAIN, RT_CALL_MATMUL,
     CG_LOWER_MATMUL},
    {IR_MATMUL_ADD, false, "matmul_add", emit_matmul, check_matmul, symbol_matmul, MATMUL, CG_PLAIN,
     RT_CALL_MATMUL3, CG_LOWER_MATMUL},
    {IR_MATMUL_SWIGLU, false, "matmul_swiglu", emit_matmul, check_matmul, symbol_matmul, MATMUL, CG_PLAIN,
     RT_CALL_MATMUL3, CG_LOWER_MATMUL},
    {IR_RMSNORM, false, "rmsnorm", cg_emit_rmsnorm, check_rmsnorm, symbol_rmsnorm, CG_KEEP_K | CG_KEEP_EPS,
     CG_PLAIN, RT_CALL_RANGE, CG_LOWER_RMSNORM},
    {IR_RMSNORM_ADD, false, "rmsnorm_add", cg_emit_rmsnorm, check_rmsnorm, symbol_rmsnorm,
     CG_KEEP_K | CG_KEEP_EPS, CG_PLAIN, RT_CALL_RANGE, CG_LOWER_RMSNORM},
    {IR_SWIGLU, false, "swiglu", cg_emit_swiglu, check_nothing, symbol_plain, 0, CG_PLAIN, RT_CALL_RANGE,
     CG_LOWER_SWIGLU},
    {IR_ROPE, false, "rope", cg_emit_rope, check_heads, symbol_rope, CG_KEEP_K | CG_KEEP_N, CG_PLAIN,
     RT_CALL_RANGE, CG_LOWER_HEADS},
    {IR_ATTENTION, false, "attention", cg_emit_attention, check_heads, symbol_attention,
     CG_KEEP_K | CG_KEEP_N | CG_KEEP_KV | CG_KEEP_SCALE, CG_PLAIN, RT_CALL_ATTENTION, CG_LOWER_HEADS},
    {IR_GATHER, false, "gather", cg_emit_gather, check_gather, symbol_gather, CG_KEEP_WTYPE | CG_KEEP_K,
     CG_PLAIN, RT_CALL_GATHER, CG_LOWER_GATHER},
    {IR_ELTWISE, false, "elementwise", cg_emit_elementwise, check_eltwise, symbol_numbered,
     SHAPES | CG_KEEP_EXPR, CG_SHAPED_IF_SYMBOLIC, RT_CALL_RANGE, CG_LOWER_ROWS},
    {IR_REDUCE_SUM, false, "reduce_sum", cg_emit_reduce, check_shaped, symbol_numbered, SHAPES, CG_SHAPED,
     RT_CALL_SHAPED, CG_LOWER_ROWS},
    {IR_REDUCE_MEAN, false, "reduce_mean", cg_emit_reduce, check_shaped, symbol_numbered, SHAPES, CG_SHAPED,
     RT_CALL_SHAPED, CG_LOWER_ROWS},
    {IR_SOFTMAX, false, "softmax", cg_emit_reduce, check_shaped, symbol_numbered, SHAPES, CG_SHAPED,
     RT_CALL_SHAPED, CG_LOWER_ROWS},
    {IR_CAUSAL_MASK, false, "causal_mask", cg_emit_causal_mask, check_shaped, symbol_numbered, SHAPES,
     CG_SHAPED, RT_CALL_SHAPED, CG_LOWER_ROWS},
    {IR_SLICE, false, "slice", cg_emit_copy, check_shaped, symbol_numbered,
     SHAPES | CG_KEEP_AXIS | CG_KEEP_START, CG_SHAPED, RT_CALL_SHAPED, CG_LOWER_ROWS},
    {IR_CONCAT, false, "concat", cg_emit_copy, check_shaped, symbol_numbered, SHAPES | CG_KEEP_AXIS, CG_SHAPED,
     RT_CALL_SHAPED, CG_LOWER_ROWS},
    {IR_TRANSPOSE, false, "transpose", cg_emit_copy, check_shaped, symbol_numbered, SHAPES | CG_KEEP_PERM,
     CG_SHAPED, RT_CALL_SHAPED, CG_LOWER_ROWS},
    {IR_REPEAT, false, "repeat", cg_emit_copy, check_shaped, symbol_numbered,
     SHAPES | CG_KEEP_AXIS | CG_KEEP_TIMES, CG_SHAPED, RT_CALL_SHAPED, CG_LOWER_ROWS},
    {IR_MATMUL, true, "matmul", cg_emit_batched_matmul, check_shaped, symbol_numbered, SHAPES, CG_SHAPED,
     RT_CALL_SHAPED, CG_LOWER_ROWS},
    {CG_OP_Q8_QUANTIZE, false, "q8_quantize", cg_emit_q8_quantize, check_q8, symbol_q8, CG_KEEP_K, CG_PLAIN,
     RT_CALL_RANGE, CG_LOWER_NONE},
};

const cg_kernel_op *cg_kernel_op_of(const cg_kernel_key *key) {
  for (size_t i = 0; i < sizeof table / sizeof *table; i++)
    if ((int)key->op == table[i].op && (key->op != IR_MATMUL || table[i].by_activation == (key->n_in == 2)))
      return &table[i];
  return NULL;
}

void cg_kernel_op_names(char *buf, size_t n) {
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof table / sizeof *table; i++)
    if (table[i].op < IR_OP_COUNT && !table[i].by_activation) /* q8_quantize is lower.c's own */
      snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", i ? ", " : "", table[i].name);
}

bool cg_kernel_shaped(const cg_kernel_key *key) {
  const cg_kernel_op *r = cg_kernel_op_of(key);
  return r && (r->form == CG_SHAPED || (r->form == CG_SHAPED_IF_SYMBOLIC && cg_eltwise_shaped(&key->out)));
}

rt_call cg_kernel_call(const cg_kernel_key *key) {
  return cg_kernel_shaped(key) ? RT_CALL_SHAPED : cg_kernel_op_of(key)->call;
}
