/* Shared by the codegen files, never by other folders: the JIT session's
 * state, and the IR-building kit the kernel emitters write with. An emitter
 * builds one function into a fresh module in the JIT's context; all vectors
 * are vw floats wide (16 on AVX-512, 8 otherwise), tails are masked or scalar. */
#ifndef OLMOC_CG_INTERNAL_H
#define OLMOC_CG_INTERNAL_H

#include <stdbool.h>

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/TargetMachine.h>

#include "olmoc/codegen.h"
#include "olmoc/pack.h"

typedef struct cg_kernel_entry {
  cg_kernel_key key;     /* normalized: fields the op ignores are zero */
  void *fn;              /* NULL until compiled */
  char symbol[128];      /* its name in the JIT or the object file */
  LLVMModuleRef pending; /* emitted, waiting for cg_kernel_compile_pending; else NULL */
} cg_kernel_entry;

/* A backend: where a session's optimized kernels go. ORC JIT (backend_jit.c)
 * runs them in this process; the object file (backend_object.c) collects
 * them for `olmoc compile`. */
typedef struct cg_backend {
  const char *session;      /* "a JIT session": what an out-of-memory message names */
  const char *for_cpu;      /* how a failure to make the target machine is wrapped, with the cpu */
  LLVMCodeModel code_model; /* of the session's target machine */
  /* Makes j->backend_state (close frees what open made, also after a failed open). */
  int (*open)(cg_jit *j, oc_error *e);
  void (*close)(cg_jit *j);
  /* The context for a new module, and the disposal of one not handed to add_all. */
  LLVMContextRef (*context)(cg_jit *j);
  void (*dispose_module)(const cg_jit *j, LLVMModuleRef m);
  /* The data layout and triple of m, before it is optimized. */
  void (*set_target)(const cg_jit *j, LLVMModuleRef m);
  /* Optimizes (cg_session_optimize), dumps IR if asked, and takes m[0..n), consuming them. */
  int (*add_all)(cg_jit *j, LLVMModuleRef *m, int n, oc_error *e);
  /* A kernel's address (the JIT's code; an object's placeholder). */
  int (*lookup)(cg_jit *j, const char *name, void **addr, oc_error *e);
} cg_backend;

/* The session (session.c): what both backends share. */
struct cg_jit {
  const cg_backend *backend;
  void *backend_state;             /* the backend's own (backend_jit.c, backend_object.c) */
  LLVMTargetMachineRef tm;         /* optimizes and compiles */
  char *cpu, *features;            /* what the target machines are for */
  int vw;                          /* floats per vector */
  bool vnni;                       /* AVX512_VNNI (vpdpbusd) at vw 16: the q8 kernels use it */
  bool q8;                         /* cg_lower quantizes matmul weights (cg_jit_set_q8) */
  bool avx512bf16;                 /* AVX512_BF16 (vdpbf16ps) at vw 16: --compute bf16 can run */
  bool bf16_compute;               /* bf16 weights packed in k pairs, T > 1 on vdpbf16ps */
  bool kv_bf16;                    /* KV caches in bf16 (cg_jit_set_kv_bf16) */
  char *ir_dir;                    /* where optimized IR goes, or NULL */
  cg_kernel_entry *kernels;        /* [n_kernels]: the cache */
  int n_kernels, cap_kernels;
  int compiles;
  double compile_seconds;          /* spent emitting and compiling kernels */
  rt_pack_writer *sink;            /* while cg_lower runs: the pack panels go to, or NULL */
  char *pack_dir;                  /* the JIT places panels into a scratch pack there (cg_jit_set_pack_dir) */
};

/* A session for cpu and features with backend b (its constructor checked them). */
int cg_session_new(const char *cpu, const char *features, const cg_backend *b, cg_jit **out, oc_error *e);
/* A target machine for cpu and features, PIC, with the given code model. */
int cg_make_tm(const char *cpu, const char *features, LLVMCodeModel model, LLVMTargetMachineRef *out,
               oc_error *e);
/* Verifies m and optimizes it at O3 for j's target with tm; m stays the
 * caller's. Allocates nothing of olmoc's, so threads may run it at once. */
int cg_session_optimize(const cg_jit *j, LLVMTargetMachineRef tm, LLVMModuleRef m, oc_error *e);
/* Writes m's IR to the session's IR dump directory, if it has one. */
int cg_session_dump_ir(const cg_jit *j, LLVMModuleRef m, oc_error *e);
/* Consumes err into e as "what: message"; returns -1. */
int cg_fail_llvm(oc_error *e, LLVMErrorRef err, const char *what);
/* m's name into buf. */
const char *cg_module_name(LLVMModuleRef m, char *buf, size_t n);

