/* The IR-building kit the kernel emitters share: kernel signatures (plain and
 * shaped), locals, counted loops and spans, extents of symbolic dims, vector
 * loads and stores (f32 and bf16, masked tails, constant or run-time masks),
 * intrinsics. Invariant: helpers only append at the builder's position,
 * except cg_var, which puts its alloca at the top of the entry block. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "emit.h"

void cg_emit_begin(cg_emit *e, const cg_emit_target *tgt, const char *name, int n_ptrs, int n_ints) {
  memset(e, 0, sizeof *e);
  e->ctx = tgt->ctx;
  e->mod = LLVMModuleCreateWithNameInContext(name, e->ctx);
  e->b = LLVMCreateBuilderInContext(e->ctx);
  e->vw = tgt->vw;
  e->f32 = LLVMFloatTypeInContext(e->ctx);
  e->i1 = LLVMInt1TypeInContext(e->ctx);
  e->i16 = LLVMInt16TypeInContext(e->ctx);
  e->i32 = LLVMInt32TypeInContext(e->ctx);
  e->i64 = LLVMInt64TypeInContext(e->ctx);
  e->ptr = LLVMPointerTypeInContext(e->ctx, 0);
  e->vf32 = LLVMVectorType(e->f32, (unsigned)e->vw);

  LLVMTypeRef params[16];
  int n = n_ptrs + n_ints;
  for (int i = 0; i < n; i++)
    params[i] = i < n_ptrs ? e->ptr : e->i64;
  LLVMTypeRef ft = LLVMFunctionType(LLVMVoidTypeInContext(e->ctx), params, (unsigned)n, 0);
  e->fn = LLVMAddFunction(e->mod, name, ft);
  /* Without these, CPUs tuned to prefer 256-bit vectors split <16 x float> in two. */
  char width[8];
  snprintf(width, sizeof width, "%d", e->vw * 32);
  const char *attrs[][2] = {{"min-legal-vector-width", width}, {"prefer-vector-width", width}};
  for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
    LLVMAddAttributeAtIndex(e->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(e->ctx, attrs[i][0], (unsigned)strlen(attrs[i][0]),
                                                      attrs[i][1], (unsigned)strlen(attrs[i][1])));
  unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
  LLVMAddAttributeAtIndex(e->fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(e->ctx, nounwind, 0));
  e->entry = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "entry");
  LLVMPositionBuilderAtEnd(e->b, e->entry);
}

LLVMModuleRef cg_emit_finish(cg_emit *e) {
  LLVMBuildRetVoid(e->b);
  LLVMDisposeBuilder(e->b);
  return e->mod;
}

LLVMValueRef cg_param(cg_emit *e, int i) { return LLVMGetParam(e->fn, (unsigned)i); }

void cg_emit_begin_shaped(cg_emit *e, const cg_emit_target *tgt, const char *name, int n_args, LLVMValueRef *args) {
  cg_emit_begin(e, tgt, name, 1, 4);
  for (int i = 0; i < n_args; i++) {
    LLVMValueRef at = LLVMBuildInBoundsGEP2(e->b, e->ptr, cg_param(e, 0), (LLVMValueRef[]){cg_i64(e, i)}, 1, "");
    args[i] = LLVMBuildLoad2(e->b, e->ptr, at, "");
  }
  e->T = cg_param(e, 1);
  e->P = cg_param(e, 2);
}

LLVMValueRef cg_row0(cg_emit *e) { return cg_param(e, 3); }
LLVMValueRef cg_row1(cg_emit *e) { return cg_param(e, 4); }

LLVMValueRef cg_extent(cg_emit *e, ir_dim d) {
  LLVMValueRef v = cg_i64(e, d.c);
  if ((d.t && !e->T) || (d.p && !e->P))
    return NULL;
  if (d.t)
    v = LLVMBuildNSWAdd(e->b, v, LLVMBuildNSWMul(e->b, e->T, cg_i64(e, d.t), ""), "");
  if (d.p)
    v = LLVMBuildNSWAdd(e->b, v, LLVMBuildNSWMul(e->b, e->P, cg_i64(e, d.p), ""), "");
  return v;
}

void cg_extents(cg_emit *e, const ir_shape *s, LLVMValueRef *dims) {
  for (int i = 0; i < s->rank; i++)
    dims[i] = cg_extent(e, s->dim[i]);
}

