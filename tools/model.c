/* Opening a checkpoint for the commands that run it, on the JIT (kernels
 * lowered from the graph after the passes, -O2 by default, run by the OpenMP
 * executor) or the reference
 * interpreter. The graph reads weights in the checkpoint's own dtype, so a
 * bf16 checkpoint stays bf16 in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "olmoc/check_weights.h"
#include "olmoc/codegen.h"
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

static const float *jit_forward(void *self, const int32_t *tokens, int64_t T, oc_error *e) {
  cli_model *m = self;
  return rt_program_run(m->program, tokens, T, m->threads, e);
}

static int64_t jit_position(void *self) { return rt_program_position(((cli_model *)self)->program); }
static void jit_rewind(void *self, int64_t P) { rt_program_rewind(((cli_model *)self)->program, P); }

int cli_place_weights(struct cg_jit *j, const ir_graph *g, const pass_plan *plan, int64_t ctx,
                      const char *mode, oc_error *e) {
  cg_pack_place at;
  if (cg_jit_place_weights(j, g, plan, ctx, mode, &at, e))
    return -1;
  if (!at.file)
    return 0;
  fprintf(stderr, "olmoc: packing %.2f GB of weights into a deleted file in %s, paged in from disk as "
          "needed (slower): ", (double)at.packed / 1e9, at.dir);
  if (mode && !strcmp(mode, "file"))
    fprintf(stderr, "--pack-weights file\n");
  else
    fprintf(stderr, "with %.2f GB of arena and caches they do not fit in the %.2f GB of memory "
            "available (--ctx, --dtype q8 or --pack-weights memory change this)\n",
            (double)at.other / 1e9, (double)at.available / 1e9);
  return 0;
}

/* The JIT: kernels for the planned graph, weights packed (q8: quantized) at
 * load into memory or a file. */
static int make_jit(cli_model *m, int64_t ctx, const pass_result *r, const cli_pipeline *p, bool q8,
                    bool bf16_compute, bool kv_bf16, oc_error *e) {
  const char *emit_llvm = p ? p->emit_llvm : NULL;
  if (cg_jit_new_for_target(p ? p->target : NULL, &m->jit, e) ||
      (emit_llvm && cg_jit_set_ir_dump_dir(m->jit, emit_llvm, e)) || (cg_jit_set_q8(m->jit, q8), 0) ||
      cg_jit_set_bf16_compute(m->jit, bf16_compute, e) || cg_jit_set_kv_bf16(m->jit, kv_bf16, e) ||
      cli_place_weights(m->jit, m->graph, &r->plan, ctx, p ? p->pack_weights : NULL, e) ||
      cg_lower(m->jit, m->graph, &r->plan, ctx, rt_weights_lookup, m->weights, &m->program, e))
    return oc_wrap(e, "%s", m->dir);
  return 0;
}

/* Runs the pipeline, then makes the backend: the JIT's program, or the
 * interpreter on the planned arena if there is one. Either is sized so that
 * any call fits (a whole prompt of up to ctx tokens). */
static int optimize(cli_model *m, int64_t ctx, ir_dtype dtype, const cli_pipeline *p, oc_error *e) {
  pass_options o = {.level = 2, .max_tokens = ctx, .max_ctx = ctx};
  if (p && (p->o0 + p->o1 + p->o2 + !!p->passes > 1))
    return oc_fail(e, "give one of -O0, -O1, -O2 and --passes");
  const char *backend = p && p->backend ? p->backend : "jit";
  bool jit = strcmp(backend, "jit") == 0;
  if (!jit && strcmp(backend, "interp") != 0)
    return oc_fail(e, "--backend: expected jit or interp, found '%s'", backend);
  if (!jit && p && p->emit_llvm)
    return oc_fail(e, "--emit-llvm writes the JIT's kernels: it needs --backend jit");
  if (!jit && p && p->target)
    return oc_fail(e, "--target picks the JIT's instruction set: it needs --backend jit");
  if (!jit && p && p->pack_weights)
    return oc_fail(e, "--pack-weights places the JIT's packed weights: it needs --backend jit");
  bool q8 = p && p->dtype && !strcmp(p->dtype, "q8");
  if (p && p->dtype && !q8 && ir_dtype_lookup(p->dtype) != (int)dtype)
    return oc_fail(e, "--dtype: expected q8 or the checkpoint's own %s, found '%s'", ir_dtype_name(dtype),
                   p->dtype);
  if (q8 && !jit)
    return oc_fail(e, "--dtype q8 runs on the JIT's int8 kernels: add --backend jit");
  bool bf16_compute = false, kv_bf16 = false;
  if (p && (cli_f32_or_bf16("--compute", p->compute, &bf16_compute, e) ||
            cli_f32_or_bf16("--kv-cache", p->kv_cache, &kv_bf16, e)))
    return -1;
  if (kv_bf16 && !jit)
    return oc_fail(e, "--kv-cache bf16 is the JIT's cache layout: add --backend jit");
  if (bf16_compute && !jit)
    return oc_fail(e, "--compute bf16 runs on the JIT's vdpbf16ps kernels: add --backend jit");
  if (bf16_compute && (q8 || dtype != IR_BF16))
    return oc_fail(e, "--compute bf16 needs bf16 weights, and these are %s (use a bf16 checkpoint, or "
                   "`olmoc compile --dtype bf16`)", q8 ? "q8" : ir_dtype_name(dtype));
  if (p)
    o.level = p->o0 ? 0 : p->o1 ? 1 : 2, o.passes = p->passes;
  o.need_plan = jit;
  m->threads = p && p->threads > 0 ? (int)p->threads : rt_default_threads();
  pass_result r;
  int rc = pass_run_pipeline(m->graph, &o, &r, e);
  if (!rc && jit)
    rc = make_jit(m, ctx, &r, p, q8, bf16_compute, kv_bf16, e);
  else if (!rc)
    rc = ir_interp_new(m->graph, ctx, rt_weights_lookup, m->weights, &m->interp, e) ||
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
  if (optimize(m, ctx, dtype, pipeline, e))
    goto fail;
  m->model = (rt_model){.self = m,
                        .vocab = (int32_t)m->config.vocab_size,
                        .ctx = ctx,
                        .forward = m->program ? jit_forward : interp_forward,
                        .position = m->program ? jit_position : interp_position,
                        .rewind = m->program ? jit_rewind : interp_rewind};
  m->load_seconds = rt_seconds() - t0;
  return 0;
fail:
  cli_model_close(m);
  return -1;
}

void cli_model_close(cli_model *m) {
  ir_interp_free(m->interp);
  rt_program_free(m->program);
  cg_jit_free(m->jit);
  ir_graph_free(m->graph);
  rt_weights_close(m->weights);
  rt_tokenizer_free(m->tokenizer);
  *m = (cli_model){0};
}
