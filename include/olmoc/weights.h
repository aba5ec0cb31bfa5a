/* Hugging Face safetensors checkpoints: one model.safetensors, or shards listed
 * by model.safetensors.index.json. Files are mmap'ed (or, asked, read whole); every
 * header is validated as strictly as the format's reference implementation. */
#ifndef OLMOC_WEIGHTS_H
#define OLMOC_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "olmoc/dtype.h"

typedef struct rt_tensor {
  char *name;
  ir_dtype dtype;           /* F32, BF16, F16, I32 or I8 in the file */
  int rank;
  int64_t dims[IR_MAX_DIMS];
  const void *data;         /* inside the mapping of `file` */
  size_t nbytes;
  const char *file;         /* path of the file holding it */
} rt_tensor;

typedef struct rt_weights rt_weights;

/* How a checkpoint's matmul weights are stored: as its tensors say (dtype
 * IR_F32: not quantized), or quantized by `olmoc quantize` into RT_QUANTIZED_FILE
 * (dtype IR_Q4 or IR_I8): each such tensor is then [N,K] in panels `panel`
 * columns wide (olmoc/quantized.h), the others as the source stored them. */
#define RT_QUANTIZED_FILE "model.olmoc"
typedef struct rt_quantized {
  ir_dtype dtype;
  int64_t panel;
} rt_quantized;

/* path: a model directory (its model.olmoc if quantized, else the index
 * preferred over a single file), a .safetensors file, a
 * model.safetensors.index.json, or a quantized checkpoint's model.olmoc. */
int rt_weights_open(const char *path, rt_weights **out, oc_error *e);
/* The same, with read: each file read whole into memory instead of mapped
 * (--no-mmap: no page of it is ever read from the file again). */
int rt_weights_open_read(const char *path, bool read, rt_weights **out, oc_error *e);
void rt_weights_close(rt_weights *w);

const char *rt_weights_path(const rt_weights *w); /* as opened, for messages */
int rt_weights_count(const rt_weights *w);
const rt_tensor *rt_weights_at(const rt_weights *w, int i);
const rt_tensor *rt_weights_find(const rt_weights *w, const char *name);
rt_quantized rt_weights_quantized(const rt_weights *w);

/* The file's spelling of a dtype ("F32", ...), and dims as "[3,4]" into buf. */
const char *rt_safetensors_dtype_name(ir_dtype t);
char *rt_dims_str(const int64_t *dims, int rank, char *buf, size_t n);

/* An ir_weight_fn over an rt_weights (ctx): for the interpreter. */
int rt_weights_lookup(void *w, const char *name, ir_tensor *out, oc_error *e);

/* Writing safetensors files, streamed: each tensor's bytes are produced by
 * fill() when its turn comes, into one buffer reused for every tensor, so a
 * whole checkpoint never has to be in memory. */
typedef struct rt_tensor_spec {
  const char *name;
  ir_dtype dtype;
  int rank;
  int64_t dims[IR_MAX_DIMS];
} rt_tensor_spec;

/* Fills data with bytes [at, at + nbytes) of tensor `index`; a tensor is
 * asked for in order, in pieces of at most RT_FILL_PIECE bytes, each a whole
 * number of elements, so no tensor is ever whole in memory. */
typedef int (*rt_fill_fn)(void *ctx, int index, size_t at, void *data, size_t nbytes, oc_error *e);
#define RT_FILL_PIECE ((size_t)8 << 20)

/* Writes tensors[0..n) to path (atomically: see olmoc/output.h). */
int rt_safetensors_write(const char *path, const rt_tensor_spec *tensors, int n, rt_fill_fn fill,
                         void *ctx, oc_error *e);

/* Bytes of a tensor of this shape and dtype, or 0 on overflow. */
size_t rt_tensor_spec_bytes(const rt_tensor_spec *t);

/* f rounded to bf16, to nearest even; a NaN stays a (quiet) NaN. Inline, so
 * that loops over it vectorize. */
static inline uint16_t rt_bf16_round(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t)(u >> 16 | 0x40);
  return (uint16_t)((u + 0x7fffu + (u >> 16 & 1)) >> 16);
}

#endif