void cg_unravel(cg_emit *e, LLVMValueRef row, const LLVMValueRef *dims, int n, LLVMValueRef *idx) {
  for (int d = n - 1; d > 0; d--) {
    idx[d] = LLVMBuildSRem(e->b, row, dims[d], "");
    row = LLVMBuildSDiv(e->b, row, dims[d], "");
  }
  if (n > 0)
    idx[0] = row;
}

LLVMValueRef cg_var(cg_emit *e, LLVMTypeRef t, LLVMValueRef init) {
  LLVMBasicBlockRef here = LLVMGetInsertBlock(e->b);
  LLVMValueRef first = LLVMGetFirstInstruction(e->entry);
  if (first)
    LLVMPositionBuilderBefore(e->b, first);
  else
    LLVMPositionBuilderAtEnd(e->b, e->entry);
  LLVMValueRef var = LLVMBuildAlloca(e->b, t, "");
  LLVMPositionBuilderAtEnd(e->b, here);
  LLVMBuildStore(e->b, init, var);
  return var;
}

LLVMValueRef cg_get(cg_emit *e, LLVMTypeRef t, LLVMValueRef var) { return LLVMBuildLoad2(e->b, t, var, ""); }
void cg_set(cg_emit *e, LLVMValueRef var, LLVMValueRef v) { LLVMBuildStore(e->b, v, var); }

LLVMValueRef cg_i64(cg_emit *e, int64_t v) { return LLVMConstInt(e->i64, (unsigned long long)v, 1); }

LLVMValueRef cg_fconst(LLVMTypeRef t, double v) {
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind)
    return LLVMConstReal(t, v);
  unsigned n = LLVMGetVectorSize(t);
  assert(n <= 64);
  LLVMValueRef s = LLVMConstReal(LLVMGetElementType(t), v), lanes[64];
  for (unsigned i = 0; i < n; i++)
    lanes[i] = s;
  return LLVMConstVector(lanes, n);
}

LLVMValueRef cg_iconst(LLVMTypeRef t, int64_t v) {
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind)
    return LLVMConstInt(t, (unsigned long long)v, 1);
  unsigned n = LLVMGetVectorSize(t);
  assert(n <= 64);
  LLVMValueRef s = LLVMConstInt(LLVMGetElementType(t), (unsigned long long)v, 1), lanes[64];
  for (unsigned i = 0; i < n; i++)
    lanes[i] = s;
  return LLVMConstVector(lanes, n);
}

LLVMValueRef cg_splat(cg_emit *e, LLVMValueRef s) {
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(s), (unsigned)e->vw);
  LLVMValueRef v = LLVMBuildInsertElement(e->b, LLVMGetUndef(vt), s, LLVMConstInt(e->i32, 0, 0), "");
  LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(e->i32, (unsigned)e->vw));
  return LLVMBuildShuffleVector(e->b, v, LLVMGetUndef(vt), zeros, "");
}

static LLVMTypeRef elem_type(cg_emit *e, ir_dtype dt) { return dt == IR_BF16 ? e->i16 : e->f32; }

LLVMValueRef cg_elem(cg_emit *e, ir_dtype dt, LLVMValueRef ptr, LLVMValueRef i) {
  return LLVMBuildInBoundsGEP2(e->b, elem_type(e, dt), ptr, &i, 1, "");
}

/* <vw x i1>: the first `lanes` set. */
static LLVMValueRef lane_mask(cg_emit *e, int lanes) {
  LLVMValueRef bits[64];
  for (int i = 0; i < e->vw; i++)
    bits[i] = LLVMConstInt(e->i1, i < lanes, 0);
  return LLVMConstVector(bits, (unsigned)e->vw);
}

/* bf16 bits -> the f32 whose upper half they are. */
static LLVMValueRef widen_bf16(cg_emit *e, LLVMValueRef v) {
  LLVMTypeRef t = LLVMTypeOf(v), it = e->i32, ft = e->f32;
  if (LLVMGetTypeKind(t) == LLVMVectorTypeKind) {
    it = LLVMVectorType(e->i32, LLVMGetVectorSize(t));
    ft = LLVMVectorType(e->f32, LLVMGetVectorSize(t));
  }
  LLVMValueRef wide = LLVMBuildZExt(e->b, v, it, "");
  return LLVMBuildBitCast(e->b, LLVMBuildShl(e->b, wide, cg_iconst(it, 16), ""), ft, "");
}

