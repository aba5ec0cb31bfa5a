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
 * search costs 8 passes over a group, on SSE2; docs/numerics.md has what
 * it buys over plain round-to-nearest.
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
#include <emmintrin.h>
#include <math.h>
#include <string.h>

#include "panels.h"

enum { PAIRS = CG_Q8_GROUP / 8 };

static const float CANDIDATES[] = {-8.0f, -7.25f, 7.0f, 6.5f};

int64_t cg_q4_block_bytes(int64_t nr) { return oc_quant_block_bytes(IR_Q4, nr); }

size_t cg_panel_q4_bytes(const cg_panels *l, int64_t n, int64_t k) {
  return (size_t)oc_quant_matrix_bytes(IR_Q4, cg_panel_width(l), n, k);
}

/* f16 of s, rounded to nearest even (0 for NaN, saturating at 65504). */
static uint16_t f16_near(float s) {
  uint32_t u;
  memcpy(&u, &s, sizeof u);
  uint16_t sign = (uint16_t)(u >> 16 & 0x8000), h;
  float a = fabsf(s);
  u &= 0x7fffffff;
  if (!(a > 0))
    return 0;
  if (a < 0x1p-14f) /* subnormal: multiples of 2^-24, rounded as cvtss2si does */
    h = (uint16_t)_mm_cvtss_si32(_mm_set_ss(a * 0x1p24f));
  else if (a >= 65504.0f)
    h = 0x7bff;
  else {
    uint32_t r = (u - (112u << 23) + 0xfff + ((u >> 13) & 1)) >> 13; /* a carry lands in the exponent */
    h = (uint16_t)(r > 0x7bff ? 0x7bff : r);
  }
  return (uint16_t)(h | sign);
}

/* q for v under scale s; returns the squared error and sets the sums a
 * least-squares refit takes (sum v*q, sum q^2). Four values a step on SSE2
 * (baseline x86-64), cvtps2dq rounding to nearest even as rintf does; the
 * codes clamped before rounding give the same codes, the bounds being
 * integers. Each sum adds four lanes, then the lanes, always in that order. */
static float quantize(const float *v, float s, int8_t *q, float *vq, float *qq) {
  __m128 inv = _mm_set1_ps(s != 0 ? 1.0f / s : 0.0f), sv = _mm_set1_ps(s);
  __m128 lo = _mm_set1_ps(-8.0f), hi = _mm_set1_ps(7.0f), sums[3] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps()};
  for (int i = 0; i < CG_Q8_GROUP; i += 8) {
    __m128i r[2];
    for (int h = 0; h < 2; h++) {
      __m128 x = _mm_loadu_ps(v + i + 4 * h);
      r[h] = _mm_cvtps_epi32(_mm_min_ps(_mm_max_ps(_mm_mul_ps(x, inv), lo), hi));
      __m128 rf = _mm_cvtepi32_ps(r[h]), d = _mm_sub_ps(x, _mm_mul_ps(rf, sv));
      sums[0] = _mm_add_ps(sums[0], _mm_mul_ps(d, d));
      sums[1] = _mm_add_ps(sums[1], _mm_mul_ps(x, rf));
      sums[2] = _mm_add_ps(sums[2], _mm_mul_ps(rf, rf));
    }
    _mm_storel_epi64((__m128i *)(void *)(q + i), _mm_packs_epi16(_mm_packs_epi32(r[0], r[1]), _mm_setzero_si128()));
  }
  float lanes[3][4];
  for (int k = 0; k < 3; k++)
    _mm_storeu_ps(lanes[k], sums[k]);
  *vq = (lanes[1][0] + lanes[1][1]) + (lanes[1][2] + lanes[1][3]);
  *qq = (lanes[2][0] + lanes[2][1]) + (lanes[2][2] + lanes[2][3]);
  return (lanes[0][0] + lanes[0][1]) + (lanes[0][2] + lanes[0][3]);
}

