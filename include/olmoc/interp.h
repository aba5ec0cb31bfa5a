/* The reference interpreter: evaluates every op naively in f32, one node at a
 * time, with a KV cache that persists across calls. It is the oracle that
 * passes and kernels are tested against, so clarity wins over speed. */
#ifndef OLMOC_INTERP_H
#define OLMOC_INTERP_H

#include "olmoc/ir.h"

typedef struct ir_binding {
  const char *name; /* an `input` node's name */
  ir_tensor value;
} ir_binding;

typedef struct ir_interp ir_interp;

/* Prepares to run g (which must verify, and must outlive the interpreter) with
 * KV caches of max_ctx positions (f32). Every weight is looked up now; its dtype
 * must be the weight node's and its dims exactly the node's. */
int ir_interp_new(const ir_graph *g, int64_t max_ctx, ir_weight_fn weights, void *ctx,
                  ir_interp **out, oc_error *e);
void ir_interp_free(ir_interp *it);

/* Runs one call on T new tokens at the current position P, then advances P by T.
 * Every `input` must be bound, with T substituted in its shape. Fails cleanly
 * when P+T would exceed max_ctx. */
int ir_interp_run(ir_interp *it, int64_t T, const ir_binding *inputs, int n_inputs, oc_error *e);

/* The f32 value of the output named `name` from the last run (valid until the
 * next run), or NULL (also after a failed run). i32 outputs are converted to
 * f32 too: exact up to 2^24 (token ids, positions). */
const ir_tensor *ir_interp_output(const ir_interp *it, const char *name);

/* Runs later calls with computed values in one arena (a memory plan) instead
 * of one allocation each: node id's value at offsets[id] bytes into it, with
 * room for bytes[id]; offsets[id] < 0 keeps its own allocation, and leaves and
 * kv_append results keep their storage whatever the offset. A reshape or
 * output placed on its input's bytes is that value without a copy; an
 * elementwise op placed on an input's bytes computes in place (element i is
 * read before it is written). arena: the caller's, 64-byte aligned, of
 * arena_bytes, outliving the interpreter; NULL: the interpreter allocates one.
 * offsets NULL: back to one allocation per value. The arrays are copied. A run
 * whose value needs more than bytes[id] fails cleanly. */
int ir_interp_use_arena(ir_interp *it, const int64_t *offsets, const int64_t *bytes,
                        int64_t arena_bytes, void *arena, oc_error *e);

int64_t ir_interp_position(const ir_interp *it); /* P */
/* Forgets cached positions from P on (P <= the current position): 0 starts over. */
void ir_interp_rewind(ir_interp *it, int64_t P);

#endif
