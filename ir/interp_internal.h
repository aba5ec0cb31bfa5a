/* Shared between the interpreter's driver (interp.c) and its op kernels
 * (interp_ops.c). A value is a concrete tensor whose dims are its node's type
 * evaluated at this call's T and P; computed float values are stored as f32,
 * i32/i8 values keep their dtype, leaves (weights, inputs) keep the caller's. */
#ifndef OLMOC_IR_INTERP_INTERNAL_H
#define OLMOC_IR_INTERP_INTERNAL_H

#include "olmoc/interp.h"

typedef struct ir_value {
  ir_tensor t; /* what the ops read; t.data points into buf or at borrowed memory */
  void *buf;   /* owned storage, or NULL when t.data is borrowed (weight, input, cache) */
  bool live;   /* computed in this call and not yet freed */
} ir_value;

/* Computes node n (any op that is neither a leaf nor kv_append/output) from its
 * input values into out, whose dims, dtype and storage are already set. Fails
 * only on data errors (a gather id outside the table). */
int interp_eval(const ir_node *n, const ir_value *a, const ir_value *b, int64_t P, ir_value *out,
                oc_error *e);

/* A primitive elementwise op (ops.h) on f32 operands, in double: the caller
 * rounds once to f32. y is ignored by unary ops. */

/* Computes a fused op (IR_FUSED) from its inputs' values in[0..arity) into
 * out, exactly as its primitive subgraph would: the same f32 roundings, the
 * same double sums in the same order. Fails only when out of memory. */
int interp_eval_fused(const ir_node *n, const ir_value *const *in, int64_t P, ir_value *out,
                      oc_error *e);

/* n elements of src starting at element `from`, written to dst (dtype out) at
 * element `to`: a byte copy when the dtypes agree, else a conversion to f32. */
void interp_copy(ir_dtype out, void *dst, int64_t to, const ir_tensor *src, int64_t from, int64_t n);

#endif
