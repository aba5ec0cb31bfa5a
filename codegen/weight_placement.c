/* Where a JIT's packed weights go, decided before lowering: memory when
 * they fit with the rest of the program, else a scratch file (--pack-weights
 * auto), or as the user forces it. It only sizes and decides; lower.c counts
 * the bytes (cg_program_bytes) and panel_place.c writes the panels. */
#include <stdlib.h>
#include <string.h>

#include "session.h"

/* The rule: packed weights stay in memory when
 *
 *   packed + other + margin <= available,   margin = 1 GiB + available / 16
 *
 * where available is MemAvailable as the model loads (free memory and the
 * page cache the kernel can drop, the checkpoint's pages among it), other is
 * what the program places in anonymous memory at full size (the arena
 * planned for a prompt the length of the context, the KV caches for the
 * context, rope tables, q8's rows: their pages appear as they are written,
 * but a long conversation writes them all; an embedding table rounded to
 * bf16 from f32 or f16), and the margin covers what is not counted (LLVM
 * and the kernels, the tokenizer, thread stacks, other processes growing).
 * Unknown MemAvailable (no /proc): memory.
 * Erring towards the file costs little: when memory was enough after all,
 * the page cache keeps the file's pages and they read at memory speed (on
 * 4 KiB pages rather than 2 MiB ones). */
bool cg_pack_fits(uint64_t packed, uint64_t other, uint64_t available) {
  uint64_t margin = ((uint64_t)1 << 30) + available / 16;
  return !available || packed + other + margin <= available;
}

int cg_pack_mode_check(const char *mode, oc_error *e) {
  if (mode && strcmp(mode, "auto") && strcmp(mode, "memory") && strcmp(mode, "file"))
    return oc_fail(e, "--pack-weights: expected auto, memory or file, found '%s'", mode);
  return 0;
}

int cg_jit_place_weights(cg_jit *j, const ir_graph *g, const pass_plan *plan, int64_t ctx, ir_weight_fn weights,
                         void *weights_ctx, const char *mode, cg_pack_place *out, oc_error *e) {
  if (cg_pack_mode_check(mode, e))
    return -1;
  mode = mode ? mode : "auto";
  bool file = !strcmp(mode, "file"), autom = !strcmp(mode, "auto");
  const char *dir = getenv("OLMOC_PACK_DIR");
  *out = (cg_pack_place){.dir = dir && *dir ? dir : "/var/tmp", .available = rt_memory_available()};
  cg_program_bytes(j, g, plan, ctx, weights, weights_ctx, &out->packed, &out->other);
  out->file = file || (autom && !cg_pack_fits(out->packed, out->other, out->available));
  return cg_jit_set_pack_dir(j, out->file ? out->dir : NULL, e);
}
