/* Quantized matmul weights, as the kernels read them and as a quantized
 * checkpoint (`olmoc quantize`, docs/formats.md) stores them: panels of nr
 * columns, each panel ceil(K/32) group blocks, a block per group of 32 along
 * K holding every column's codes and then its f16 scales. The layouts
 * themselves are codegen/panels/panel_q8.c and panel_q4.c; the sizes are
 * here because the runtime checks a quantized file's sections against them
 * without knowing codegen. Invariant: these sizes are the panels' sizes. */
#ifndef OLMOC_QUANTIZED_H
#define OLMOC_QUANTIZED_H

#include <stdint.h>

#include "olmoc/dtype.h"

#define OC_QUANT_GROUP 32 /* weights sharing one scale, along K */

/* A quantized checkpoint's tensor index: its "format" and the "version"
 * this olmoc reads and writes (a reader refuses any other). */
#define OC_QUANT_FORMAT "olmoc quantized checkpoint"
#define OC_QUANT_VERSION 1

/* Bytes of one group block of a panel nr columns wide: q8 (IR_I8) holds 32
 * one-byte codes a column, q4 (IR_Q4) 16 bytes of nibbles; both then an f16
 * scale a column. */
static inline int64_t oc_quant_block_bytes(ir_dtype wt, int64_t nr) {
  return (wt == IR_Q4 ? OC_QUANT_GROUP / 2 + 2 : OC_QUANT_GROUP + 2) * nr;
}

/* Bytes of a matrix w[n,k] in panels nr wide, or 0 if it overflows. */
static inline uint64_t oc_quant_matrix_bytes(ir_dtype wt, int64_t nr, int64_t n, int64_t k) {
  if (nr <= 0 || n <= 0 || k <= 0 || n > INT32_MAX || k > INT32_MAX)
    return 0;
  uint64_t panels = (uint64_t)((n + nr - 1) / nr), groups = (uint64_t)((k + OC_QUANT_GROUP - 1) / OC_QUANT_GROUP);
  return panels * groups * (uint64_t)oc_quant_block_bytes(wt, nr);
}

#endif
