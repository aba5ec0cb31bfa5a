/* q8 weights (--dtype q8): symmetric int8 in groups of 32 along K, one f16
 * scale per group and column, quantized from the checkpoint's f32/bf16/f16
 * once at load and laid out in panels for the kernels of emit/emit_matmul_q8.c.
 *
 * Quantizing: per column n and group g, a = max|w| over the group's 32
 * values (the last group zero-padded to Kp = ceil(K/32)*32), s = the smallest
 * f16 >= a/127, q = rint(w / s) in [-127, 127], so |w - q*s| <= s/2 whatever
 * the f16 rounding did. The scale is f16 (not f32) because decode is bound by
 * the bytes it reads: 32 + 2 bytes per group is 1.0625 bytes a weight, f32
 * scales would be 1.125 (6% more); rounding the scale up before quantizing
 * keeps the error bound that an f32 scale would give.
 *
 * Layout: panels of nr = 2*vw columns (as for f32, cg_panel_width), panel p
 * holding columns p*nr .. p*nr+nr-1 (the last zero-padded, scale 0); each
 * panel is G = Kp/32 group blocks of 34*nr bytes, read front to back:
 *   bytes [0, 32*nr): quad j (k = 32g+4j .. 32g+4j+3) of column c at
 *                     (j*nr + c)*4 + i holds q[c][32g+4j+i] + 128 (as uint8)
 *   bytes [32*nr, 34*nr): the nr f16 scales, column c at 32*nr + 2c.
 * The 4 bytes of a quad are what one int32 lane of vpdpbusd multiplies; the
 * +128 makes weights the unsigned operand, so the correction (-128 * sum of
 * the activation group) is per activation group, not per weight column, and
 * costs no weight bytes. */
#include <math.h>
#include <string.h>

#include "panels.h"

static int64_t groups(int64_t k) { return (k + CG_Q8_GROUP - 1) / CG_Q8_GROUP; }

int64_t cg_q8_block_bytes(int64_t nr) { return oc_quant_block_bytes(IR_I8, nr); }

size_t cg_panel_q8_bytes(const cg_panels *l, int64_t n, int64_t k) {
  return (size_t)oc_quant_matrix_bytes(IR_I8, cg_panel_width(l), n, k);
}

size_t cg_q8_row_bytes(int64_t k) { return (size_t)(groups(k) * (CG_Q8_GROUP + 8)); }

/* Exact, by bits (the quantizers call it per try: ldexpf is a call); NaN
 * and infinity never occur, the scales saturate at 65504. */
float cg_f16_value(uint16_t h) {
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits = (uint32_t)(h & 0x8000) << 16;
  float f;
  if (exp == 0) {
    f = (float)man * 0x1p-24f;
    return h & 0x8000 ? -f : f;
  }
  bits |= (exp + 112) << 23 | man << 13;
  memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t cg_f16_up(float s) {
  if (!(s > 0))
    return 0;
  if (s >= 65504.0f)
    return 0x7bff;
  if (s < 0x1p-14f) /* subnormal f16: multiples of 2^-24; 1024 is the smallest normal's bits */
    return (uint16_t)ceilf(s * 0x1p24f);
  uint32_t u;
  memcpy(&u, &s, sizeof u);
  uint32_t h = (((u >> 23) - 127 + 15) << 10) | ((u & 0x7fffff) >> 13);
  h += (u & 0x1fff) != 0; /* a carry into the exponent is still the next f16 up */
  return (uint16_t)(h > 0x7bff ? 0x7bff : h);
}

void cg_load_group(ir_dtype src, const void *w, int64_t n, int64_t k, int64_t col, int64_t g, float *out) {
  int64_t k0 = g * CG_Q8_GROUP, len = col < n ? (k - k0 < CG_Q8_GROUP ? k - k0 : CG_Q8_GROUP) : 0;
  if (src == IR_F32 && len > 0)
    memcpy(out, (const float *)w + col * k + k0, (size_t)len * sizeof *out);
  else
    for (int64_t i = 0; i < len; i++)
      out[i] = ir_load_f32(src, w, col * k + k0 + i);
  for (int64_t i = len > 0 ? len : 0; i < CG_Q8_GROUP; i++)
    out[i] = 0.0f;
}

void cg_fill_groups(const cg_panels *l, ir_dtype src, int64_t n, int64_t k, const void *w, int64_t p0, int64_t p1,
                    int64_t blk, cg_group_writer *write, void *out) {
  int64_t nr = cg_panel_width(l), G = groups(k);
  /* A column at a time, front to back: one stream of reads (nr at once
   * outrun the prefetchers), the panel's blocks staying in cache meanwhile. */
#pragma omp parallel for schedule(static)
  for (int64_t p = p0; p < p1; p++)
    for (int64_t c = 0; c < nr; c++)
      for (int64_t g = 0; g < G; g++) {
        float v[CG_Q8_GROUP];
        cg_load_group(src, w, n, k, p * nr + c, g, v);
        write((uint8_t *)out + ((p - p0) * G + g) * blk, nr, c, v);
      }
}

/* Column c's codes and scale of one group, into its block. */
static void write_q8(uint8_t *block, int64_t nr, int64_t c, const float *v) {
  float a = 0;
  for (int i = 0; i < CG_Q8_GROUP; i++)
    a = fmaxf(a, fabsf(v[i]));
  uint16_t h = cg_f16_up(a / 127.0f);
  float s = cg_f16_value(h);
  for (int i = 0; i < CG_Q8_GROUP; i++) {
    float q = s > 0 ? rintf(v[i] / s) : 0.0f;
    q = q > 127 ? 127 : q < -127 ? -127 : q;
    block[((i / 4) * nr + c) * 4 + i % 4] = (uint8_t)((int)q + 128);
  }
  memcpy(block + CG_Q8_GROUP * nr + 2 * c, &h, sizeof h);
}

void cg_panel_fill_q8(const cg_panels *l, ir_dtype src, int64_t n, int64_t k, const void *w, int64_t p0,
                      int64_t p1, void *out) {
  cg_fill_groups(l, src, n, k, w, p0, p1, cg_q8_block_bytes(cg_panel_width(l)), write_q8, out);
}

void cg_unpack_groups(const cg_panels *l, int64_t n, int64_t k, const void *packed, int64_t blk, int64_t scales_at,
                      cg_group_reader *read, int8_t *q, float *scales) {
  int64_t nr = cg_panel_width(l), G = groups(k);
  for (int64_t col = 0; col < n; col++)
    for (int64_t g = 0; g < G; g++) {
      const uint8_t *block = (const uint8_t *)packed + ((col / nr) * G + g) * blk;
      int64_t c = col % nr;
      read(block, nr, c, q + (col * G + g) * CG_Q8_GROUP);
      uint16_t h;
      memcpy(&h, block + scales_at * nr + 2 * c, sizeof h);
      scales[col * G + g] = cg_f16_value(h);
    }
}

/* Column c's codes of one group block. */
static void read_q8(const uint8_t *block, int64_t nr, int64_t c, int8_t *q) {
  for (int i = 0; i < CG_Q8_GROUP; i++)
    q[i] = (int8_t)(block[((i / 4) * nr + c) * 4 + i % 4] - 128);
}

void cg_panel_unpack_q8(const cg_panels *l, int64_t n, int64_t k, const void *packed, int8_t *q, float *scales) {
  cg_unpack_groups(l, n, k, packed, cg_q8_block_bytes(cg_panel_width(l)), CG_Q8_GROUP, read_q8, q, scales);
}
