/* The LLVM backend: what the host CPU is, as LLVM sees it (which decides the
 * kernels emitted), a JIT session for a target CPU, and the kernels it
 * compiles, keyed by (op, shapes, dtypes) and compiled once per session.
 * LLVM types never appear here: a runtime or test links this without its headers. */
#ifndef OLMOC_CODEGEN_H
#define OLMOC_CODEGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "olmoc/error.h"
#include "olmoc/executor.h"
#include "olmoc/interp.h"
#include "olmoc/pack.h"
#include "olmoc/ir.h"
#include "olmoc/plan.h"
#include "olmoc/progress.h"
#include "olmoc/quantized.h"

typedef struct cg_host {
  char cpu[64];      /* LLVM's name for the host CPU, e.g. "skylake-avx512" */
  bool avx2, fma, avx512f, avx512bf16, avx512vnni;
  char llvm_version[32];
} cg_host;

void cg_host_detect(cg_host *h);

/* ---- JIT session ---- */

typedef struct cg_jit cg_jit;

/* A JIT for the host CPU (its name and features as LLVM detects them): 16-wide
 * kernels with AVX-512, 8-wide with AVX2+FMA; a CPU without AVX2 and FMA is
 * refused with a message (the kernels are not written for SSE). */
int cg_jit_new(cg_jit **out, oc_error *e);
/* A JIT for a given CPU and feature string ("haswell", "+avx2,+fma"), e.g. to
 * test the AVX2 kernels on an AVX-512 host; the features must include avx2 and
 * fma. Code for features the host lacks compiles but must not be run. */
int cg_jit_new_for_cpu(const char *cpu, const char *features, cg_jit **out, oc_error *e);
/* A JIT for a target by name: "native" (or NULL), the host as cg_jit_new; or
 * "avx2", Haswell's AVX2+FMA (8-wide) whatever the host has beyond it,
 * refused on a host without AVX2 and FMA. */
int cg_jit_new_for_target(const char *target, cg_jit **out, oc_error *e);
void cg_jit_free(cg_jit *j);

/* Writes each module's optimized LLVM IR to DIR/<module>.ll from now on
 * (NULL stops). The directory must exist. */
int cg_jit_set_ir_dump_dir(cg_jit *j, const char *dir, oc_error *e);

/* The address of a symbol defined by a module added to j. */
int cg_jit_lookup(cg_jit *j, const char *name, void **addr, oc_error *e);

/* Floats per vector register in the kernels this JIT emits: 16 (AVX-512) or 8. */
int cg_jit_vector_width(const cg_jit *j);

/* Whether programs cg_lower makes with j from now on quantize their matmul
 * weights at load (from f32, bf16 or f16; see cg_pack_quantized): to q8, or
 * to q4 with the LM head in q8 (each setter replaces the other). Off by
 * default: each matrix stays in its checkpoint dtype. cg_quantized_dtype:
 * what the matrix named weight becomes, IR_I8 or IR_Q4 (IR_F32 when j
 * does not quantize). */
void cg_jit_set_q8(cg_jit *j, bool on);
bool cg_jit_q8(const cg_jit *j);
void cg_jit_set_q4(cg_jit *j, bool on);
bool cg_jit_q4(const cg_jit *j);
ir_dtype cg_quantized_dtype(const cg_jit *j, const char *weight);

/* --compute bf16: whether bf16 matmul weights are packed (cg_pack_matrix,
 * cg_lower) in k pairs and their matmul kernels compute T > 1 rows with the
 * activations rounded to bf16 (round to nearest even) on vdpbf16ps; one row
 * (decode) stays an f32 fma chain over the same panels. Off by default. Fails
 * when j's target lacks AVX512_BF16; cg_lower then refuses f32 matmul weights.
 * Error: |y - x.w| <= (2^-8 + K 2^-23) sum_k |x_k w_k| (README). */
int cg_jit_set_bf16_compute(cg_jit *j, bool on, oc_error *e);
bool cg_jit_bf16_compute(const cg_jit *j);