/* llvm.masked.load of a vt at `at`, masked-off lanes `fill`. */
static LLVMValueRef masked_load(cg_emit *e, LLVMTypeRef vt, LLVMValueRef at, unsigned align, LLVMValueRef mask,
                                LLVMValueRef fill) {
  LLVMValueRef args[] = {at, LLVMConstInt(e->i32, align, 0), mask, fill};
  LLVMTypeRef over[] = {vt, e->ptr};
  unsigned id = LLVMLookupIntrinsicID("llvm.masked.load", 16);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->mod, id, over, 2);
  return LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->ctx, id, over, 2), f, args, 4, "");
}

static void masked_store(cg_emit *e, LLVMValueRef v, LLVMValueRef at, LLVMValueRef mask) {
  LLVMValueRef args[] = {v, at, LLVMConstInt(e->i32, 4, 0), mask};
  LLVMTypeRef over[] = {e->vf32, e->ptr};
  unsigned id = LLVMLookupIntrinsicID("llvm.masked.store", 17);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->mod, id, over, 2);
  LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->ctx, id, over, 2), f, args, 4, "");
}

LLVMValueRef cg_load_vec(cg_emit *e, ir_dtype dt, LLVMValueRef ptr, LLVMValueRef i, int lanes) {
  LLVMTypeRef et = elem_type(e, dt), vt = LLVMVectorType(et, (unsigned)e->vw);
  LLVMValueRef at = cg_elem(e, dt, ptr, i), v;
  unsigned align = dt == IR_BF16 ? 2 : 4;
  if (lanes >= e->vw) {
    v = LLVMBuildLoad2(e->b, vt, at, "");
    LLVMSetAlignment(v, align);
  } else {
    v = masked_load(e, vt, at, align, lane_mask(e, lanes), LLVMConstNull(vt));
  }
  return dt == IR_BF16 ? widen_bf16(e, v) : v;
}

void cg_store_vec(cg_emit *e, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef i, int lanes) {
  cg_store_masked(e, v, ptr, i, lanes >= e->vw ? NULL : lane_mask(e, lanes));
}

/* ptr + i floats, without inbounds: a masked access may start past the end. */
static LLVMValueRef f32_at(cg_emit *e, LLVMValueRef ptr, LLVMValueRef i) {
  return LLVMBuildGEP2(e->b, e->f32, ptr, &i, 1, "");
}

LLVMValueRef cg_load_masked(cg_emit *e, LLVMValueRef ptr, LLVMValueRef i, LLVMValueRef mask, double fill) {
  if (!mask)
    return cg_load_vec(e, IR_F32, ptr, i, e->vw);
  return masked_load(e, e->vf32, f32_at(e, ptr, i), 4, mask, cg_fconst(e->vf32, fill));
}

void cg_store_masked(cg_emit *e, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef i, LLVMValueRef mask) {
  if (mask)
    masked_store(e, v, f32_at(e, ptr, i), mask);
  else
    LLVMSetAlignment(LLVMBuildStore(e->b, v, cg_elem(e, IR_F32, ptr, i)), 4);
}

/* <vw x i64> with every lane v. */
static LLVMValueRef splat_i64(cg_emit *e, LLVMValueRef v) {
  LLVMTypeRef vt = LLVMVectorType(e->i64, (unsigned)e->vw);
  LLVMValueRef one = LLVMBuildInsertElement(e->b, LLVMGetUndef(vt), v, LLVMConstInt(e->i32, 0, 0), "");
  return LLVMBuildShuffleVector(e->b, one, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(e->i32, (unsigned)e->vw)), "");
}

LLVMValueRef cg_lanes_in(cg_emit *e, LLVMValueRef first, LLVMValueRef lo, LLVMValueRef hi) {
  LLVMValueRef step[64];
  for (int i = 0; i < e->vw; i++)
    step[i] = cg_i64(e, i);
  LLVMValueRef idx = LLVMBuildAdd(e->b, splat_i64(e, first), LLVMConstVector(step, (unsigned)e->vw), "");
  return LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, idx, splat_i64(e, lo), ""),
                      LLVMBuildICmp(e->b, LLVMIntSLT, idx, splat_i64(e, hi), ""), "");
}

LLVMValueRef cg_load_f32(cg_emit *e, ir_dtype dt, LLVMValueRef ptr, LLVMValueRef i) {
  LLVMValueRef v = LLVMBuildLoad2(e->b, elem_type(e, dt), cg_elem(e, dt, ptr, i), "");
  return dt == IR_BF16 ? widen_bf16(e, v) : v;
}

