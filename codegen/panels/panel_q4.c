/* q4 weights (--dtype q4): 4-bit integers in groups of 32 along K, one f16
 * scale per group and column, quantized from the checkpoint's f32/bf16/f16
 * once (at load or while compiling) and laid out in panels for the q8
 * kernels of emit/emit_matmul_q8.c, which read them as int8 in registers.
 *
 * Quantizing: per column n and group g (the last zero-padded to Kp), the
 * scale s (f16, of either sign) and q = clamp(rint(w / s), -8, 7) minimise
 * the group's squared error sum (w - q*s)^2 over a set of candidates: s =
 * a / t for the value a of largest magnitude and t in CANDIDATES (t = -8 is
 * plain round-to-nearest, the most negative code on the largest value), each
 * also refitted by least squares (s' = sum w*q / sum q^2 for its q). The
 * search costs about 20 passes over a group; docs/numerics.md has what it
 * buys in perplexity over plain round-to-nearest.
 *
 * Layout: panels of nr = 2*vw columns as for q8; each panel is G = Kp/32
 * group blocks of 18*nr bytes:
 *   bytes [0, 16*nr): pair j (0..3) of column c at (j*nr + c)*4 + i holds
 *                     q[c][32g+4j+i] + 8 in its low nibble and
 *                     q[c][32g+16+4j+i] + 8 in its high nibble
 *   bytes [16*nr, 18*nr): the nr f16 scales, column c at 16*nr + 2c.
 * So one 64-byte load gives the kernel two quads of vpdpbusd's unsigned
 * operand for 16 columns (a mask and a shift apart), and the +8 makes the
 * correction per activation group (-8 * its sum), as +128 does for q8. */
#include <math.h>
#include <string.h>

#include "panels.h"

enum { PAIRS = CG_Q8_GROUP / 8 };

static const float CANDIDATES[] = {-8.0f, -7.5f, -7.0f, -6.5f, 7.0f, 6.5f, 6.0f};

static int64_t groups(int64_t k) { return (k + CG_Q8_GROUP - 1) / CG_Q8_GROUP; }

int64_t cg_q4_block_bytes(int64_t nr) { return (CG_Q8_GROUP / 2 + 2) * nr; }

size_t cg_panel_q4_bytes(const cg_panels *l, int64_t n, int64_t k) {
  int64_t nr = cg_panel_width(l), panels = (n + nr - 1) / nr;
  return (size_t)(panels * groups(k) * cg_q4_block_bytes(nr));
}

/* f16 h of s, rounded to nearest in magnitude (0 for 0 or NaN). */
static uint16_t f16_near(float s) {
  float a = fabsf(s);
  uint16_t h = cg_f16_up(a);
  if (h && cg_f16_value((uint16_t)(h - 1)) >= a - (cg_f16_value(h) - a))
    h--; /* the f16 below is at least as near */
  return h && s < 0 ? (uint16_t)(h | 0x8000) : h;
}

/* q for v under scale s, and the squared error. */
static double quantize(const float *v, float s, int8_t *q) {
  double err = 0;
  float inv = s != 0 ? 1.0f / s : 0.0f;
  for (int i = 0; i < CG_Q8_GROUP; i++) {
    float r = rintf(v[i] * inv);
    r = r > 7 ? 7 : r < -8 ? -8 : r;
    q[i] = (int8_t)r;
    double d = (double)v[i] - (double)r * s;
    err += d * d;
  }
  return err;
}

/* Quantizes v under scale h into q; keeps h in *best (and q in best_q) when
 * its error is the lowest so far. */
static void try_scale(const float *v, uint16_t h, int8_t *q, uint16_t *best, double *best_err, int8_t *best_q) {
  double err = quantize(v, cg_f16_value(h), q);
  if (err < *best_err) {
    *best_err = err;
    *best = h;
    memcpy(best_q, q, CG_Q8_GROUP);
  }
}

/* The scale (f16) and codes of one group of 32 values. */
static uint16_t quantize_group(const float *v, int8_t *q) {
  float a = 0;
  for (int i = 0; i < CG_Q8_GROUP; i++)
    if (fabsf(v[i]) > fabsf(a))
      a = v[i];
  uint16_t best = 0;
  double best_err = INFINITY;
  memset(q, 0, CG_Q8_GROUP);
  if (a == 0 || !isfinite(a))
    return 0;
  for (size_t c = 0; c < sizeof CANDIDATES / sizeof *CANDIDATES; c++) {
    int8_t cq[CG_Q8_GROUP], refit_q[CG_Q8_GROUP];
    try_scale(v, f16_near(a / CANDIDATES[c]), cq, &best, &best_err, q);
    double wq = 0, qq = 0;
    for (int i = 0; i < CG_Q8_GROUP; i++)
      wq += (double)v[i] * cq[i], qq += (double)cq[i] * cq[i];
    if (qq > 0)
      try_scale(v, f16_near((float)(wq / qq)), refit_q, &best, &best_err, q);
  }
  return best;
}

void cg_panel_fill_q4(const cg_panels *l, ir_dtype src, int64_t n, int64_t k, const void *w, int64_t p0,
                      int64_t p1, void *out) {
  int64_t nr = cg_panel_width(l), G = groups(k), blk = cg_q4_block_bytes(nr);
#pragma omp parallel for schedule(static)
  for (int64_t p = p0; p < p1; p++)
    for (int64_t g = 0; g < G; g++) {
      uint8_t *block = (uint8_t *)out + ((p - p0) * G + g) * blk;
      for (int64_t c = 0; c < nr; c++) {
        float v[CG_Q8_GROUP];
        int8_t q[CG_Q8_GROUP];
        cg_load_group(src, w, n, k, p * nr + c, g, v);
        uint16_t h = quantize_group(v, q);
        for (int j = 0; j < PAIRS; j++)
          for (int i = 0; i < 4; i++)
            block[(j * nr + c) * 4 + i] =
                (uint8_t)((q[4 * j + i] + 8) | (q[CG_Q8_GROUP / 2 + 4 * j + i] + 8) << 4);
        memcpy(block + CG_Q8_GROUP / 2 * nr + 2 * c, &h, sizeof h);
      }
    }
}

void cg_panel_unpack_q4(const cg_panels *l, int64_t n, int64_t k, const void *packed, int8_t *q, float *scales) {
  int64_t nr = cg_panel_width(l), G = groups(k), blk = cg_q4_block_bytes(nr);
  for (int64_t col = 0; col < n; col++)
    for (int64_t g = 0; g < G; g++) {
      const uint8_t *block = (const uint8_t *)packed + ((col / nr) * G + g) * blk;
      int64_t c = col % nr;
      int8_t *out = q + col * G * CG_Q8_GROUP + g * CG_Q8_GROUP;
      for (int j = 0; j < PAIRS; j++)
        for (int i = 0; i < 4; i++) {
          uint8_t b = block[(j * nr + c) * 4 + i];
          out[4 * j + i] = (int8_t)((b & 15) - 8);
          out[CG_Q8_GROUP / 2 + 4 * j + i] = (int8_t)((b >> 4) - 8);
        }
      uint16_t h;
      memcpy(&h, block + CG_Q8_GROUP / 2 * nr + 2 * c, sizeof h);
      scales[col * G + g] = cg_f16_value(h);
    }
}
