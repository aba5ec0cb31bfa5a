/* The matmul weights' panel layouts (panel.c: f32 and bf16; panel_q8.c: q8;
 * panel_q4.c: q4),
 * never seen outside codegen/: what a panel holds and how a range of panels
 * is filled from a checkpoint's matrix. Invariant: these know a session only
 * through cg_panels, and fill the same bits whatever the range split. */
#ifndef OLMOC_CG_PANELS_H
#define OLMOC_CG_PANELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "olmoc/codegen.h"

/* A session's panel layout: panels of nr = 2*vw columns; bf16 in k pairs
 * (--compute bf16) or in halves. */
typedef struct cg_panels {
  int vw;
  bool bf16_pairs;
} cg_panels;

/* nr, the columns of one panel. */
int64_t cg_panel_width(const cg_panels *l);
/* Bytes of one panel of a matrix of K columns in wt (f32 or bf16). */
size_t cg_panel_bytes(const cg_panels *l, ir_dtype wt, int64_t k);
/* Panels [p0, p1) of w[N,K] in wt (f32 or bf16), from out on; w is in src,
 * which is wt, or (wt bf16) f32 or f16 rounded to nearest even. */
void cg_panel_fill(const cg_panels *l, ir_dtype wt, ir_dtype src, int64_t n, int64_t k, const void *w, int64_t p0,
                   int64_t p1, void *out);

/* q8: bytes of one group block of a panel nr wide, and of a matrix's panels;
 * panels [p0, p1) of w[N,K] (f32, bf16 or f16) quantized; a matrix's panels
 * read back as q[N,Kp] and scales[N,G]. */
int64_t cg_q8_block_bytes(int64_t nr);
size_t cg_panel_q8_bytes(const cg_panels *l, int64_t n, int64_t k);
void cg_panel_fill_q8(const cg_panels *l, ir_dtype src, int64_t n, int64_t k, const void *w, int64_t p0,
                      int64_t p1, void *out);
void cg_panel_unpack_q8(const cg_panels *l, int64_t n, int64_t k, const void *packed, int8_t *q, float *scales);

/* q4: the same, in blocks of 18*nr bytes (4-bit codes, f16 scales). */
int64_t cg_q4_block_bytes(int64_t nr);
size_t cg_panel_q4_bytes(const cg_panels *l, int64_t n, int64_t k);
void cg_panel_fill_q4(const cg_panels *l, ir_dtype src, int64_t n, int64_t k, const void *w, int64_t p0,
                      int64_t p1, void *out);
void cg_panel_unpack_q4(const cg_panels *l, int64_t n, int64_t k, const void *packed, int8_t *q, float *scales);

/* Shared by the quantized layouts: the f16 value of h; the smallest f16 >= s
 * for s >= 0 (0 for NaN, saturating at 65504); column col's group g of
 * w[N,K] (zero past k or n) as f32. */
float cg_f16_value(uint16_t h);
uint16_t cg_f16_up(float s);
void cg_load_group(ir_dtype src, const void *w, int64_t n, int64_t k, int64_t col, int64_t g, float *out);
/* Panels [p0, p1) of w[N,K] in group blocks of blk bytes, from out on: write
 * puts column c's group v (32 values as f32) into its block, for every
 * column and group, on the OpenMP threads. */
typedef void cg_group_writer(uint8_t *block, int64_t nr, int64_t c, const float *v);
void cg_fill_groups(const cg_panels *l, ir_dtype src, int64_t n, int64_t k, const void *w, int64_t p0, int64_t p1,
                    int64_t blk, cg_group_writer *write, void *out);
/* The inverse, for a whole matrix: read puts column c's 32 codes of a block
 * into q; the f16 scales start scales_at*nr bytes into each block. Out:
 * q[N,Kp] and scales[N,G]. */
typedef void cg_group_reader(const uint8_t *block, int64_t nr, int64_t c, int8_t *q);
void cg_unpack_groups(const cg_panels *l, int64_t n, int64_t k, const void *packed, int64_t blk, int64_t scales_at,
                      cg_group_reader *read, int8_t *q, float *scales);

#endif
