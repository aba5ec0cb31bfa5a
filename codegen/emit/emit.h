/* What the kernel emitters share, never seen outside codegen/: the IR-building
 * kit (emit_ir.c), math in IR (emit_math.c), the matmul loops, and one
 * emitter per kernel family. An emitter builds one function into a fresh
 * module in the context it is given; all vectors are vw floats wide (16 on
 * AVX-512, 8 otherwise), tails are masked or scalar. Emitters know the
 * target only through cg_emit_target, never the session. */
#ifndef OLMOC_CG_EMIT_H
#define OLMOC_CG_EMIT_H

#include <stdbool.h>

#include <llvm-c/Core.h>

#include "olmoc/codegen.h"

/* What an emitter knows of its session. */
typedef struct cg_emit_target {
  LLVMContextRef ctx; /* the new module's context (its backend's choice) */
  int vw;             /* floats per vector */
  bool vnni;          /* AVX512_VNNI (vpdpbusd) at vw 16: the q8 kernels use it */
  bool bf16_compute;  /* bf16 matmul weights in k pairs, T > 1 on vdpbf16ps */
} cg_emit_target;

/* ---- the IR-building kit (emit_ir.c) ---- */


typedef struct cg_emit {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMValueRef fn;  /* the kernel being built */
  LLVMBasicBlockRef entry;
  int vw;
  LLVMTypeRef f32, i1, i16, i32, i64, ptr, vf32; /* vf32: <vw x float> */
  LLVMValueRef T, P; /* the call's extents (i64), in shaped kernels only; else NULL */
} cg_emit;

/* A fresh module named `name` holding `void name(ptr x n_ptrs, i64 x n_ints)`,
 * the builder at its entry. cg_emit_finish returns the module (the caller
 * hands it to the kernel cache). */
void cg_emit_begin(cg_emit *e, const cg_emit_target *tgt, const char *name, int n_ptrs, int n_ints);
LLVMModuleRef cg_emit_finish(cg_emit *e);
LLVMValueRef cg_param(cg_emit *e, int i);

/* The same for a shaped kernel, `void name(ptr arg, i64 T, i64 P, i64 r0,
 * i64 r1)` (codegen.h): arg[0..n_args) are loaded into args, e->T and e->P set. */
void cg_emit_begin_shaped(cg_emit *e, const cg_emit_target *tgt, const char *name, int n_args, LLVMValueRef *args);
/* A shaped kernel's row range: its r0 and r1. */
LLVMValueRef cg_row0(cg_emit *e);
LLVMValueRef cg_row1(cg_emit *e);

/* ---- extents: dims c + t*T + p*P as i64 values (constants when they are;
 * NULL for a symbolic dim outside a shaped kernel) ---- */
LLVMValueRef cg_extent(cg_emit *e, ir_dim d);
/* dims[i] = cg_extent of s's dim i. */
void cg_extents(cg_emit *e, const ir_shape *s, LLVMValueRef *dims);
/* The index along each of dims[0..n) of `row`, a flat row-major index over
 * them (dims[0]'s extent is not used: it takes the quotient). */
void cg_unravel(cg_emit *e, LLVMValueRef row, const LLVMValueRef *dims, int n, LLVMValueRef *idx);

/* A mutable local (an entry-block alloca, promoted to a register at -O1+). */
LLVMValueRef cg_var(cg_emit *e, LLVMTypeRef t, LLVMValueRef init);
LLVMValueRef cg_get(cg_emit *e, LLVMTypeRef t, LLVMValueRef var);
void cg_set(cg_emit *e, LLVMValueRef var, LLVMValueRef v);

LLVMValueRef cg_i64(cg_emit *e, int64_t v);
/* A float constant of type t: a scalar, or splat when t is a vector. */
LLVMValueRef cg_fconst(LLVMTypeRef t, double v);
/* An integer constant of type t, splat when t is a vector. */
LLVMValueRef cg_iconst(LLVMTypeRef t, int64_t v);
/* <vw x T> with every lane the scalar s of type T (float: <vw x float>). */
LLVMValueRef cg_splat(cg_emit *e, LLVMValueRef s);
/* ptr + i elements of dtype (f32 or bf16). */
LLVMValueRef cg_elem(cg_emit *e, ir_dtype dt, LLVMValueRef ptr, LLVMValueRef i);

/* vw elements of dtype at ptr[i], as <vw x float>; only the first `lanes`
 * are read when lanes < vw (masked, the rest zero). bf16 widens in registers. */
LLVMValueRef cg_load_vec(cg_emit *e, ir_dtype dt, LLVMValueRef ptr, LLVMValueRef i, int lanes);
void cg_store_vec(cg_emit *e, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef i, int lanes);
/* The same with a <vw x i1> mask computed at run time (NULL: all lanes);
 * masked-off lanes read as `fill` and are never touched, so the mask may
 * cover lanes past the end of the buffer. f32 only. */
