/* What a kernel may touch: for each argument, which kinds of memory it may be
 * and how many bytes from its address the kernel reads or writes, as a
 * function of the call's T and P, the step's work and row counts, the
 * context and the vocabulary; and how much work it may be given. The
 * compiler states it for every kernel it emits (codegen/kernel_contracts.c),
 * a model binary carries it beside each kernel's address, and a program is
 * checked against it before it runs (rt_program_check), so that no program
 * file, however crafted, makes a kernel touch memory outside its buffers.
 * Invariant: every field is an int64_t (the binary's generated table writes
 * the struct as RT_CONTRACT_WORDS numbers, codegen/aot_link.c). */
#ifndef OLMOC_KERNEL_CONTRACT_H
#define OLMOC_KERNEL_CONTRACT_H

#include <stdint.h>

#include "olmoc/error.h"

#define RT_EXTENT_FACTORS 4
#define RT_MAX_ARGS 5 /* a step's arguments, inputs then the output */

/* scale x W^w x R^r x V^v x prod_i (c_i + t_i T + p_i P + k_i ctx): W the
 * step's work count, R its row count (matmul's M), V the program's
 * vocabulary; all of it >= 0. scale 0: nothing. */
typedef struct rt_extent {
  int64_t scale;
  int64_t w, r, v; /* 0 or 1 */
  int64_t n_factors;
  int64_t factor[RT_EXTENT_FACTORS][4]; /* c, t, p, k */
} rt_extent;

/* Which memory an argument may be: a bit per rt_arg_kind. */
#define RT_KIND(kind) (INT64_C(1) << (kind))

typedef struct rt_arg_contract {
  int64_t kinds;      /* RT_KIND bits */
  int64_t writes;     /* 1: the kernel writes it (the arena, a cache or a scratch buffer, never a weight) */
  int64_t cache_row;  /* an RT_ARG_CACHE argument: values per row it must have */
  int64_t cache_bf16; /* ... and 1 when they must be bf16, 0 f32 */
  rt_extent bytes;    /* the most bytes touched from the argument's address */
} rt_arg_contract;

typedef struct rt_kernel_contract {
  int64_t call;    /* the rt_call the step must make */
  int64_t n_args;  /* its argument count */
  int64_t grain;   /* the step's grain (matmul: the panel width; else 1) */
  int64_t limited; /* 1: the work count must stay within work_limit */
  rt_extent work_limit;
  rt_arg_contract arg[RT_MAX_ARGS];
} rt_kernel_contract;

#define RT_CONTRACT_WORDS ((int)(sizeof(rt_kernel_contract) / sizeof(int64_t)))

#endif
