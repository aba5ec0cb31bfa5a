/* Compiling a checkpoint ahead of time into a model binary that needs
 * neither LLVM nor olmoc: the graph through the same passes as the JIT's,
 * lowered exactly as the JIT lowers it, its kernels into one object for the
 * target CPU, the weights streamed tensor by tensor into a packed file, and a
 * link with the system C compiler against the runtime archives the caller
 * hands over. Invariant: every output (binary, weights, header) is written
 * to a temporary of its own (olmoc/output.h) and all are put in place
 * together at the very end, so concurrent compiles to one OUT never see
 * each other's files, a failure leaves nothing and removes nothing it did
 * not make, and a signal (with the olmoc command's handler) leaves nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "olmoc/check_weights.h"
#include "olmoc/driver.h"
#include "olmoc/output.h"

/* The files a compile writes, named from OUT. */
typedef struct outputs {
  char binary[4096], header[4096], weights[4096];
} outputs;

static int name_outputs(const drv_compile_request *r, outputs *out, oc_error *e) {
  if (!r->output)
    return oc_fail(e, "no output: give -o OUT");
  const char *slash = strrchr(r->output, '/');
  const char *name = slash ? slash + 1 : r->output;
  int dir = slash ? (int)(slash - r->output + 1) : 0;
  if (!*name)
    return oc_fail(e, "-o %s: expected a file name, not a directory", r->output);
  if (strlen(r->output) > sizeof out->binary - 32)
    return oc_fail(e, "-o %s: path too long", r->output);
  if (r->lib)
    snprintf(out->binary, sizeof out->binary, "%.*slib%s.so", dir, r->output, name);
  else
    snprintf(out->binary, sizeof out->binary, "%s", r->output);
  snprintf(out->header, sizeof out->header, "%s.h", r->output);
  snprintf(out->weights, sizeof out->weights, "%s.weights", r->output);
  return 0;
}

/* What the model binary's generation needs from the checkpoint's JSON files. */
static int make_meta(const char *dir, const olmo2_config *c, int64_t ctx, rt_aot_meta *m, oc_error *e) {
  *m = (rt_aot_meta){.vocab = c->vocab_size, .ctx = ctx, .sampling = rt_sampling_default()};
  snprintf(m->model, sizeof m->model, "%s", dir);
  for (int i = 0; i < c->n_eos && i < RT_AOT_MAX_EOS; i++)
    m->eos[m->n_eos++] = (int32_t)c->eos_token_id[i];
  if (rt_sampling_load(dir, &m->sampling, &m->has_sampling, e))
    return -1;
  oc_error ignored; /* no chat template, or one olmoc does not render: --chat needs --chat-template */
  m->has_chat = rt_chat_template_load(dir, &m->chat, &ignored) == 0;
  return 0;
}

typedef struct job {
  const drv_config *c;
  const drv_compile_request *r;
  outputs out;
  const char *dir;
  olmo2_config config;
  rt_tokenizer *tokenizer;
  rt_weights *weights;
  ir_graph *graph;
  pass_result passes;
  bool planned;
  ir_dtype dtype; /* the graph's weights (q8: the embedding table's, what matmuls quantize from) */
  bool q8;        /* matmul weights quantized to q8 */
  int64_t ctx;
  cg_target target;
  cg_jit *jit;
  rt_pack_writer *pack;
  /* complete but not in place until the end; packed: the weights, also ones to embed */
  rt_output binary, header, packed;
  rt_aot_meta meta;
  drv_config as_quantized; /* c, for a quantized checkpoint its q4 or q8 */
} job;

/* Checkpoint, tokenizer, graph in the weights' dtype, the passes. */
static int open_model(job *j, oc_error *e) {
  if (drv_checkpoint_dir(j->dir, e) || olmo2_config_load(j->dir, &j->config, e) || rt_tokenizer_load(j->dir, &j->tokenizer, e) ||
      rt_weights_open(j->dir, &j->weights, e))
    return -1;
  if (drv_quantized_config(j->dir, j->weights, j->c, &j->as_quantized, e))
    return -1;
  j->c = &j->as_quantized;
  const rt_tensor *embed = rt_weights_find(j->weights, "model.embed_tokens.weight");
  ir_dtype stored = embed ? embed->dtype : IR_F32;
  /* q8 as olmoc run --dtype q8: the graph in the checkpoint's dtype, its
   * matmul weights quantized from it while lowering */
  if (drv_weights_dtype(j->c, stored, true, &j->dtype, &j->q8, e))
    return -1;
  int64_t limit = j->config.max_position_embeddings;
  if (j->c->ctx > limit)
    return oc_fail(e, "%s: a context of %lld positions exceeds the model's %lld (max_position_embeddings)",
                   j->dir, (long long)j->c->ctx, (long long)limit);
  j->ctx = j->c->ctx > 0 ? j->c->ctx : limit;
  /* checked as stored, compiled as asked: rt_pack_weight converts */
  if (drv_checked_graph(&j->config, j->weights, stored, j->dtype, &j->graph, e) ||
      drv_run_passes(j->c, j->graph, j->ctx, j->ctx, true, &j->passes, e))
    return -1;
  j->planned = true;
  return make_meta(j->dir, &j->config, j->ctx, &j->meta, e);
}

