/* Opening a checkpoint for running, on the JIT (kernels lowered from the
 * graph after the passes, run by the OpenMP executor) or the reference
 * interpreter, presented to the runtime as an rt_model. The graph reads
 * weights in the checkpoint's own dtype, so a bf16 checkpoint stays bf16 in
 * memory, or (the JIT, --dtype bf16) f32 or f16 weights as bf16, each
 * rounded where the lowering packs or copies it: no converted checkpoint is
 * ever whole in memory. Either backend is sized so that any call fits: a
 * whole prompt of up to the context's tokens. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "olmoc/check_weights.h"
#include "olmoc/driver.h"
#include "olmoc/machine.h"

#ifndef OLMOC_SOURCE_DIR
#define OLMOC_SOURCE_DIR "."
#endif

const char *drv_default_model(void) { return OLMOC_SOURCE_DIR "/models/olmo2-tiny"; }

static const float *interp_forward(void *self, const int32_t *tokens, int64_t T, oc_error *e) {
  drv_model *m = self;
  ir_binding in = {"tokens", {IR_I32, 1, {T}, tokens}};
  for (int64_t i = 0; i < T; i++)
    if (tokens[i] < 0 || tokens[i] >= m->config.vocab_size) {
      oc_fail(e, "token id %d is outside the model's vocabulary of %lld", tokens[i],
              (long long)m->config.vocab_size);
      return NULL;
    }
  if (ir_interp_run(m->interp, T, &in, 1, e))
    return NULL;
  return ir_interp_output(m->interp, "logits")->data;
}

static int64_t interp_position(void *self) { return ir_interp_position(((drv_model *)self)->interp); }
static void interp_rewind(void *self, int64_t P) { ir_interp_rewind(((drv_model *)self)->interp, P); }

static const float *jit_forward(void *self, const int32_t *tokens, int64_t T, oc_error *e) {
  drv_model *m = self;
  return rt_program_run(m->program, tokens, T, m->threads, e);
}

static int64_t jit_position(void *self) { return rt_program_position(((drv_model *)self)->program); }
static void jit_rewind(void *self, int64_t P) { rt_program_rewind(((drv_model *)self)->program, P); }
static void set_threads(void *self, int threads) { ((drv_model *)self)->threads = threads; }

/* The JIT's kernels for the planned graph, weights packed (q8: quantized) at
 * load into memory or a file. */
static int make_jit(drv_model *m, const drv_config *c, int64_t ctx, bool q8, const pass_plan *plan,
                    oc_error *e) {
  if (drv_jit_new(c, q8, &m->jit, e) || drv_check_panels(m->weights, m->jit, e) ||
      drv_place_weights(c, m->jit, m->graph, plan, ctx, rt_weights_lookup, m->weights, e) ||
      cg_lower(m->jit, m->graph, plan, ctx, rt_weights_lookup, m->weights, &m->program, e))
    return oc_wrap(e, "%s", m->dir);
  return 0;
}

static int make_backend(drv_model *m, const drv_config *c, int64_t ctx, bool q8, oc_error *e) {
  bool jit = c->backend == DRV_JIT;
  pass_result r;
  if (drv_run_passes(c, m->graph, ctx, ctx, jit, &r, e))
    return -1;
  int rc = jit ? make_jit(m, c, ctx, q8, &r.plan, e)
               : ir_interp_new(m->graph, ctx, rt_weights_lookup, m->weights, &m->interp, e) ||
                     (r.planned && ir_interp_use_arena(m->interp, r.plan.offset, r.plan.bytes,
                                                       r.plan.arena_bytes, NULL, e));
  pass_result_free(&r);
  return rc ? -1 : 0;
}

/* The KV caches of ctx positions must fit in the memory available: refused
 * at once, before the planner (a context of 2^24 once took 11 s to be found
 * too large for an arena). The caches alone are a lower bound of what the
 * program needs. */