/* --kv-cache bf16: whether cg_lower keeps the KV caches in bf16, each value
 * rounded to nearest even as kv_append stores it and widened as attention
 * reads it: half the bytes a decoded token reads from a long cache. Only
 * caches that nothing but the fused attention reads can be (cg_lower refuses
 * the rest: run -O1 or -O2). Off by default. Every key and value then carries
 * a relative error of at most 2^-8 (README has its effect on perplexity). */
int cg_jit_set_kv_bf16(cg_jit *j, bool on, oc_error *e);

/* Where this session's long steps report from now on (NULL, the default:
 * silent): packing matmul weights (cg_lower) and compiling kernels. */
void cg_jit_set_progress(cg_jit *j, const oc_progress *p);

/* How many kernel modules this JIT has compiled, and the seconds it took. */
int cg_jit_compile_count(const cg_jit *j);
double cg_jit_compile_seconds(const cg_jit *j);

/* ---- kernels ----
 * A kernel is a plain C function over a range of its work; threads split the
 * ranges, kernels never spawn any. Matrices are row-major, float is f32, W is
 * the key's weight dtype (f32 or bf16). Outputs must not overlap matmul
 * inputs; rmsnorm and swiglu may run in place (y == x, r or g).
 *
 *   matmul         k(const float *x, const W *w, float *y, m0, m1, n0, n1)
 *   matmul_add     k(const float *x, const W *w, const float *r, float *y, m0, m1, n0, n1)
 *   matmul_swiglu  k(const float *x, const W *wg, const W *wu, float *y, m0, m1, n0, n1)
 *       x[M,K], w[N,K] packed by cg_pack_matrix, r and y [M,N]; for m in
 *       [m0,m1), n in [n0,n1): y[m,n] = x[m].w[n] (+ r[m,n]; or
 *       silu(x[m].wg[n]) * (x[m].wu[n])). Each y[m,n] is one f32 fma chain over
 *       k = 0..K-1, the same bits whatever the ranges. Ranges that start on a
 *       panel (a multiple of cg_matmul_panel) share no work.
 *   rmsnorm        k(const float *x, const float *w, float *y, row0, row1)
 *   rmsnorm_add    k(const float *x, const float *w, const float *r, float *y, row0, row1)
 *       x, r, y [rows,D], w[D]: y = (r +) w * (x * rsqrt(mean(x^2) + eps)) per row
 *   swiglu         k(const float *g, const float *u, float *y, i0, i1)
 *       y[i] = silu(g[i]) * u[i] for i in [i0,i1)
 *   rope           k(const float *x, const float *cos, const float *sin, float *y, row0, row1)
 *       x, y [T,H,D] as rows = (t,h) pairs, cos and sin [T,D]; per row, with
 *       rot = concat(-x[D/2:], x[:D/2]): y = x*cos[t] + rot*sin[t]. y may be x.
 *   attention      k(const float *q, const float *k, const float *v, float *y, P, p0, p1)
 *       q, y [T,H,D]; k, v [P+T,KV,D] (the cache rows); p = t*H + h in [p0,p1):
 *       y[t,h] = softmax_j(q[t,h].k[j,g] * scale) . v[j,g] over keys j <= P+t,
 *       g = h / (H/KV); online softmax, one pass over the keys, no T x S buffer.
 *       D <= 512. Differs from the interpreter's double-summed two-pass softmax
 *       by the f32 score dots' error: measured <= 1e-6 of sum_j p_j |v[j,g,d]|.
 *   gather         k(const W *table, const int32_t *ids, float *y, t0, t1)
 *       table[V,D], ids[T], y[T,D]: y[t] = table[ids[t]]. The ids are trusted:
 *       the caller has checked 0 <= id < V (an id out of range reads out of bounds).
 *   elementwise    k(const float *in0, ..., const float *in{n-1}, float *y, row0, row1)
 *       y viewed as [rows, C] (C its last dim): expr over the f32 inputs, each
 *       read through its numpy broadcast, for rows in [row0,row1). y may be an
 *       input of y's shape. The interpreter's bits, except exp and sigmoid
 *       (~1e-7 relative). When a dim of y other than a leading one is symbolic
 *       (scores [H,T,P+T], a [T] vector) the kernel takes the shaped form.
 *
 * Shaped kernels, for the primitive ops whose extents depend on the call, take
 * the addresses of their inputs then of y in an array, and the call's T and P:
 *   shaped         k(void *const *arg, T, P, row0, row1)
 * Their work is the rows of y (all dims but the last) in [row0,row1); every
 * value is f32 and row-major with the key's shapes evaluated at T and P:
 *   reduce_sum, reduce_mean  x[...,L] -> y[...,1]: the row's sum (mean), summed
 *       in double and rounded once, as the interpreter does.
 *   softmax        x[...,L] -> y: max in f32, exp(x - max) in f32, the sum in
 *       double, y = exp / sum rounded once; within 1e-5 relative of the interpreter.
 *   matmul (n_in 2) a[...,M,K], b[...,N,K] or b[N,K], both activations:
 *       y[...,m,n] = a[...,m].b[...,n], f32 accumulators (as the matmul kernels).
 *   slice, concat, transpose, repeat: copies, exact.
 *   causal_mask    x[...,Tq,S]: y = x, or -inf where key j > P + query i.
 *   elementwise    as above, when cg_kernel_shaped says so.
 * The int64_t range bounds are half-open. */
