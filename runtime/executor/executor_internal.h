/* The executor's program, shared inside runtime/ with the code that writes a
 * program to a packed file and reads it back (program_file.c); everything
 * else goes through olmoc/executor.h. */
#ifndef OLMOC_RUNTIME_EXECUTOR_INTERNAL_H
#define OLMOC_RUNTIME_EXECUTOR_INTERNAL_H

#include "olmoc/executor.h"

/* Memory a program allocated for itself, freed with it. */
typedef struct rt_buffers {
  void **mem;    /* [n] */
  size_t *bytes; /* [n]: their sizes */
  int64_t n;
} rt_buffers;

struct rt_program {
  int64_t ctx;           /* positions every cache holds */
  int64_t max_tokens;    /* the largest T the arena was planned for */
  int64_t P;             /* positions cached so far */
  unsigned char *arena;  /* activations: [arena_bytes] */
  int64_t arena_bytes;
  void **caches;         /* [n_caches]: f32 or bf16 [ctx, cache_row[i]] */
  int64_t *cache_row, n_caches;
  bool *cache_bf16;      /* [n_caches]: the cache holds bf16 (kv_append rounds to it) */
  rt_buffers owned;      /* tables and converted weights: a packed program holds their bytes */
  rt_buffers scratch;    /* what steps write while they run (q8's quantized rows): a packed
                            program records only their sizes */
  struct rt_pack_writer *pack; /* the scratch pack holding packed weights, or NULL */
  rt_step *steps;        /* [n_steps] */
  int64_t n_steps, cap_steps;
  rt_arg output;         /* f32[T, out_cols] */
  int64_t out_cols, vocab;
  const int32_t *tokens; /* this call's ids */
  double *step_seconds;  /* [n_steps] while profiling, else NULL */
};

#endif
