/* The general elementwise kernel, from a fused `elementwise` node's postfix
 * expr or a primitive op written as a one-op expr. The output is viewed as
 * [rows, C] (C its last dim); each input is read through its numpy broadcast:
 * per row, an offset built from the row's index along the leading dims the
 * input does not broadcast over (row * width when it broadcasts over none), and
 * per column a vector, or one value splat when it broadcasts along the last
 * dim. The kernel is shaped (T and P give the extents) when a dim past the
 * first is symbolic. Invariant: every op rounds to f32 as the interpreter's
 * ir_op_apply does (rsqrt in double); only exp and sigmoid differ, by the
 * polynomial exp's ~1e-7. */
#include "emit.h"

static bool is_one(ir_dim d) { return ir_dim_is_const(d) && d.c == 1; }

static int broadcast_error(const cg_kernel_key *k, int i, oc_error *e) {
  char a[96], b[96];
  ir_type ti = {IR_F32, k->in[i]}, to = {IR_F32, k->out};
  return oc_fail(e, "elementwise kernel \"%s\": input %%%d %s does not broadcast to the output %s", k->expr, i,
                 ir_type_str(&ti, a, sizeof a), ir_type_str(&to, b, sizeof b));
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
  for (int i = 0; i < k->n_in; i++) {
    const ir_shape *s = &k->in[i];
    if (s->rank > k->out.rank)
      return broadcast_error(k, i, e);
    for (int j = 0; j < s->rank; j++)
      if (!is_one(s->dim[j]) && !ir_dim_eq(s->dim[j], k->out.dim[k->out.rank - s->rank + j]))
        return broadcast_error(k, i, e);
  }
  return 0;
}

/* How input i reads, for an output of rank r (viewed as [rows, C]). */
typedef struct ew_input {
  bool splat;              /* broadcast along the last dim: one value per row */
  bool by_row;             /* broadcast along no leading dim: offset row * width */
  bool lead[IR_MAX_DIMS];  /* output dim d < r-1 the input indexes */
  LLVMValueRef stride[IR_MAX_DIMS]; /* its elements per step along output dim d (when lead[d]) */
} ew_input;

static void classify(cg_emit *e, const ir_shape *in, const ir_shape *out, ew_input *w) {
  int r = out->rank, off = r - in->rank;
  *w = (ew_input){.splat = r > 0 && (in->rank == 0 || (is_one(in->dim[in->rank - 1]) && !is_one(out->dim[r - 1]))),
                  .by_row = true};
  LLVMValueRef stride = cg_i64(e, 1);
  for (int d = r - 1; d >= 0; d--) {
    int j = d - off;
    bool own = j >= 0 && !(is_one(in->dim[j]) && !is_one(out->dim[d]));
    if (d < r - 1) {
      w->lead[d] = own;
      w->stride[d] = stride;
      w->by_row &= own || is_one(out->dim[d]);
    }
    if (j >= 0 && d > 0) /* only dims before d use it: out's dim 0 extent is never needed */
      stride = LLVMBuildNSWMul(e->b, stride, cg_extent(e, in->dim[j]), "");
  }
}

typedef struct ew_row {
  const cg_eltwise_plan *plan;
  const ew_input *in;
  LLVMValueRef base[IR_MAX_INPUTS]; /* this row's start in each input */
  LLVMValueRef splat[IR_MAX_INPUTS]; /* splat inputs: the row's value */
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

/* The expr over the vector of columns at c (mask: its lanes, NULL for all). */
static void eval(cg_emit *e, LLVMValueRef c, LLVMValueRef mask, void *ctx) {
  const ew_row *r = ctx;
  const cg_eltwise_plan *pl = r->plan;
  LLVMValueRef stack[IR_EXPR_MAX];
  int sp = 0;
  for (int t = 0; t < pl->n_tok; t++) {
    ir_expr_tok tk = pl->tok[t];
    if (tk.op == IR_INPUT) {
      int i = tk.input;
      stack[sp++] = r->in[i].splat ? r->splat[i] : cg_load_masked(e, r->base[i], c, mask, 0.0);
      continue;
    }
    int arity = ir_op_table[tk.op].arity;
    sp -= arity;
    stack[sp] = apply(e, tk.op, stack[sp], arity > 1 ? stack[sp + 1] : NULL);
    sp++;
  }
  cg_store_masked(e, stack[0], r->y, c, mask);
}

bool cg_eltwise_shaped(const ir_shape *out) {
  for (int d = 0; d < out->rank && d < IR_MAX_DIMS; d++)
    if (!ir_dim_is_const(out->dim[d]) && (d > 0 || out->rank == 1))
      return true;
  return false;
}

/* k(in0, ..., in{n-1}, y, row0, row1), or shaped: k(arg, T, P, row0, row1) */
LLVMModuleRef cg_emit_elementwise(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  cg_eltwise_plan plan;
  cg_eltwise_plan_of(k, &plan, NULL); /* checked by the cache */
  int n = k->n_in, r = k->out.rank;
  cg_emit em, *e = &em;
  LLVMValueRef ptr[IR_MAX_INPUTS + 1], row0, row1;
  if (cg_eltwise_shaped(&k->out)) {
    cg_emit_begin_shaped(e, tgt, name, n + 1, ptr);
    row0 = cg_row0(e), row1 = cg_row1(e);
  } else {
    cg_emit_begin(e, tgt, name, n + 1, 2);
    for (int i = 0; i <= n; i++)
      ptr[i] = cg_param(e, i);
    row0 = cg_param(e, n + 1), row1 = cg_param(e, n + 2);
  }
  LLVMValueRef dims[IR_MAX_DIMS], idx[IR_MAX_DIMS];
  cg_extents(e, &k->out, dims);
  LLVMValueRef C = r ? dims[r - 1] : cg_i64(e, 1);
  ew_input in[IR_MAX_INPUTS];
  for (int i = 0; i < n; i++)
    classify(e, &k->in[i], &k->out, &in[i]);
  ew_row rw = {.plan = &plan, .in = in};
  cg_loop rows;
  LLVMValueRef row = cg_loop_begin(e, &rows, row0, row1, 1);
  cg_unravel(e, row, dims, r - 1, idx);
  for (int i = 0; i < n; i++) {
    LLVMValueRef at;
    if (in[i].by_row) {
      at = in[i].splat ? row : LLVMBuildNSWMul(e->b, row, C, "");
    } else {
      at = cg_i64(e, 0);
      for (int d = 0; d < r - 1; d++)
        if (in[i].lead[d])
          at = LLVMBuildNSWAdd(e->b, at, LLVMBuildNSWMul(e->b, idx[d], in[i].stride[d], ""), "");
    }
    rw.base[i] = cg_elem(e, IR_F32, ptr[i], at);
    if (in[i].splat)
      rw.splat[i] = cg_splat(e, cg_load_f32(e, IR_F32, rw.base[i], cg_i64(e, 0)));
  }
  rw.y = cg_elem(e, IR_F32, ptr[n], LLVMBuildNSWMul(e->b, row, C, ""));
  cg_span(e, C, eval, &rw);
  cg_loop_end(e, &rows);
  return cg_emit_finish(e);
}