typedef void cg_matmul_fn(const float *x, const void *w, float *y, int64_t m0, int64_t m1,
                          int64_t n0, int64_t n1);
typedef void cg_matmul3_fn(const float *x, const void *w, const void *w2_or_r, float *y,
                           int64_t m0, int64_t m1, int64_t n0, int64_t n1);
typedef void cg_rmsnorm_fn(const float *x, const float *w, float *y, int64_t row0, int64_t row1);
typedef void cg_rmsnorm_add_fn(const float *x, const float *w, const float *r, float *y,
                               int64_t row0, int64_t row1);
typedef void cg_swiglu_fn(const float *g, const float *u, float *y, int64_t i0, int64_t i1);
typedef void cg_rope_fn(const float *x, const float *cos, const float *sin, float *y, int64_t row0,
                        int64_t row1);
/* attention: pairs [p0, p1) of the T*H, numbered head-major (p = h*T + t);
 * q and y are [T,H,D], the caches hold ctx positions of which P+T are written. */
typedef void cg_attention_fn(const float *q, const float *k, const float *v, float *y, int64_t T,
                             int64_t P, int64_t ctx, int64_t p0, int64_t p1);
typedef void cg_gather_fn(const void *table, const int32_t *ids, float *y, int64_t t0, int64_t t1);
/* elementwise kernels take n_in input pointers then y: cast to the arity's type */
typedef void cg_eltwise1_fn(const float *a, float *y, int64_t row0, int64_t row1);
typedef void cg_eltwise2_fn(const float *a, const float *b, float *y, int64_t row0, int64_t row1);
typedef void cg_eltwise3_fn(const float *a, const float *b, const float *c, float *y, int64_t row0,
                            int64_t row1);
typedef void cg_eltwise4_fn(const float *a, const float *b, const float *c, const float *d, float *y,
                            int64_t row0, int64_t row1);

/* q8 (int8 weights, --dtype q8): a matmul key with wtype IR_I8 takes weights
 * packed by cg_pack_quantized and, instead of x, its rows quantized by the
 * kernel keyed {CG_OP_Q8_QUANTIZE, k = K} (codegen/panels/panel_q8.c has the format):
 *
 *   q8_quantize    k(const float *x, void *xq, row0, row1)
 *       x[rows,K] -> xq[rows] of cg_q8_row_bytes(K) each: per group g of
 *       CG_Q8_GROUP values (the last zero-padded), a = max|x|, s = a / 127,
 *       q = rint(x * (127 / a)) (0 when a = 0), int8; the row is the Kp =
 *       ceil(K/32)*32 values q, then G = Kp/32 f32 scales s, then G int32
 *       -128 * sum(q) (the correction of the kernels' unsigned weights).
 *   matmul (wtype IR_I8), matmul_add, matmul_swiglu: as above with x the
 *       quantized rows; y[m,n] = one f32 fma chain over the groups g in order,
 *       acc = fma((float)dot_g(q_x, q_w), sw[n,g] * sx[m,g], acc), from 0,
 *       dot_g the exact int32 dot product of the group's 32 int8 pairs.
 *   matmul (wtype IR_Q4), ...: the same with 4-bit weights q in [-8, 7]
 *       (codegen/panels/panel_q4.c), read as int8: the same chain and bits as
 *       q8 weights holding those q and scales. */
