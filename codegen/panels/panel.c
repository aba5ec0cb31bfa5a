/* Matmul weights in the layout the kernels read (emit_matmul.c): w[N,K] as
 * panels of nr = 2*vw columns, panel p holding columns p*nr .. p*nr+nr-1 (the
 * last one zero-padded), so a kernel reads a panel front to back. Three
 * layouts of a panel:
 *   f32: K rows of nr weights.
 *   bf16: K rows of vw 32-bit words, word c holding column c in its low 16
 *     bits and column vw + c in its high 16 bits, so both widen to f32 with
 *     one shift or one mask.
 *   bf16 in k pairs (--compute bf16, cg_jit_set_bf16_compute): ceil(K/2)
 *     rows of nr words, word c holding column c at k = 2i (low) and k = 2i+1
 *     (high; 0 past K), the pair one vdpbf16ps lane multiplies.
 * Panels are filled once, at load (or when olmoc compile writes them into a
 * packed file, a range at a time; panel_place.c). bf16 panels filled from
 * f32 or f16 weights hold them rounded to nearest even (rt_bf16_round), the
 * bits a bf16 checkpoint converted from them holds. */
#include <stdint.h>
#include <string.h>

#include "olmoc/weights.h"
#include "panels.h"

int64_t cg_panel_width(const cg_panels *l) { return 2 * l->vw; }

/* bf16 weights go in k pairs in this session. */
static bool pairs(const cg_panels *l, ir_dtype wt) { return wt == IR_BF16 && l->bf16_pairs; }

size_t cg_panel_bytes(const cg_panels *l, ir_dtype wt, int64_t k) {
  int64_t rows = pairs(l, wt) ? (k + 1) / 2 * 2 : k;
  return (size_t)(cg_panel_width(l) * rows) * (wt == IR_BF16 ? 2 : 4);
}

typedef enum layout { F32, BF16_HALVES, BF16_PAIRS } layout;

/* Where weight (k, column c of the panel) goes, in elements from the panel's start. */
static inline int64_t slot(layout l, int64_t k, int64_t c, int64_t nr, int64_t vw) {
  switch (l) {
  case BF16_HALVES: return k * nr + (c < vw ? 2 * c : 2 * (c - vw) + 1);
  case BF16_PAIRS: return (k - k % 2) * nr + 2 * c + k % 2;
  default: return k * nr + c;
  }
}

/* A source weight as the panel stores it: the same bits, or rounded to bf16. */
static inline uint32_t same32(uint32_t x) { return x; }
static inline uint16_t same16(uint16_t x) { return x; }
static inline uint16_t bf16_of_f32(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return rt_bf16_round(f);
}
static inline uint16_t bf16_of_f16(uint16_t h) { return rt_bf16_round(ir_load_f32(IR_F16, &h, 0)); }

/* Panel p of w, T being the panel's storage type (uint32_t for f32 bits,
 * uint16_t for bf16) and S the source's, each weight stored as CONV makes
 * it, in blocks of 16 k so that the nr rows read and the 16 panel rows
 * written stay in L1; kp is K rounded up to the layout's rows. */
#define PACK_PANEL(T, S, CONV, l, w, out, n, k, kp, nr, vw, p, first)                                \
  do {                                                                                              \
    T *panel = (T *)(out) + ((p) - (first)) * (kp) * (nr);                                          \
    for (int64_t k0 = 0; k0 < (kp); k0 += 16)                                                       \
      for (int64_t c = 0; c < (nr); c++) {                                                          \
        int64_t col = (p) * (nr) + c, k1 = k0 + 16 < (kp) ? k0 + 16 : (kp);                         \
        const S *from = (const S *)(w) + col * (k);                                                 \
        for (int64_t kk = k0; kk < k1; kk++)                                                        \
          panel[slot(l, kk, c, nr, vw)] = col < (n) && kk < (k) ? CONV(from[kk]) : 0;               \
      }                                                                                             \
  } while (0)

void cg_panel_fill(const cg_panels *pl, ir_dtype wt, ir_dtype src, int64_t n, int64_t k, const void *w, int64_t p0,
                   int64_t p1, void *out) {
  int64_t nr = cg_panel_width(pl), vw = pl->vw;
  layout l = wt != IR_BF16 ? F32 : pairs(pl, wt) ? BF16_PAIRS : BF16_HALVES;
  int64_t kp = l == BF16_PAIRS ? (k + 1) / 2 * 2 : k;
#pragma omp parallel for schedule(static)
  for (int64_t p = p0; p < p1; p++) {
    if (wt != IR_BF16)
      PACK_PANEL(uint32_t, uint32_t, same32, l, w, out, n, k, kp, nr, vw, p, p0);
    else if (src == IR_F32)
      PACK_PANEL(uint16_t, uint32_t, bf16_of_f32, l, w, out, n, k, kp, nr, vw, p, p0);
    else if (src == IR_F16)
      PACK_PANEL(uint16_t, uint16_t, bf16_of_f16, l, w, out, n, k, kp, nr, vw, p, p0);
    else
      PACK_PANEL(uint16_t, uint16_t, same16, l, w, out, n, k, kp, nr, vw, p, p0);
  }
}