/* Matmul weight w (a node named `name`) in the kernels' panels of dtype wt
 * (w's own, or IR_I8: quantized to q8): in memory p owns, or, while j has a
 * sink, streamed into it panel by panel and mapped back (panel_place.c). */
int cg_packed_weight(cg_jit *j, rt_program *p, const char *name, const ir_tensor *w, ir_dtype wt,
                     const void **out, oc_error *e);
/* For cg_lower, once its program p exists: when j packs into files and has
 * no sink yet, a scratch pack with room for g's panels becomes j's sink and
 * p's to free (panel_place.c). cg_lower clears j->sink when it ends. */
int cg_scratch_sink(cg_jit *j, rt_program *p, const ir_graph *g, const pass_plan *plan, int64_t ctx,
                    oc_error *e);
/* Bytes of one panel of a matrix of K columns in wt (f32 or bf16; panels/panel.c). */
size_t cg_panel_bytes(const cg_jit *j, ir_dtype wt, int64_t k);
/* Panels [p0, p1) of w in the layout of cg_pack_matrix (cg_pack_matrix_q8),
 * from out on (panels/panel.c, panels/panel_q8.c). */
void cg_pack_panels(const cg_jit *j, ir_dtype wt, int64_t n, int64_t k, const void *w, int64_t p0,
                    int64_t p1, void *out);
void cg_pack_panels_q8(const cg_jit *j, ir_dtype src, int64_t n, int64_t k, const void *w, int64_t p0,
                       int64_t p1, void *out);

/* "+avx2,-avx512f,..." lists `name` as enabled. */
bool cg_has_feature(const char *features, const char *name);

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
void cg_emit_begin(cg_emit *e, cg_jit *j, const char *name, int n_ptrs, int n_ints);
LLVMModuleRef cg_emit_finish(cg_emit *e);
LLVMValueRef cg_param(cg_emit *e, int i);

/* The same for a shaped kernel, `void name(ptr arg, i64 T, i64 P, i64 r0,
 * i64 r1)` (codegen.h): arg[0..n_args) are loaded into args, e->T and e->P set. */
void cg_emit_begin_shaped(cg_emit *e, cg_jit *j, const char *name, int n_args, LLVMValueRef *args);
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

/* ---- emitters: each builds the kernel for a validated key ---- */
LLVMModuleRef cg_emit_matmul(cg_jit *j, const cg_kernel_key *k, const char *name);
LLVMModuleRef cg_emit_rmsnorm(cg_jit *j, const cg_kernel_key *k, const char *name);
LLVMModuleRef cg_emit_swiglu(cg_jit *j, const cg_kernel_key *k, const char *name);
LLVMModuleRef cg_emit_rope(cg_jit *j, const cg_kernel_key *k, const char *name);
LLVMModuleRef cg_emit_attention(cg_jit *j, const cg_kernel_key *k, const char *name);
LLVMModuleRef cg_emit_gather(cg_jit *j, const cg_kernel_key *k, const char *name);
LLVMModuleRef cg_emit_elementwise(cg_jit *j, const cg_kernel_key *k, const char *name);
LLVMModuleRef cg_emit_reduce(cg_jit *j, const cg_kernel_key *k, const char *name);
LLVMModuleRef cg_emit_batched_matmul(cg_jit *j, const cg_kernel_key *k, const char *name);
LLVMModuleRef cg_emit_copy(cg_jit *j, const cg_kernel_key *k, const char *name);
LLVMModuleRef cg_emit_causal_mask(cg_jit *j, const cg_kernel_key *k, const char *name);
LLVMModuleRef cg_emit_matmul_q8(cg_jit *j, const cg_kernel_key *k, const char *name);
LLVMModuleRef cg_emit_q8_quantize(cg_jit *j, const cg_kernel_key *k, const char *name);

/* q8 packing (panels/panel_q8.c): bytes of one group block of a panel nr wide, and
 * of a packed matrix. */
int64_t cg_q8_block_bytes(int64_t nr);
size_t cg_q8_packed_bytes(const cg_jit *j, int64_t n, int64_t k);


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

/* Frees the cache's entries (at cg_jit_free). */
void cg_kernel_cache_free(cg_jit *j);

/* Kernels in two phases, so that a model's compile on all cores at once:
 * cg_kernel_request emits key's kernel unless the cache has it and gives its
 * index; cg_kernel_compile_pending compiles every kernel emitted since the
 * last call; cg_kernel_fn is then kernel index's function (NULL before).
 * cg_kernel_get is the three in one. */
int cg_kernel_request(cg_jit *j, const cg_kernel_key *key, int *index, oc_error *e);
int cg_kernel_compile_pending(cg_jit *j, oc_error *e);
void *cg_kernel_fn(const cg_jit *j, int index);

#endif