#define CG_Q8_GROUP OC_QUANT_GROUP
#define CG_OP_Q8_QUANTIZE IR_OP_COUNT /* a kernel op with no IR op of its own */

typedef struct cg_kernel_key {
  ir_op op;       /* IR_MATMUL, IR_MATMUL_ADD, IR_MATMUL_SWIGLU, IR_RMSNORM, IR_RMSNORM_ADD,
                     IR_SWIGLU, IR_ROPE, IR_ATTENTION, IR_GATHER, IR_ELTWISE, and the
                     shaped ones below */
  ir_dtype wtype; /* matmul weights: IR_F32, IR_BF16, IR_I8 (q8) or IR_Q4; gather table: IR_F32 or
                     IR_BF16; ignored by the others */
  int64_t k, n;   /* matmul (n_in 0): x[M,K] . w[N,K]^T; rmsnorm, gather: k = row width D;
                     rope, attention: k = head dim D, n = heads H; else ignored */
  int64_t kv;     /* attention: KV heads, dividing H; else ignored */
  bool kv_head_major; /* attention: the caches are [KV][ctx][D] (ctx comes at run time), not
                         [ctx][KV][D] as the IR has them; else ignored */
  bool kv_bf16;       /* attention: the caches hold bf16, not f32; else ignored */
  float eps;      /* rmsnorm: epsilon, baked into the kernel; else ignored */
  float scale;    /* attention: the score scale (the op's value); else ignored */
  /* elementwise: the postfix expr (ir_expr_parse's form; copied by the cache),
   * the types' shapes of its n_in inputs and of its output; each input
   * broadcasts to the output numpy-style (right-aligned, dims equal or 1). */
  const char *expr;
  int n_in;
  ir_shape in[IR_MAX_INPUTS], out;
  /* shaped kernels (reduce_sum, reduce_mean, softmax, causal_mask, slice,
   * concat, transpose, repeat, and matmul with n_in 2): the n_in input shapes
   * and out as above, which must agree by the IR's type rules, and the op's
   * attributes: */
  int axis;                /* slice, concat, repeat */
  int64_t start;           /* slice: the first index along axis (the end is out's) */
  int times;               /* repeat */
  int perm[IR_MAX_DIMS];   /* transpose: output axis i is input axis perm[i] */
} cg_kernel_key;

/* Matmul weights w[N,K] (f32 or bf16) in the kernels' layout: panels of
 * cg_matmul_panel(j) columns (32 on AVX-512, 16 on AVX2), codegen/panels/panel.c.
 * out holds cg_packed_bytes (IR_I8, IR_Q4: see cg_pack_quantized); packing uses
 * the OpenMP threads. */
int64_t cg_matmul_panel(const cg_jit *j);
size_t cg_packed_bytes(const cg_jit *j, ir_dtype wt, int64_t n, int64_t k);
void cg_pack_matrix(const cg_jit *j, ir_dtype wt, int64_t n, int64_t k, const void *w, void *out);

/* Whether key's kernel takes the shaped form k(arg, T, P, row0, row1). */
bool cg_kernel_shaped(const cg_kernel_key *key);

/* Quantized matmul weights: w[N,K] (f32, bf16 or f16) quantized to wt (IR_I8:
 * q8, IR_Q4: q4) per group of 32 along K and packed into panels of
 * cg_matmul_panel(j) columns; out holds cg_packed_bytes(j, wt, n, k).
 * cg_unpack_quantized reads a packed matrix back as q[N,Kp] int8 and
 * scales[N,G] (tests, tools). cg_q8_row_bytes: bytes of one quantized
 * activation row of K values. */
void cg_pack_quantized(const cg_jit *j, ir_dtype wt, ir_dtype src, int64_t n, int64_t k, const void *w, void *out);
void cg_unpack_quantized(const cg_jit *j, ir_dtype wt, int64_t n, int64_t k, const void *packed, int8_t *q,
                         float *scales);
size_t cg_q8_row_bytes(int64_t k);
/* The same panels streamed into a new buffer section `name` of out, a few
 * MiB at a time, w's mapped pages given back as they are read (olmoc
 * quantize); *index is the section's number. */