void cg_store_f32(cg_emit *e, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef i) {
  LLVMBuildStore(e->b, v, cg_elem(e, IR_F32, ptr, i));
}

LLVMValueRef cg_intrinsic(cg_emit *e, const char *name, LLVMTypeRef t, LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->mod, id, &t, 1);
  return LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->ctx, id, &t, 1), f, args, (unsigned)n, "");
}

LLVMValueRef cg_x86(cg_emit *e, const char *name, LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->mod, id, NULL, 0);
  return LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->ctx, id, NULL, 0), f, args, (unsigned)n, "");
}

LLVMValueRef cg_fma(cg_emit *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  return cg_intrinsic(e, "llvm.fma", LLVMTypeOf(a), (LLVMValueRef[]){a, b, c}, 3);
}

LLVMValueRef cg_reduce_add(cg_emit *e, LLVMValueRef v) {
  LLVMValueRef args[] = {cg_fconst(LLVMGetElementType(LLVMTypeOf(v)), -0.0), v};
  LLVMValueRef r = cg_intrinsic(e, "llvm.vector.reduce.fadd", LLVMTypeOf(v), args, 2);
  LLVMSetFastMathFlags(r, LLVMFastMathAllowReassoc);
  return r;
}

LLVMValueRef cg_reduce_max(cg_emit *e, LLVMValueRef v) {
  unsigned n = LLVMGetVectorSize(LLVMTypeOf(v));
  for (unsigned half = n / 2; half >= 1; half /= 2) {
    LLVMValueRef mask[64];
    for (unsigned i = 0; i < n; i++)
      mask[i] = LLVMConstInt(e->i32, i < half ? i + half : i, 0);
    LLVMValueRef high = LLVMBuildShuffleVector(e->b, v, LLVMGetUndef(LLVMTypeOf(v)), LLVMConstVector(mask, n), "");
    v = LLVMBuildSelect(e->b, LLVMBuildFCmp(e->b, LLVMRealOGT, v, high, ""), v, high, "");
  }
  return LLVMBuildExtractElement(e->b, v, LLVMConstInt(e->i32, 0, 0), "");
}

LLVMValueRef cg_loop_begin(cg_emit *e, cg_loop *l, LLVMValueRef begin, LLVMValueRef end, int64_t step) {
  l->step = step;
  l->var = cg_var(e, e->i64, LLVMConstInt(e->i64, 0, 0));
  cg_set(e, l->var, begin);
  l->cond = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "loop");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "body");
  l->exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "done");
  LLVMBuildBr(e->b, l->cond);
  LLVMPositionBuilderAtEnd(e->b, l->cond);
  LLVMValueRef i = cg_get(e, e->i64, l->var);
  LLVMValueRef next = LLVMBuildNSWAdd(e->b, i, cg_i64(e, step), "");
  LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLE, next, end, ""), body, l->exit);
  LLVMPositionBuilderAtEnd(e->b, body);
  return cg_get(e, e->i64, l->var);
}

void cg_loop_end(cg_emit *e, cg_loop *l) {
  LLVMValueRef i = cg_get(e, e->i64, l->var);
  cg_set(e, l->var, LLVMBuildNSWAdd(e->b, i, cg_i64(e, l->step), ""));
  LLVMBuildBr(e->b, l->cond);
  LLVMPositionBuilderAtEnd(e->b, l->exit);
}

void cg_span(cg_emit *e, LLVMValueRef len, cg_span_fn *body, void *ctx) {
  cg_loop l;
  body(e, cg_loop_begin(e, &l, cg_i64(e, 0), len, e->vw), NULL, ctx);
  cg_loop_end(e, &l);
  if (LLVMIsAConstantInt(len)) {
    int64_t n = LLVMConstIntGetSExtValue(len);
    if (n % e->vw)
      body(e, cg_i64(e, n - n % e->vw), lane_mask(e, (int)(n % e->vw)), ctx);
    return;
  }
  LLVMValueRef j = cg_get(e, e->i64, l.var), rest = LLVMBuildNSWSub(e->b, len, j, "");
  LLVMBasicBlockRef tail = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "tail");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "tail.done");
  LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSGT, rest, cg_i64(e, 0), ""), tail, done);
  LLVMPositionBuilderAtEnd(e->b, tail);
  body(e, j, cg_lanes_in(e, cg_i64(e, 0), cg_i64(e, 0), rest), ctx);
  LLVMBuildBr(e->b, done);
  LLVMPositionBuilderAtEnd(e->b, done);
}
