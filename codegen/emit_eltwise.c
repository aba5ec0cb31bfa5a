/* The general elementwise kernel, from a fused `elementwise` node's postfix
 * expr: the output is viewed as [rows, C] and each input is read through one
 * of the broadcasts the passes produce (same shape, scalar, trailing dims,
 * one value per row); other broadcasts are refused with a message. Invariant:
 * every op rounds to f32 as the interpreter's ir_op_apply does (rsqrt in
 * double); only exp and sigmoid differ, by the polynomial exp's ~1e-7. */
#include "cg_internal.h"

static bool is_one(ir_dim d) { return ir_dim_is_const(d) && d.c == 1; }

/* s without its leading 1s. */
static int strip(const ir_shape *s, const ir_dim **dims) {
  int lead = 0;
  while (lead < s->rank && is_one(s->dim[lead]))
    lead++;
  *dims = s->dim + lead;
  return s->rank - lead;
}

/* The product of dims[0..n), or -1 when one is symbolic. */
static int64_t const_product(const ir_dim *dims, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++) {
    if (!ir_dim_is_const(dims[i]))
      return -1;
    p *= dims[i].c;
  }
  return p;
}

static int classify(const ir_shape *in, const ir_shape *out, cg_bcast *how, int64_t *period) {
  const ir_dim *s, *o;
  int r = strip(in, &s), ro = strip(out, &o);
  *period = 0;
  if (r == 0) {
    *how = CG_SCALAR;
    return 0;
  }
  if (r > ro)
    return -1;
  int off = ro - r, same = 0;
  while (same < r && ir_dim_eq(s[same], o[off + same]))
    same++;
  if (same == r || (same == r - 1 && is_one(s[r - 1]))) {
    *how = same == r ? (off ? CG_TRAIL : CG_FULL) : CG_PER_ROW;
    if (off)
      *period = const_product(s, r - 1);
    return *period < 0 ? -1 : 0;
  }
  return -1;
}

static int shape_error(const cg_kernel_key *k, int i, oc_error *e) {
  char a[96], b[96];
  ir_type ti = {IR_F32, k->in[i]}, to = {IR_F32, k->out};
  return oc_fail(e, "elementwise kernel \"%s\": input %%%d %s broadcasts to %s in a way the backend does "
                 "not support (it reads the output's shape, a scalar, the output's trailing dims, or one "
                 "value per row [..., 1]; symbolic dims only where they match the output's leading ones)",
                 k->expr, i, ir_type_str(&ti, a, sizeof a), ir_type_str(&to, b, sizeof b));
}

int cg_eltwise_plan_of(const cg_kernel_key *k, cg_eltwise_plan *plan, oc_error *e) {
  cg_eltwise_plan local;
  if (!plan)
    plan = &local;
  if (!k->expr)
    return oc_fail(e, "elementwise kernel: the key has no expr");
  if (k->n_in < 1 || k->n_in > IR_MAX_INPUTS)
    return oc_fail(e, "elementwise kernel: %d inputs, expected 1 to %d", k->n_in, IR_MAX_INPUTS);
  if (k->out.rank < 0 || k->out.rank > IR_MAX_DIMS)
    return oc_fail(e, "elementwise kernel: output rank %d, expected 0 to %d", k->out.rank, IR_MAX_DIMS);
  for (int i = 0; i < k->n_in; i++)
    if (k->in[i].rank < 0 || k->in[i].rank > IR_MAX_DIMS)
      return oc_fail(e, "elementwise kernel: input %d has rank %d, expected 0 to %d", i, k->in[i].rank,
                     IR_MAX_DIMS);
  plan->n_tok = ir_expr_parse(k->expr, k->n_in, plan->tok, e);
  if (plan->n_tok < 0)
    return oc_wrap(e, "elementwise kernel");
  ir_dim last = k->out.rank ? k->out.dim[k->out.rank - 1] : ir_const_dim(1);
  if (!ir_dim_is_const(last) || last.c < 1) {
    char d[32];
    return oc_fail(e, "elementwise kernel \"%s\": the output's last dim %s must be a positive constant",
                   k->expr, ir_dim_str(last, d, sizeof d));
  }
  plan->cols = last.c;
  for (int i = 0; i < k->n_in; i++)
    if (classify(&k->in[i], &k->out, &plan->how[i], &plan->period[i]))
      return shape_error(k, i, e);
  return 0;
}

typedef struct ew_row {
  const cg_eltwise_plan *plan;
  LLVMValueRef base[IR_MAX_INPUTS]; /* full and trailing inputs: this row's start */
  LLVMValueRef splat[IR_MAX_INPUTS]; /* scalar and per-row inputs: the value, splat */
  LLVMValueRef y;
} ew_row;