static int write_header(rt_output *out, const char *path, const cg_blob *h, oc_error *e) {
  if (rt_output_open(out, path, e))
    return -1;
  if (fwrite(h->data, 1, h->size, out->f) != h->size)
    return oc_fail(e, "%s: cannot write: %s", path, strerror(errno));
  return rt_output_ready(out, e);
}

/* The weights after the binary's code, into the binary's temporary. */
static int embed(job *j, oc_error *e) {
  if (fflush(j->binary.f))
    return oc_fail(e, "%s: cannot write: %s", j->out.binary, strerror(errno));
  return rt_pack_append(fileno(j->packed.f), "the weights", fileno(j->binary.f), j->out.binary,
                        j->c->progress, e);
}

/* Everything in place at once; an embedded pack's temporary goes. */
static int place(job *j, oc_error *e) {
  rt_output *placed[3] = {&j->binary};
  int n = 1;
  if (j->r->lib)
    placed[n++] = &j->header;
  if (j->r->embed)
    rt_output_abandon(&j->packed);
  else
    placed[n++] = &j->packed;
  return rt_output_commit(placed, n, e);
}

static int build(job *j, oc_error *e) {
  uint64_t build_id;
  if (getrandom(&build_id, sizeof build_id, 0) != (ssize_t)sizeof build_id)
    return oc_fail(e, "no random build id: %s", strerror(errno));
  if (cg_target_named(j->c->target, &j->target, e) || open_model(j, e) || cg_aot_new(&j->target, &j->jit, e) ||
      drv_check_panels(j->weights, j->jit, e) || cg_jit_set_bf16_compute(j->jit, j->c->bf16_compute, e) || cg_jit_set_kv_bf16(j->jit, j->c->kv_bf16, e) ||
      (j->c->emit_llvm && cg_jit_set_ir_dump_dir(j->jit, j->c->emit_llvm, e)))
    return -1;
  drv_set_quantized(j->c, j->jit, j->q8);
  cg_jit_set_progress(j->jit, j->c->progress);
  rt_pack_dtype dtype = cg_jit_q4(j->jit) ? RT_PACK_Q4 : j->q8 ? RT_PACK_Q8 : j->dtype == IR_BF16 ? RT_PACK_BF16 : RT_PACK_F32;
  rt_pack_target t = {j->target.cpu, j->target.features, build_id, dtype};
  /* an embedded pack is a temporary beside the binary, never in place */
  if (rt_pack_create(j->r->embed ? j->out.binary : j->out.weights, &t, &j->pack, e) ||
      cg_lower_packed(j->jit, j->graph, &j->passes.plan, j->ctx, j->weights, j->dtype, j->pack, e) ||
      rt_tokenizer_pack(j->tokenizer, j->pack, e) || rt_aot_meta_pack(&j->meta, j->pack, e))
    return -1;
  rt_pack_writer *w = j->pack;
  j->pack = NULL;
  if (rt_pack_finish_to(w, &j->packed, e) || rt_output_open_mode(&j->binary, j->out.binary, 0777, e))
    return -1;
  cg_link l = {.output = &j->binary, .shared = j->r->lib, .target = &j->target, .build_id = build_id,
               .dtype = dtype, .archives = j->r->archives, .n_archives = j->r->n_archives};
  oc_step linking; /* the object emitted and cc run: one unit, seconds for a big model */
  oc_step_begin(&linking, j->c->progress, "linking", 1, j->r->lib ? "library" : "binary", NULL);
  int rc = cg_aot_link(j->jit, &l, e);
  if (!rc)
    oc_step_add(&linking, 1, 0);
  oc_step_end(&linking);
  if (rc || (j->r->lib && write_header(&j->header, j->out.header, j->r->header, e)) ||
      (j->r->embed && embed(j, e)) || rt_output_ready(&j->binary, e))
    return -1;
  return place(j, e);
}

static void finish(job *j) {
  rt_pack_abandon(j->pack);
  rt_output_abandon(&j->binary); /* nothing, once in place */
  rt_output_abandon(&j->header);
  rt_output_abandon(&j->packed);
  cg_jit_free(j->jit);
  if (j->planned)
    pass_result_free(&j->passes);
  ir_graph_free(j->graph);
  rt_weights_close(j->weights);
  rt_tokenizer_free(j->tokenizer);
}

int drv_compile(const char *dir, const drv_config *c, const drv_compile_request *r, oc_error *e) {
  double t0 = rt_seconds();
  job j = {.c = c, .r = r, .dir = dir};
  if (name_outputs(r, &j.out, e))
    return -1;
  int rc = build(&j, e);
  int kernels = j.jit ? cg_jit_compile_count(j.jit) : 0;
  finish(&j);
  if (rc)
    return oc_wrap(e, "%s", j.dir);
  fprintf(stderr, "compiled %s for %s (%s weights, %s compute, %s KV cache, %d kernels, context %lld) in %.1f s: "
          "%s%s%s%s%s\n", j.dir, j.target.cpu, j.q8 ? (j.c->weights == DRV_Q4 ? "q4" : "q8") : ir_dtype_name(j.dtype), c->bf16_compute ? "bf16" : "f32",
          c->kv_bf16 ? "bf16" : "f32", kernels, (long long)j.ctx, rt_seconds() - t0, j.out.binary,
          r->lib ? ", " : "", r->lib ? j.out.header : "", r->embed ? "" : ", ", r->embed ? "" : j.out.weights);
  return 0;
}