int cg_write_quantized(const cg_jit *j, rt_pack_writer *out, const char *name, const ir_tensor *w, ir_dtype wt,
                       int *index, oc_error *e);

/* The kernel for key, compiled on first use; the same key gives the same
 * pointer, valid until cg_jit_free. Fields an op ignores do not matter. */
int cg_kernel_get(cg_jit *j, const cg_kernel_key *key, void **fn, oc_error *e);

/* ---- lowering ----
 * A program for the executor (olmoc/executor.h) from g after any passes and
 * plan-memory last (fused or primitive ops alike): one step per compute node
 * with its kernel from j (which must outlive the program; reshapes are their
 * source's bytes, as the plan aliases them), KV caches of ctx positions (plan->max_ctx >= ctx),
 * weights from `weights`: matmul matrices packed once into program memory
 * (or a file, below) in their dtype (or q8/q4, cg_jit_set_q8/q4: then each matmul reads its rows quantized
 * by a q8_quantize step, shared by matmuls of the same input, into one
 * program-owned buffer; a lookup may then return a matmul weight already
 * packed: dtype cg_quantized_dtype, dims [N,K], the bytes cg_pack_quantized makes for j,
 * used in place), the embedding table used in place, small vectors such as norm
 * weights converted to f32 once. A weight the lookup gives in f32 or f16 where
 * g reads bf16 is rounded to nearest even where it is packed or copied (the
 * embedding table then into a bf16 copy), as if the checkpoint held bf16.
 * An op without a kernel is an error that names it. */
int cg_lower(cg_jit *j, const ir_graph *g, const pass_plan *plan, int64_t ctx, ir_weight_fn weights,
             void *weights_ctx, rt_program **out, oc_error *e);

/* ---- where packed weights go (panel_place.c) ----
 * By default into program memory. With a pack directory, cg_lower streams
 * the panels into an unnamed file there instead and maps it read-only (the
 * program frees it): the kernel evicts and rereads its pages as memory
 * needs, so a model larger than memory runs, at disk speed once it does
 * not fit. The logits are the same bits either way. */

/* Bytes a program cg_lower would make from g with the lookup `weights`
 * would hold: *packed of matmul panels (q8 if j quantizes; an upper bound
 * when the lookup hands over matrices packed already), *other in anonymous
 * memory besides (the arena, the KV caches and rope tables for ctx
 * positions, q8's rows, a table rounded to bf16 from the lookup's f32 or
 * f16; weights NULL: no table is rounded). */
void cg_program_bytes(const cg_jit *j, const ir_graph *g, const pass_plan *plan, int64_t ctx, ir_weight_fn weights,
                      void *weights_ctx, uint64_t *packed, uint64_t *other);
/* From now on cg_lower packs into a scratch file in dir (NULL: into memory),
 * refusing, naming dir and the sizes, a directory without room for it or in
 * memory (tmpfs). */
int cg_jit_set_pack_dir(cg_jit *j, const char *dir, oc_error *e);
/* Whether packed weights of `packed` bytes, with `other` bytes of the
 * program beside them, fit in `available` bytes of memory (the rule and its
 * margin: panel_place.c). available 0 (unknown) fits. */
bool cg_pack_fits(uint64_t packed, uint64_t other, uint64_t available);

typedef struct cg_pack_place {
  bool file;          /* into a scratch file in dir, not memory */
  const char *dir;    /* $OLMOC_PACK_DIR, else /var/tmp (on disk where /tmp may be tmpfs) */
  uint64_t packed, other; /* cg_program_bytes */
  uint64_t available; /* MemAvailable now, 0 when unknown */
} cg_pack_place;

/* mode is NULL, "auto", "memory" or "file", or the error says so. */
int cg_pack_mode_check(const char *mode, oc_error *e);
/* Decides where cg_lower packs j's weights for g (from the lookup weights,
 * as cg_program_bytes), and sets it: mode "memory", "file", or "auto" (NULL
 * too: a file when !cg_pack_fits). */
int cg_jit_place_weights(cg_jit *j, const ir_graph *g, const pass_plan *plan, int64_t ctx, ir_weight_fn weights,
                         void *weights_ctx, const char *mode, cg_pack_place *out, oc_error *e);

#endif