LLVMValueRef cg_load_masked(cg_emit *e, LLVMValueRef ptr, LLVMValueRef i, LLVMValueRef mask, double fill);
void cg_store_masked(cg_emit *e, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef i, LLVMValueRef mask);
/* <vw x i1>: lane l set when lo <= first + l < hi (i64 scalars). */
LLVMValueRef cg_lanes_in(cg_emit *e, LLVMValueRef first, LLVMValueRef lo, LLVMValueRef hi);
LLVMValueRef cg_load_f32(cg_emit *e, ir_dtype dt, LLVMValueRef ptr, LLVMValueRef i);
void cg_store_f32(cg_emit *e, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef i);

/* Calls the overloaded intrinsic `name` (e.g. "llvm.fma") at type t. */
LLVMValueRef cg_intrinsic(cg_emit *e, const char *name, LLVMTypeRef t, LLVMValueRef *args, int n);
/* Calls the x86 intrinsic `name`, which is not overloaded (e.g. "llvm.x86.avx512.vpdpbusd.512"). */
LLVMValueRef cg_x86(cg_emit *e, const char *name, LLVMValueRef *args, int n);
LLVMValueRef cg_fma(cg_emit *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);
/* The sum of v's lanes (float or double), in any order (reassoc). */
LLVMValueRef cg_reduce_add(cg_emit *e, LLVMValueRef v);
/* The largest of v's lanes (up to 64 floats) by a tree of halves, each level
 * one vector compare-and-select (x86's max). llvm.vector.reduce.fmax would
 * keep its NaN rules by a chain of scalar compares, one per lane, on the
 * critical path of every attention block. Ties and zeros come out as the
 * exact maximum; NaN lanes lose to or win over others by position. */
LLVMValueRef cg_reduce_max(cg_emit *e, LLVMValueRef v);

/* for (i = begin; i + step <= end; i += step): cg_loop_begin returns i and
 * leaves the builder in the body; cg_loop_end closes it. l->var then holds
 * the first index the loop did not cover, where a tail loop starts. */
typedef struct cg_loop {
  LLVMValueRef var;
  LLVMBasicBlockRef cond, exit;
  int64_t step;
} cg_loop;
LLVMValueRef cg_loop_begin(cg_emit *e, cg_loop *l, LLVMValueRef begin, LLVMValueRef end, int64_t step);
void cg_loop_end(cg_emit *e, cg_loop *l);

/* One pass over [0, len) in vectors: body(e, j, mask, ctx) for j = 0, vw, ...
 * with mask NULL for whole vectors and the tail's lanes for the last partial
 * one (a constant mask when len is a constant, else computed, and skipped
 * when there is no tail). */
typedef void cg_span_fn(cg_emit *e, LLVMValueRef j, LLVMValueRef mask, void *ctx);
void cg_span(cg_emit *e, LLVMValueRef len, cg_span_fn *body, void *ctx);

/* ---- math in IR (emit/emit_math.c), on float or <n x float> ---- */

/* e^x, Cephes-style polynomial: rel. error ~1e-7, inf above ~88.7, 0 below ~-104, NaN kept. */
LLVMValueRef cg_exp(cg_emit *e, LLVMValueRef x);
/* silu(g) * u = (g * sigmoid(g)) * u, rounded step by step as the interpreter does. */
LLVMValueRef cg_silu_mul(cg_emit *e, LLVMValueRef g, LLVMValueRef u);

/* ---- the matmul kernels' loops (emit_matmul.c), shared by f32/bf16 and q8 ----
 * tile(e, g, m, p, rows, panels, gemv) emits one tile: rows m.. by panels
 * p..; the loops: one row (m1 - m0 == 1, decode; gemv true) in tiles of
 * gemv_panels panels, then single panels; else per panel, tiles of gemm_rows
 * rows, then 4, then 1. */
typedef void cg_tile_fn(cg_emit *e, const void *g, LLVMValueRef m, LLVMValueRef p, int rows, int panels, bool gemv);
void cg_matmul_loops(cg_emit *e, cg_tile_fn *tile, const void *g, LLVMValueRef m0, LLVMValueRef m1, LLVMValueRef p0,
                     LLVMValueRef p1, int gemv_panels, int gemm_rows);

/* ---- emitters: each builds the kernel for a validated key into a module
 * named `name` (its one function's symbol), in tgt->ctx ---- */
typedef LLVMModuleRef cg_emit_fn(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name);
cg_emit_fn cg_emit_matmul, cg_emit_matmul_q8, cg_emit_q8_quantize, cg_emit_batched_matmul;
cg_emit_fn cg_emit_rmsnorm, cg_emit_swiglu, cg_emit_rope, cg_emit_attention, cg_emit_gather;
cg_emit_fn cg_emit_elementwise, cg_emit_reduce, cg_emit_copy, cg_emit_causal_mask;

/* ---- the elementwise kernel (emit_elementwise.c) ---- */

typedef struct cg_eltwise_plan {
  ir_expr_tok tok[IR_EXPR_MAX];
  int n_tok;
} cg_eltwise_plan;

/* Checks an elementwise key (expr, ranks, each input broadcasting to the
 * output) and, when plan is not NULL, fills it. The message names the input. */
int cg_eltwise_plan_of(const cg_kernel_key *k, cg_eltwise_plan *plan, oc_error *e);
/* Whether an elementwise kernel of output shape out takes the shaped form:
 * when a dim other than a leading one is symbolic. */
bool cg_eltwise_shaped(const ir_shape *out);

#endif
