/* Element types and concrete tensors: what the IR, the reference interpreter
 * and the runtime (weights, packs, the executor) all speak. Invariant: a
 * dtype's name, size and float-ness come from one table (base/dtype.c), and
 * every element of every dtype reads as f32 through ir_load_f32. */
#ifndef OLMOC_DTYPE_H
#define OLMOC_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "olmoc/error.h"

/* IR_Q4 is no element type: it marks a matmul's weights packed in 4-bit
 * panels (codegen/panels/panel_q4.c). Its size is 0, no name looks it up, and
 * no tensor the IR or the interpreter reads has it. */
typedef enum ir_dtype { IR_F32, IR_BF16, IR_F16, IR_I32, IR_I8, IR_Q4, IR_DTYPE_COUNT } ir_dtype;

const char *ir_dtype_name(ir_dtype t);   /* "f32", ... */
int ir_dtype_lookup(const char *name);   /* inverse, or -1 (never IR_Q4) */
size_t ir_dtype_size(ir_dtype t);        /* bytes per element */
bool ir_dtype_is_float(ir_dtype t);

#define IR_MAX_DIMS 4 /* the most dims a tensor has */

/* Element i of data in dtype (f32, bf16, f16, i32, i8) as a float. */
float ir_load_f32(ir_dtype dtype, const void *data, int64_t i);

/* A concrete tensor: row-major, dims[0..rank). Data is not owned. */
typedef struct ir_tensor {
  ir_dtype dtype;
  int rank;
  int64_t dims[IR_MAX_DIMS];
  const void *data;
} ir_tensor;

/* Looks up a named weight; f32, bf16 and f16 are accepted. The data must stay
 * valid for the interpreter's lifetime. */
typedef int (*ir_weight_fn)(void *ctx, const char *name, ir_tensor *out, oc_error *e);

#endif