static int caches_fit(const char *dir, const olmo2_config *c, int64_t ctx, bool bf16, oc_error *e) {
  double bytes = 2.0 * (double)c->num_hidden_layers * (double)(c->num_key_value_heads * c->head_dim) *
                 (double)ctx * (bf16 ? 2 : 4);
  uint64_t available = rt_memory_available();
  if (!available || bytes <= (double)available)
    return 0;
  return oc_fail(e, "%s: a context of %lld positions needs %.1f GB of KV cache, more than the %.1f GB of memory "
                 "available: give a shorter --ctx", dir, (long long)ctx, bytes / 1e9, (double)available / 1e9);
}

int drv_checkpoint_dir(const char *dir, oc_error *e) {
  struct stat st;
  if (stat(dir, &st))
    return oc_fail(e, "%s: cannot open the checkpoint directory: %s", dir, strerror(errno));
  if (S_ISDIR(st.st_mode))
    return 0;
  const char *slash = strrchr(dir, '/');
  if (!slash)
    return oc_fail(e, "%s: a checkpoint is a directory (config.json, tokenizer.json and the weights): "
                      "give -m with the directory it is in", dir);
  return oc_fail(e, "%s: a checkpoint is a directory (config.json, tokenizer.json and the weights): give -m %.*s",
                 dir, slash == dir ? 1 : (int)(slash - dir), dir);
}

int drv_model_open(drv_model *m, const char *dir, const drv_config *c, bool want_tokenizer, oc_error *e) {
  double t0 = rt_seconds();
  *m = (drv_model){.dir = dir, .threads = c->threads};
  if (drv_checkpoint_dir(dir, e))
    return -1;
  if (olmo2_config_load(dir, &m->config, e) || (want_tokenizer && rt_tokenizer_load(dir, &m->tokenizer, e)) ||
      rt_weights_open_read(dir, c->read_weights, &m->weights, e))
    goto fail;
  const rt_tensor *embed = rt_weights_find(m->weights, "model.embed_tokens.weight");
  ir_dtype stored = embed ? embed->dtype : IR_F32, dtype;
  bool q8;
  int64_t limit = m->config.max_position_embeddings;
  drv_config quantized;
  int unfit = drv_quantized_config(dir, m->weights, c, &quantized, e);
  if (unfit < 0)
    goto fail;
  c = &quantized;
  if (!unfit && c->ctx > limit)
    unfit = oc_fail(e, "%s: a context of %lld positions exceeds the model's %lld (max_position_embeddings)", dir,
                    (long long)c->ctx, (long long)limit);
  if (unfit || drv_weights_dtype(c, stored, false, &dtype, &q8, e)) {
    drv_model_close(m);
    return DRV_UNFIT;
  }
  if (drv_checked_graph(&m->config, m->weights, stored, dtype, &m->graph, e))
    goto fail;
  int64_t ctx = c->ctx > 0 ? c->ctx : limit;
  if (caches_fit(dir, &m->config, ctx, c->kv_bf16, e) || make_backend(m, c, ctx, q8, e))
    goto fail;
  for (int i = 0; i < m->config.n_eos; i++)
    m->eos[i] = (int32_t)m->config.eos_token_id[i];
  bool jit = m->program != NULL;
  m->model = (rt_model){.self = m,
                        .vocab = (int32_t)m->config.vocab_size,
                        .ctx = ctx,
                        .forward = jit ? jit_forward : interp_forward,
                        .position = jit ? jit_position : interp_position,
                        .rewind = jit ? jit_rewind : interp_rewind,
                        .set_threads = set_threads};
  m->load_seconds = rt_seconds() - t0;
  return 0;
fail:
  drv_model_close(m);
  return -1;
}

void drv_model_close(drv_model *m) {
  ir_interp_free(m->interp);
  rt_program_free(m->program);
  cg_jit_free(m->jit);
  ir_graph_free(m->graph);
  rt_weights_close(m->weights);
  rt_tokenizer_free(m->tokenizer);
  *m = (drv_model){0};
}
