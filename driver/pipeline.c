/* The steps every way of opening a model shares, on a validated config: the
 * pass pipeline, a JIT session with the config's options, and where its
 * packed weights go. drv_model_open, drv_compile and olmoc bench are these
 * steps in order, so an option means the same to each. */
#include <stdio.h>
#include <string.h>

#include "olmoc/driver.h"

int drv_run_passes(const drv_config *c, ir_graph *g, int64_t max_tokens, int64_t ctx, bool need_plan,
                   pass_result *r, oc_error *e) {
  pass_options o = {.level = c->level, .passes = c->passes, .max_tokens = max_tokens, .max_ctx = ctx,
                    .need_plan = need_plan};
  return pass_run_pipeline(g, &o, r, e);
}

void drv_set_quantized(const drv_config *c, cg_jit *j, bool quantized) {
  if (quantized && c->weights == DRV_Q4)
    cg_jit_set_q4(j, true);
  else
    cg_jit_set_q8(j, quantized);
}

int drv_jit_new(const drv_config *c, bool q8, cg_jit **out, oc_error *e) {
  cg_jit *j = NULL;
  if (cg_jit_new_for_target(c->target, &j, e) || (c->emit_llvm && cg_jit_set_ir_dump_dir(j, c->emit_llvm, e)) ||
      cg_jit_set_bf16_compute(j, c->bf16_compute, e) || cg_jit_set_kv_bf16(j, c->kv_bf16, e)) {
    cg_jit_free(j);
    return -1;
  }
  drv_set_quantized(c, j, q8);
  cg_jit_set_progress(j, c->progress);
  *out = j;
  return 0;
}

int drv_place_weights(const drv_config *c, cg_jit *j, const ir_graph *g, const pass_plan *plan, int64_t ctx,
                      ir_weight_fn weights, void *weights_ctx, oc_error *e) {
  cg_pack_place at;
  if (cg_jit_place_weights(j, g, plan, ctx, weights, weights_ctx, c->pack_weights, &at, e))
    return -1;
  if (!at.file)
    return 0;
  fprintf(stderr, "olmoc: packing %.2f GB of weights into a deleted file in %s, paged in from disk as "
          "needed (slower): ", (double)at.packed / 1e9, at.dir);
  if (c->pack_weights && !strcmp(c->pack_weights, "file"))
    fprintf(stderr, "--pack-weights file\n");
  else
    fprintf(stderr, "with %.2f GB of arena and caches they do not fit in the %.2f GB of memory "
            "available (--ctx, --dtype q8 or q4, or --pack-weights memory change this)\n",
            (double)at.other / 1e9, (double)at.available / 1e9);
  return 0;
}
