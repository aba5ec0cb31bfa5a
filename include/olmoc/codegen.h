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
#include "olmoc/ir.h"

typedef struct cg_host {
  char cpu[64];      /* LLVM's name for the host CPU, e.g. "skylake-avx512" */
  bool avx2, fma, avx512f, avx512bf16, avx512vnni;
  char llvm_version[32];
} cg_host;

void cg_host_detect(cg_host *h);

/* ---- JIT session ---- */

typedef struct cg_jit cg_jit;

/* A JIT for the host CPU (its name and features as LLVM detects them). */
int cg_jit_new(cg_jit **out, oc_error *e);
/* A JIT for a given CPU and feature string ("haswell", "+avx2,+fma"), e.g. to
 * test the AVX2 kernels on an AVX-512 host. Code for features the host lacks
 * compiles but must not be run. */
int cg_jit_new_for_cpu(const char *cpu, const char *features, cg_jit **out, oc_error *e);
void cg_jit_free(cg_jit *j);

/* Writes each module's optimized LLVM IR to DIR/<module>.ll from now on
 * (NULL stops). The directory must exist. */
int cg_jit_set_ir_dump_dir(cg_jit *j, const char *dir, oc_error *e);

/* The address of a symbol defined by a module added to j. */
int cg_jit_lookup(cg_jit *j, const char *name, void **addr, oc_error *e);

/* Floats per vector register in the kernels this JIT emits: 16 (AVX-512) or 8. */
int cg_jit_vector_width(const cg_jit *j);

/* How many kernel modules this JIT has compiled. */
int cg_jit_compile_count(const cg_jit *j);

/* ---- kernels ----
 * A kernel is a plain C function over a range of its work; threads split the
 * ranges, kernels never spawn any. Matrices are row-major, float is f32, W is
 * the key's weight dtype (f32 or bf16). Outputs must not overlap matmul
 * inputs; rmsnorm and swiglu may run in place (y == x, r or g).
 *
 *   matmul         k(const float *x, const W *w, float *y, m0, m1, n0, n1)
 *   matmul_add     k(const float *x, const W *w, const float *r, float *y, m0, m1, n0, n1)
 *   matmul_swiglu  k(const float *x, const W *wg, const W *wu, float *y, m0, m1, n0, n1)
 *       x[M,K], w[N,K], r and y [M,N]; for m in [m0,m1), n in [n0,n1):
 *       y[m,n] = x[m].w[n] (+ r[m,n]; or silu(x[m].wg[n]) * (x[m].wu[n]))
 *   rmsnorm        k(const float *x, const float *w, float *y, row0, row1)
 *   rmsnorm_add    k(const float *x, const float *w, const float *r, float *y, row0, row1)
 *       x, r, y [rows,D], w[D]: y = (r +) w * (x * rsqrt(mean(x^2) + eps)) per row
 *   swiglu         k(const float *g, const float *u, float *y, i0, i1)
 *       y[i] = silu(g[i]) * u[i] for i in [i0,i1)
 * The int64_t range bounds are half-open. */
typedef void cg_matmul_fn(const float *x, const void *w, float *y, int64_t m0, int64_t m1,
                          int64_t n0, int64_t n1);
typedef void cg_matmul3_fn(const float *x, const void *w, const void *w2_or_r, float *y,
                           int64_t m0, int64_t m1, int64_t n0, int64_t n1);
typedef void cg_rmsnorm_fn(const float *x, const float *w, float *y, int64_t row0, int64_t row1);
typedef void cg_rmsnorm_add_fn(const float *x, const float *w, const float *r, float *y,
                               int64_t row0, int64_t row1);
typedef void cg_swiglu_fn(const float *g, const float *u, float *y, int64_t i0, int64_t i1);

typedef struct cg_kernel_key {
  ir_op op;       /* IR_MATMUL, IR_MATMUL_ADD, IR_MATMUL_SWIGLU, IR_RMSNORM, IR_RMSNORM_ADD, IR_SWIGLU */
  ir_dtype wtype; /* matmul weights: IR_F32 or IR_BF16; ignored by the others */
  int64_t k, n;   /* matmul: x[M,K] . w[N,K]^T; rmsnorm: k = row width D; else ignored */
  float eps;      /* rmsnorm: epsilon, baked into the kernel; else ignored */
} cg_kernel_key;

/* The kernel for key, compiled on first use; the same key gives the same
 * pointer, valid until cg_jit_free. Fields an op ignores do not matter. */
int cg_kernel_get(cg_jit *j, const cg_kernel_key *key, void **fn, oc_error *e);

#endif
