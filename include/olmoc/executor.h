/* The plan executor: a compiled forward call as a list of steps (a kernel, how
 * to call it, its argument buffers, its work count as a function of T and P),
 * run inside one OpenMP parallel region with a static contiguous slice of each
 * step's work per thread and a barrier between steps. Kernels never reduce
 * across work items, so the results are the same bits for any thread count.
 * No LLVM here: kernels arrive as plain function pointers. */
#ifndef OLMOC_EXECUTOR_H
#define OLMOC_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "olmoc/error.h"
#include "olmoc/kernel_contract.h"

/* How a step calls its kernel (the exact C signature, see olmoc/codegen.h);
 * r0, r1 is the thread's half-open slice of the step's work. */
typedef enum rt_call {
  RT_CALL_MATMUL,    /* fn(a0, a1, y, 0, rows, r0, r1): work = output columns */
  RT_CALL_MATMUL3,   /* fn(a0, a1, a2, y, 0, rows, r0, r1) */
  RT_CALL_RANGE,     /* fn(a0, ..., a[n_args-2], y, r0, r1), all float pointers, 2..5 args */
  RT_CALL_GATHER,    /* fn(table, ids (int32), y, r0, r1) */
  RT_CALL_ATTENTION, /* fn(q, k, v, y, T, P, ctx, r0, r1) */
  RT_CALL_KV_APPEND, /* built in: rows r0..r1 of a0 (row_floats f32 each) to cache a1 at
                        position P+r (kv_heads: how the cache is laid out) */
  RT_CALL_POSITIONS, /* built in: y[r] = P + r as int32 */
  RT_CALL_SHAPED,    /* fn(a, T, P, r0, r1), a: the n_args argument addresses (output last),
                        for kernels whose shapes depend on T and P */
} rt_call;

/* Where an argument lives; its address is base + P * p_stride bytes. */
typedef enum rt_arg_kind {
  RT_ARG_ARENA,  /* `offset` bytes into the activation arena */
  RT_ARG_PTR,    /* `ptr`: a weight (mmap'ed) or a table the program owns */
  RT_ARG_CACHE,  /* the base of KV cache number `offset` */
  RT_ARG_TOKENS, /* the call's token ids, int32[T] */
} rt_arg_kind;

typedef struct rt_arg {
  rt_arg_kind kind;
  int64_t offset;
  const void *ptr;
  int64_t p_stride; /* bytes added per cached position (rope tables indexed by P), usually 0 */
  uint64_t room;    /* RT_ARG_PTR: bytes from ptr to the end of its buffer */
  bool writable;    /* RT_ARG_PTR: a scratch buffer the steps write (else read only) */
} rt_arg;

/* A count linear in the call's symbols: c + t*T + p*P. */
typedef struct rt_count {
  int64_t c, t, p;
} rt_count;


typedef struct rt_step {
  rt_call call;
  void *fn;                 /* the kernel; NULL for built-in calls */
  const rt_kernel_contract *contract; /* what the kernel may touch; NULL for built-in calls */
  rt_arg arg[RT_MAX_ARGS];  /* inputs, then the output last */
  int n_args;
  rt_count work;            /* work items split over threads: [0, work) */
  rt_count rows;            /* matmul: rows of x (M); else unused */
  int64_t grain;            /* slice boundaries are multiples of it (>= 1) */
  int64_t row_floats;       /* kv_append: floats per cache row */
  int64_t kv_heads;         /* kv_append: 0 when the cache keeps rows in position order,
                               [ctx][row_floats]; else it is head-major, [kv_heads][ctx][D]
                               with D = row_floats / kv_heads, so each head is one stream */
  const char *what;         /* the op's name, for messages and profiles */
  int layer;                /* the transformer layer it computes, -1 if none */
} rt_step;

typedef struct rt_program rt_program;
struct rt_pack_writer;

/* An empty program with an activation arena of arena_bytes (planned for calls
 * of up to max_tokens tokens) and KV caches of ctx positions. */
int rt_program_new(int64_t arena_bytes, int64_t max_tokens, int64_t ctx, rt_program **out,
                   oc_error *e);
void rt_program_free(rt_program *p);

