/* Opening a checkpoint for the commands that run it. The graph reads weights
 * in the checkpoint's own dtype, so a bf16 checkpoint stays bf16 in memory. */
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "olmoc/passes.h"

const char *cli_default_model(void) { return OLMOC_SOURCE_DIR "/models/olmo2-tiny"; }

static const float *interp_forward(void *self, const int32_t *tokens, int64_t T, oc_error *e) {
  cli_model *m = self;
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

static int64_t interp_position(void *self) { return ir_interp_position(((cli_model *)self)->interp); }
static void interp_rewind(void *self, int64_t P) { ir_interp_rewind(((cli_model *)self)->interp, P); }

/* Runs the pipeline, then makes the interpreter, on the planned arena if there
 * is one: sized so that any call fits (a whole prompt of up to ctx tokens). */
static int optimize(cli_model *m, int64_t ctx, const cli_pipeline *p, oc_error *e) {
  pass_options o = {.level = 2, .max_tokens = ctx, .max_ctx = ctx};
  if (p && (p->o0 + p->o1 + p->o2 + !!p->passes > 1))
    return oc_fail(e, "give one of -O0, -O1, -O2 and --passes");
  if (p)
    o.level = p->o0 ? 0 : p->o1 ? 1 : 2, o.passes = p->passes;
  pass_result r;
  int rc = pass_run_pipeline(m->graph, &o, &r, e) ||
           ir_interp_new(m->graph, ctx, rt_weights_lookup, m->weights, &m->interp, e) ||
           (r.planned && ir_interp_use_arena(m->interp, r.plan.offset, r.plan.bytes,
                                             r.plan.arena_bytes, NULL, e));
  pass_result_free(&r);
  return rc ? -1 : 0;
}

int cli_model_open(cli_model *m, const char *dir, int64_t ctx, const cli_pipeline *pipeline,
                   bool want_tokenizer, oc_error *e) {
  double t0 = rt_seconds();
  *m = (cli_model){.dir = dir};
  if (olmo2_config_load(dir, &m->config, e) ||
      (want_tokenizer && rt_tokenizer_load(dir, &m->tokenizer, e)) ||
      rt_weights_open(dir, &m->weights, e))
    goto fail;
  const rt_tensor *embed = rt_weights_find(m->weights, "model.embed_tokens.weight");
  ir_dtype dtype = embed ? embed->dtype : IR_F32;
  if (olmo2_build_graph(&m->config, dtype, &m->graph, e) ||
      rt_weights_check_graph(m->weights, m->graph, e))
    goto fail;
  int64_t limit = m->config.max_position_embeddings;
  if (ctx > limit) {
    oc_fail(e, "%s: a context of %lld positions exceeds the model's %lld (max_position_embeddings)",
            dir, (long long)ctx, (long long)limit);
    goto fail;
  }
  ctx = ctx > 0 ? ctx : limit;
  if (optimize(m, ctx, pipeline, e))
    goto fail;
  m->model = (rt_model){.self = m,
                        .vocab = (int32_t)m->config.vocab_size,
                        .ctx = ctx,
                        .forward = interp_forward,
                        .position = interp_position,
                        .rewind = interp_rewind};
  m->load_seconds = rt_seconds() - t0;
  return 0;
fail:
  cli_model_close(m);
  return -1;
}

void cli_model_close(cli_model *m) {
  ir_interp_free(m->interp);
  ir_graph_free(m->graph);
  rt_weights_close(m->weights);
  rt_tokenizer_free(m->tokenizer);
  *m = (cli_model){0};
}
