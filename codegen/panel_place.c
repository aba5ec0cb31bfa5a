/* Panel placement: a session's matmul weights in its panel layout (the
 * public cg_pack_matrix and friends, over panels/), and where the panels go:
 * into anonymous memory the program owns
 * (fastest: 2 MiB pages), or into a pack's sections, streamed a few MiB of
 * panels at a time and mapped back read-only. The pack is the one `olmoc
 * compile` writes, or, for a JIT whose weights do not fit in memory, a
 * scratch pack in a deleted file: its pages are the page cache's, which the
 * kernel evicts and reads again from disk as it needs, so a model larger
 * than memory runs (disk-bound) instead of meeting the OOM killer. Either
 * way the panels hold the same bits; weight_placement.c decides which. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"
#include "olmoc/alloc.h"

#define PIECE ((size_t)4 << 20) /* bytes of panels packed and written at a time */

/* The session's panel layout (panels/panels.h). */
static cg_panels panels_of(const cg_jit *j) { return (cg_panels){.vw = j->vw, .bf16_pairs = j->bf16_compute}; }

int64_t cg_matmul_panel(const cg_jit *j) { return 2 * (int64_t)j->vw; }

size_t cg_packed_bytes(const cg_jit *j, ir_dtype wt, int64_t n, int64_t k) {
  cg_panels l = panels_of(j);
  int64_t nr = cg_panel_width(&l), panels = (n + nr - 1) / nr;
  return wt == IR_I8   ? cg_panel_q8_bytes(&l, n, k)
         : wt == IR_Q4 ? cg_panel_q4_bytes(&l, n, k)
                       : (size_t)panels * cg_panel_bytes(&l, wt, k);
}

/* Panels [p0, p1) of w (in src) in wt (IR_I8, IR_Q4: quantized from src;
 * bf16: rounded from an f32 or f16 src). */
static void fill_range(const cg_jit *j, ir_dtype wt, ir_dtype src, int64_t n, int64_t k, const void *w, int64_t p0,
                       int64_t p1, void *out) {
  cg_panels l = panels_of(j);
  if (wt == IR_I8)
    cg_panel_fill_q8(&l, src, n, k, w, p0, p1, out);
  else if (wt == IR_Q4)
    cg_panel_fill_q4(&l, src, n, k, w, p0, p1, out);
  else
    cg_panel_fill(&l, wt, src, n, k, w, p0, p1, out);
}

void cg_pack_matrix(const cg_jit *j, ir_dtype wt, int64_t n, int64_t k, const void *w, void *out) {
  cg_panels l = panels_of(j);
  cg_panel_fill(&l, wt, wt, n, k, w, 0, (n + cg_panel_width(&l) - 1) / cg_panel_width(&l), out);
}

void cg_pack_quantized(const cg_jit *j, ir_dtype wt, ir_dtype src, int64_t n, int64_t k, const void *w, void *out) {
  int64_t nr = cg_matmul_panel(j);
  fill_range(j, wt, src, n, k, w, 0, (n + nr - 1) / nr, out);
}

void cg_unpack_quantized(const cg_jit *j, ir_dtype wt, int64_t n, int64_t k, const void *packed, int8_t *q,
                         float *scales) {
  cg_panels l = panels_of(j);
  (wt == IR_Q4 ? cg_panel_unpack_q4 : cg_panel_unpack_q8)(&l, n, k, packed, q, scales);
}

static void pack_range(const cg_jit *j, ir_dtype wt, const ir_tensor *w, int64_t p0, int64_t p1, void *out) {
  fill_range(j, wt, w->dtype, w->dims[0], w->dims[1], w->data, p0, p1, out);
}

/* Matrix w packed piece by piece into a new buffer section `section` of
 * sink, each piece's source rows given back once written (when the sink lent
 * them, an AOT checkpoint's mapping). */
static int write_packed(const cg_jit *j, rt_pack_writer *sink, const char *section, const ir_tensor *w, ir_dtype wt,
                        int *index, oc_error *e) {
  int64_t n = w->dims[0], k = w->dims[1], nr = cg_matmul_panel(j), panels = (n + nr - 1) / nr;
  size_t elem = ir_dtype_size(w->dtype), from = (size_t)(nr * k) * elem; /* a panel's source bytes */
  size_t panel = cg_packed_bytes(j, wt, nr, k), larger = from > panel ? from : panel;
  int64_t per = larger < PIECE ? (int64_t)(PIECE / larger) : 1;
  void *buf = oc_malloc((size_t)per * panel);
  int rc = buf ? rt_pack_begin(sink, RT_PACK_BUFFER, section, index, e) : oc_fail(e, "out of memory");
  for (int64_t p0 = 0; !rc && p0 < panels; p0 += per) {
    int64_t p1 = p0 + per < panels ? p0 + per : panels, r1 = p1 * nr < n ? p1 * nr : n;
    pack_range(j, wt, w, p0, p1, buf);
    rc = rt_pack_write(sink, buf, (size_t)(p1 - p0) * panel, e);
    rt_pack_release(sink, (const unsigned char *)w->data + (size_t)(p0 * nr * k) * elem,
                    (size_t)((r1 - p0 * nr) * k) * elem);
  }
  free(buf);
  return rc || rt_pack_end(sink, e) ? -1 : 0;
}

/* The same into j's sink, the section mapped back. */
static int stream_packed(cg_jit *j, const char *name, const ir_tensor *w, ir_dtype wt, const void **out,
                         oc_error *e) {
  char section[96];
  snprintf(section, sizeof section, "%s, packed", name);
  int index;
  if (write_packed(j, j->sink, section, w, wt, &index, e) || !(*out = rt_pack_map(j->sink, index, e)))
    return oc_wrap(e, "packing %s", name);
  return 0;
}

int cg_write_quantized(const cg_jit *j, rt_pack_writer *out, const char *name, const ir_tensor *w, ir_dtype wt,
                       int *index, oc_error *e) {
  if (w->rank != 2 || (wt != IR_I8 && wt != IR_Q4))
    return oc_fail(e, "%s: only matrices are quantized, to q8 or q4", name);
  return write_packed(j, out, name, w, wt, index, e) ? oc_wrap(e, "quantizing %s", name) : 0;
}

int cg_packed_weight(cg_jit *j, rt_program *p, const char *name, const ir_tensor *w, ir_dtype wt,
                     const void **out, oc_error *e) {
  if (j->sink)
    return stream_packed(j, name, w, wt, out, e);
  int64_t nr = cg_matmul_panel(j);
  void *y = rt_program_alloc(p, cg_packed_bytes(j, wt, w->dims[0], w->dims[1]), e);
  if (!y)
    return -1;
  pack_range(j, wt, w, 0, (w->dims[0] + nr - 1) / nr, y);
  *out = y;
  return 0;
}

int cg_scratch_sink(cg_jit *j, rt_program *p, uint64_t packed, oc_error *e) {
  if (!j->pack_dir || j->sink)
    return 0;
  if (rt_pack_create_scratch(j->pack_dir, packed, &j->sink, e))
    return -1;
  rt_program_own_pack(p, j->sink);
  return 0;
}