/* Quantizes v under scale h into q (and its refit sums); keeps h in *best
 * (and q in best_q) when its error is the lowest so far. */
static void try_scale(const float *v, uint16_t h, int8_t *q, float *vq, float *qq, uint16_t *best, float *best_err,
                      int8_t *best_q) {
  float err = quantize(v, cg_f16_value(h), q, vq, qq);
  if (err < *best_err) {
    *best_err = err;
    *best = h;
    memcpy(best_q, q, CG_Q8_GROUP);
  }
}

/* The scale (f16) and codes of one group of 32 values. */
static uint16_t quantize_group(const float *v, int8_t *q) {
  __m128 mx = _mm_loadu_ps(v), mn = mx;
  for (int i = 4; i < CG_Q8_GROUP; i += 4)
    mx = _mm_max_ps(mx, _mm_loadu_ps(v + i)), mn = _mm_min_ps(mn, _mm_loadu_ps(v + i));
  float hi[4], lo[4];
  _mm_storeu_ps(hi, mx), _mm_storeu_ps(lo, mn);
  float top = fmaxf(fmaxf(hi[0], hi[1]), fmaxf(hi[2], hi[3])), bottom = fminf(fminf(lo[0], lo[1]), fminf(lo[2], lo[3]));
  float a = top >= -bottom ? top : bottom; /* the value of largest magnitude (the positive one on a tie) */
  uint16_t best = 0;
  float best_err = INFINITY;
  memset(q, 0, CG_Q8_GROUP);
  if (a == 0 || !isfinite(a))
    return 0;
  for (size_t c = 0; c < sizeof CANDIDATES / sizeof *CANDIDATES; c++) {
    int8_t cq[CG_Q8_GROUP], refit_q[CG_Q8_GROUP];
    float vq, qq, unused[2];
    try_scale(v, f16_near(a / CANDIDATES[c]), cq, &vq, &qq, &best, &best_err, q);
    if (qq > 0)
      try_scale(v, f16_near(vq / qq), refit_q, &unused[0], &unused[1], &best, &best_err, q);
  }
  return best;
}

/* Column c's codes and scale of one group, into its block. */
static void write_q4(uint8_t *block, int64_t nr, int64_t c, const float *v) {
  int8_t q[CG_Q8_GROUP];
  uint16_t h = quantize_group(v, q);
  for (int j = 0; j < PAIRS; j++)
    for (int i = 0; i < 4; i++)
      block[(j * nr + c) * 4 + i] = (uint8_t)((q[4 * j + i] + 8) | (q[CG_Q8_GROUP / 2 + 4 * j + i] + 8) << 4);
  memcpy(block + CG_Q8_GROUP / 2 * nr + 2 * c, &h, sizeof h);
}

void cg_panel_fill_q4(const cg_panels *l, ir_dtype src, int64_t n, int64_t k, const void *w, int64_t p0,
                      int64_t p1, void *out) {
  cg_fill_groups(l, src, n, k, w, p0, p1, cg_q4_block_bytes(cg_panel_width(l)), write_q4, out);
}

/* Column c's codes of one group block. */
static void read_q4(const uint8_t *block, int64_t nr, int64_t c, int8_t *q) {
  for (int j = 0; j < PAIRS; j++)
    for (int i = 0; i < 4; i++) {
      uint8_t b = block[(j * nr + c) * 4 + i];
      q[4 * j + i] = (int8_t)((b & 15) - 8);
      q[CG_Q8_GROUP / 2 + 4 * j + i] = (int8_t)((b >> 4) - 8);
    }
}

void cg_panel_unpack_q4(const cg_panels *l, int64_t n, int64_t k, const void *packed, int8_t *q, float *scales) {
  cg_unpack_groups(l, n, k, packed, cg_q4_block_bytes(cg_panel_width(l)), CG_Q8_GROUP / 2, read_q4, q, scales);
}