/* (float)(1.0 / sqrt((double)x)), as ir_op_apply rounds it. */
static LLVMValueRef rsqrt(cg_emit *e, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x), dt = LLVMVectorType(LLVMDoubleTypeInContext(e->ctx), LLVMGetVectorSize(t));
  LLVMValueRef w = LLVMBuildFPExt(e->b, x, dt, "");
  w = LLVMBuildFDiv(e->b, cg_fconst(dt, 1.0), cg_intrinsic(e, "llvm.sqrt", dt, &w, 1), "");
  return LLVMBuildFPTrunc(e->b, w, t, "");
}

static LLVMValueRef apply(cg_emit *e, ir_op op, LLVMValueRef a, LLVMValueRef b) {
  LLVMTypeRef t = LLVMTypeOf(a);
  switch (op) {
  case IR_ADD: return LLVMBuildFAdd(e->b, a, b, "");
  case IR_SUB: return LLVMBuildFSub(e->b, a, b, "");
  case IR_MUL: return LLVMBuildFMul(e->b, a, b, "");
  case IR_DIV: return LLVMBuildFDiv(e->b, a, b, "");
  case IR_NEG: return LLVMBuildFNeg(e->b, a, "");
  case IR_EXP: return cg_exp(e, a);
  case IR_SQRT: return cg_intrinsic(e, "llvm.sqrt", t, &a, 1);
  case IR_RSQRT: return rsqrt(e, a);
  default: /* IR_SIGMOID: ir_expr_parse admits nothing else */
    return LLVMBuildFDiv(e->b, cg_fconst(t, 1.0),
                         LLVMBuildFAdd(e->b, cg_fconst(t, 1.0), cg_exp(e, LLVMBuildFNeg(e->b, a, "")), ""), "");
  }
}

/* The expr over columns c .. c+lanes of the row. */
static void eval(cg_emit *e, const ew_row *r, LLVMValueRef c, int lanes) {
  const cg_eltwise_plan *pl = r->plan;
  LLVMValueRef stack[IR_EXPR_MAX];
  int sp = 0;
  for (int t = 0; t < pl->n_tok; t++) {
    ir_expr_tok tk = pl->tok[t];
    if (tk.op == IR_INPUT) {
      stack[sp++] = r->base[tk.input] ? cg_load_vec(e, IR_F32, r->base[tk.input], c, lanes) : r->splat[tk.input];
      continue;
    }
    int arity = ir_op_table[tk.op].arity;
    sp -= arity;
    stack[sp] = apply(e, tk.op, stack[sp], arity > 1 ? stack[sp + 1] : NULL);
    sp++;
  }
  cg_store_vec(e, stack[0], r->y, c, lanes);
}

/* k(in0, ..., in{n-1}, y, row0, row1) */
LLVMModuleRef cg_emit_eltwise(cg_jit *j, const cg_kernel_key *k, const char *name) {
  cg_eltwise_plan plan;
  cg_eltwise_plan_of(k, &plan, NULL); /* checked by the cache */
  int64_t C = plan.cols;
  int n = k->n_in;
  cg_emit em, *e = &em;
  cg_emit_begin(e, j, name, n + 1, 2);
  ew_row r = {.plan = &plan};
  cg_loop rows, cols;
  LLVMValueRef row = cg_loop_begin(e, &rows, cg_param(e, n + 1), cg_param(e, n + 2), 1);
  for (int i = 0; i < n; i++) {
    LLVMValueRef in = cg_param(e, i), at;
    switch (plan.how[i]) {
    case CG_FULL:
      r.base[i] = cg_elem(e, IR_F32, in, LLVMBuildNSWMul(e->b, row, cg_i64(e, C), ""));
      break;
    case CG_TRAIL:
      at = LLVMBuildSRem(e->b, row, cg_i64(e, plan.period[i]), "");
      r.base[i] = cg_elem(e, IR_F32, in, LLVMBuildNSWMul(e->b, at, cg_i64(e, C), ""));
      break;
    case CG_SCALAR:
    case CG_PER_ROW:
      at = plan.how[i] == CG_SCALAR ? cg_i64(e, 0)
           : plan.period[i]         ? LLVMBuildSRem(e->b, row, cg_i64(e, plan.period[i]), "")
                                    : row;
      r.splat[i] = cg_splat(e, cg_load_f32(e, IR_F32, in, at));
      break;
    }
  }
  r.y = cg_elem(e, IR_F32, cg_param(e, n), LLVMBuildNSWMul(e->b, row, cg_i64(e, C), ""));
  eval(e, &r, cg_loop_begin(e, &cols, cg_i64(e, 0), cg_i64(e, C), e->vw), e->vw);
  cg_loop_end(e, &cols);
  if (C % e->vw)
    eval(e, &r, cg_i64(e, C - C % e->vw), (int)(C % e->vw));
  cg_loop_end(e, &rows);
  return cg_emit_finish(e);
}
