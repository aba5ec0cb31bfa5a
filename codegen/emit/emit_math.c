/* Math in IR that several kernels share: exp and silu(g) * u. exp is an own
 * Cephes-style polynomial (llvm.exp on vectors becomes one libm call per lane). Every
 * function here works on float and on <n x float> alike, so a kernel's
 * scalar tail computes exactly what its vector body computes. */
#include "emit.h"

static bool is_vec(LLVMTypeRef t) { return LLVMGetTypeKind(t) == LLVMVectorTypeKind; }

static LLVMTypeRef int_like(cg_emit *e, LLVMTypeRef t) {
  return is_vec(t) ? LLVMVectorType(e->i32, LLVMGetVectorSize(t)) : e->i32;
}

/* x clamped to [lo, hi]; NaN stays NaN (both compares are false). */
static LLVMValueRef clamp(cg_emit *e, LLVMValueRef x, double lo, double hi) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef h = cg_fconst(t, hi), l = cg_fconst(t, lo);
  x = LLVMBuildSelect(e->b, LLVMBuildFCmp(e->b, LLVMRealOGT, x, h, ""), h, x, "");
  return LLVMBuildSelect(e->b, LLVMBuildFCmp(e->b, LLVMRealOLT, x, l, ""), l, x, "");
}

/* 2^n for integer n in [-126, 127], built from its exponent bits. */
static LLVMValueRef pow2(cg_emit *e, LLVMValueRef n, LLVMTypeRef ft) {
  LLVMTypeRef it = LLVMTypeOf(n);
  LLVMValueRef biased = LLVMBuildAdd(e->b, n, cg_iconst(it, 127), "");
  return LLVMBuildBitCast(e->b, LLVMBuildShl(e->b, biased, cg_iconst(it, 23), ""), ft, "");
}

/* exp(x) = 2^n * p(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts).
 * x is clamped to [-104, 89] so that n in [-150, 129]; 2^n is applied as two
 * factors 2^(n/2) * 2^(n - n/2), so overflow gives inf and underflow 0 or a
 * subnormal, as expf does. */
LLVMValueRef cg_exp(cg_emit *e, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x), it = int_like(e, t);
  LLVMValueRef xc = clamp(e, x, -104.0, 89.0);
  LLVMValueRef fx = LLVMBuildFMul(e->b, xc, cg_fconst(t, 1.44269504088896341), "");
  fx = cg_intrinsic(e, "llvm.rint", t, &fx, 1);
  LLVMValueRef r = cg_fma(e, fx, cg_fconst(t, -0.693359375), xc);
  r = cg_fma(e, fx, cg_fconst(t, 2.12194440e-4), r);
  static const double p[] = {1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                             4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1};
  LLVMValueRef y = cg_fconst(t, p[0]);
  for (int i = 1; i < 6; i++)
    y = cg_fma(e, y, r, cg_fconst(t, p[i]));
  y = cg_fma(e, y, LLVMBuildFMul(e->b, r, r, ""), r);
  y = LLVMBuildFAdd(e->b, y, cg_fconst(t, 1.0), "");
  LLVMValueRef n = LLVMBuildFPToSI(e->b, fx, it, "");
  LLVMValueRef n1 = LLVMBuildAShr(e->b, n, cg_iconst(it, 1), "");
  LLVMValueRef n2 = LLVMBuildSub(e->b, n, n1, "");
  y = LLVMBuildFMul(e->b, LLVMBuildFMul(e->b, y, pow2(e, n1, t), ""), pow2(e, n2, t), "");
  LLVMValueRef nan = LLVMBuildFCmp(e->b, LLVMRealUNO, x, x, "");
  return LLVMBuildSelect(e->b, nan, x, y, "");
}

LLVMValueRef cg_silu_mul(cg_emit *e, LLVMValueRef g, LLVMValueRef u) {
  LLVMTypeRef t = LLVMTypeOf(g);
  LLVMValueRef ex = cg_exp(e, LLVMBuildFNeg(e->b, g, ""));
  LLVMValueRef sig = LLVMBuildFDiv(e->b, cg_fconst(t, 1.0), LLVMBuildFAdd(e->b, cg_fconst(t, 1.0), ex, ""), "");
  return LLVMBuildFMul(e->b, LLVMBuildFMul(e->b, g, sig, ""), u, "");
}