/* A KV cache of ctx rows of row_floats values each, f32 or bf16 (not zeroed:
 * only rows < P are ever read); *index names it in args. kv_append rounds
 * what it stores in a bf16 cache to nearest even. */
int rt_program_add_cache(rt_program *p, int64_t row_floats, bool bf16, int64_t *index, oc_error *e);
/* Appends a copy of step s. */
int rt_program_add_step(rt_program *p, const rt_step *s, oc_error *e);
/* bytes of 64-byte aligned memory the program owns (tables, converted weights). */
void *rt_program_alloc(rt_program *p, size_t bytes, oc_error *e);
/* Hands the program a scratch pack (olmoc/pack.h) its arguments point into,
 * freed with it (rt_pack_abandon): packed weights in a file, not in memory. */
void rt_program_own_pack(rt_program *p, struct rt_pack_writer *w);
/* bytes of 64-byte aligned memory the program owns and its steps write while
 * they run (not zeroed: a step writes before it reads): q8's quantized rows.
 * Allocated as rt_program_alloc allocates, but a packed program records only
 * its size, and unpacking allocates it again (olmoc/aot.h). */
void *rt_program_scratch(rt_program *p, size_t bytes, oc_error *e);
/* The call's result: f32[T, cols] at `logits`; token ids must lie in [0, vocab). */
void rt_program_set_output(rt_program *p, rt_arg logits, int64_t cols, int64_t vocab);

/* Runs T tokens at the current position P with `threads` threads (< 1: all
 * cores) and advances P by T; returns the f32[T, cols] output, valid until the
 * next run, or NULL with a message (context full, token id out of range). */
const float *rt_program_run(rt_program *p, const int32_t *tokens, int64_t T, int threads,
                            oc_error *e);
int64_t rt_program_position(const rt_program *p);
int64_t rt_program_ctx(const rt_program *p);        /* positions each cache holds */
int64_t rt_program_max_tokens(const rt_program *p); /* the most tokens a call may have */
/* Forgets cached positions from P on (P <= the current position). */
void rt_program_rewind(rt_program *p, int64_t P);
int64_t rt_program_steps(const rt_program *p);
const rt_step *rt_program_step(const rt_program *p, int64_t i);
/* Step i's kernel becomes fn, bound by contract (lowering adds steps before
 * their kernels are compiled). */
void rt_program_set_kernel(rt_program *p, int64_t i, void *fn, const rt_kernel_contract *contract);

/* Whether every step keeps to its kernel's contract (olmoc/kernel_contract.h),
 * and the built-in steps and the output to theirs, for every call the
 * program accepts (1 <= T <= max_tokens, P + T <= ctx): each argument's
 * bytes within its buffer, the work within its limit, the call, argument
 * count, grain and counts what the kernel expects, all in overflow-checked
 * arithmetic. The bounds are exact for the programs lowering makes. */
int rt_program_check(const rt_program *p, oc_error *e);
/* The bytes argument i of step s may touch from its address in a call of T
 * tokens at position P (the contract evaluated; tests place buffers by it). */
int64_t rt_step_extent(const rt_program *p, const rt_step *s, int i, int64_t T, int64_t P);
/* Where argument a of p's steps points in a call at position P (the token
 * ids: NULL outside a call). */
void *rt_program_arg_address(const rt_program *p, const rt_arg *a, int64_t P);
/* Step s's kernel (not a built-in call) on the addresses a[0..n_args) for
 * work items [r0, r1) of a call of T tokens at P, with caches of ctx positions. */
void rt_step_invoke(const rt_step *s, void *const *a, int64_t T, int64_t P, int64_t ctx, int64_t r0,
                    int64_t r1);

/* Profiling: while on, every run adds each step's wall time, from its start
 * to the barrier after it as thread 0 sees it, to rt_program_step_seconds
 * ([steps]; zeroed when profiling is turned on). Off by default: it costs a
 * clock read per step. */
int rt_program_set_profiling(rt_program *p, bool on, oc_error *e);
const double *rt_program_step_seconds(const rt_program *p);

/* Threads to use by default: the cores OpenMP sees. */
int rt_default_threads(void);

#endif
