/* Matmul weights in the layout the kernels read (emit_matmul.c): w[N,K] as
 * panels of nr = 2*vw columns, panel p holding columns p*nr .. p*nr+nr-1 (the
 * last one zero-padded), each panel K rows of nr weights, so a kernel reads a
 * panel front to back. A bf16 panel row interleaves its halves, column c in
 * the low 16 bits of word c and column vw + c in the high 16 bits, so both
 * widen to f32 with one shift or one mask. Packing runs once, at load (or
 * when olmoc compile writes the panels into a packed file, a range at a time). */
#include <stdint.h>

#include "cg_internal.h"

int64_t cg_matmul_panel(const cg_jit *j) { return 2 * j->vw; }

size_t cg_packed_bytes(const cg_jit *j, ir_dtype wt, int64_t n, int64_t k) {
  int64_t nr = cg_matmul_panel(j), panels = (n + nr - 1) / nr;
  if (wt == IR_I8)
    return cg_q8_packed_bytes(j, n, k);
  return (size_t)(panels * nr * k) * (wt == IR_BF16 ? 2 : 4);
}

/* Panel p of w, T being the weights' storage type (uint32_t for f32 bits,
 * uint16_t for bf16), in blocks of 16 k so that the nr rows read and the 16
 * panel rows written stay in L1. */
#define PACK_PANEL(T, w, out, n, k, nr, vw, p, first, interleave)                      \
  do {                                                                                  \
    T *panel = (T *)(out) + ((p) - (first)) * (k) * (nr);                               \
    for (int64_t k0 = 0; k0 < (k); k0 += 16)                                            \
      for (int64_t c = 0; c < (nr); c++) {                                              \
        int64_t col = (p) * (nr) + c, k1 = k0 + 16 < (k) ? k0 + 16 : (k);               \
        T *to = panel + (!(interleave) ? c : c < (vw) ? 2 * c : 2 * (c - (vw)) + 1);    \
        const T *from = (const T *)(w) + col * (k);                                     \
        for (int64_t kk = k0; kk < k1; kk++)                                            \
          to[kk * (nr)] = col < (n) ? from[kk] : 0;                                     \
      }                                                                                 \
  } while (0)

void cg_pack_panels(const cg_jit *j, ir_dtype wt, int64_t n, int64_t k, const void *w, int64_t p0,
                    int64_t p1, void *out) {
  int64_t nr = cg_matmul_panel(j), vw = j->vw;
#pragma omp parallel for schedule(static)
  for (int64_t p = p0; p < p1; p++) {
    if (wt == IR_BF16)
      PACK_PANEL(uint16_t, w, out, n, k, nr, vw, p, p0, 1);
    else
      PACK_PANEL(uint32_t, w, out, n, k, nr, vw, p, p0, 0);
  }
}

void cg_pack_matrix(const cg_jit *j, ir_dtype wt, int64_t n, int64_t k, const void *w, void *out) {
  int64_t nr = cg_matmul_panel(j);
  cg_pack_panels(j, wt, n, k, w, 0, (n + nr - 1) / nr, out);
}
