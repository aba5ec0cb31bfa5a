/* `olmoc compile`: a checkpoint ahead of time into a model binary that needs
 * neither LLVM nor olmoc: the -O2 graph lowered exactly as `olmoc run` lowers
 * it, its kernels into one object for the target CPU, the weights streamed
 * tensor by tensor into a packed file, and a link with the system C compiler
 * against the runtime built into olmoc (aot/blobs.S.in). On failure nothing
 * it was writing is left behind. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cli.h"
#include "model.h"
#include "olmoc/check_weights.h"
#include "olmoc/compile.h"
#include "olmoc/output.h"
#include "olmoc/passes.h"

extern const unsigned char olmoc_blob_runtime[], olmoc_blob_runtime_end[];
extern const unsigned char olmoc_blob_pcre2[], olmoc_blob_pcre2_end[];
extern const unsigned char olmoc_blob_api_h[], olmoc_blob_api_h_end[];

static const char usage[] =
    "usage: olmoc compile [-m MODEL] -o OUT [options]\n"
    "\n"
    "Compiles a checkpoint ahead of time into a model binary that needs no LLVM\n"
    "and no olmoc: the executable OUT, with the options of `olmoc run`, or with\n"
    "--emit lib the C library libNAME.so and its header NAME.h beside it (OUT is\n"
    "DIR/NAME). The weights go to OUT.weights (DIR/NAME.weights), or inside the\n"
    "binary with --embed-weights. Linking runs `cc` (or $CC).\n"
    "\n"
    "options:\n"
    "  -m, --model DIR         checkpoint directory (default: the bundled models/olmo2-tiny)\n"
    "  -o, --output OUT        what to write\n"
    "  --emit exe|lib          an executable (default) or a shared library with a C API\n"
    "  --dtype f32|bf16|q8     the weights' dtype in the binary (default: the checkpoint's;\n"
    "                          q8: int8 matmul weights with f16 group scales, quantized\n"
    "                          while compiling, as olmoc run --dtype q8 does at load)\n"
    "  --compute f32|bf16      bf16: matmuls of T > 1 tokens on vdpbf16ps with inputs rounded\n"
    "                          to bf16 (bf16 weights, a target with AVX512_BF16; default f32)\n"
    "  --kv-cache f32|bf16     the KV caches' dtype (bf16: half the memory and reads of a\n"
    "                          long context; -O1/-O2; default f32)\n"
    "  --embed-weights         put the weights inside the binary: one file to copy\n"
    "  --target native|avx2    the CPU to compile for: this one (default), or any with AVX2\n"
    "                          and FMA (haswell and later)\n"
    "  --ctx N                 the longest context the binary will run (default: the model's)\n"
    "  -O0, -O1, -O2           pass pipeline, as for run (default -O2; `olmoc passes`)\n"
    "  --passes=A,B            run these passes instead\n"
    "  --emit-llvm DIR         write each kernel's optimized LLVM IR to DIR\n"
    "  -h, --help              show this help\n";

typedef struct compile_options {
  const char *model, *output, *emit, *dtype, *target, *passes, *emit_llvm, *compute, *kv_cache;
  bool embed, o0, o1, o2;
  long ctx;
} compile_options;

/* The files a compile writes, named from OUT. */
typedef struct outputs {
  char binary[4096], header[4096], weights[4096], pack[4104]; /* pack: where the pack is written */
  bool lib;
} outputs;

static int name_outputs(const compile_options *o, outputs *out, oc_error *e) {
  const char *slash = strrchr(o->output, '/');
  const char *name = slash ? slash + 1 : o->output;
  int dir = slash ? (int)(slash - o->output + 1) : 0;
  if (!*name)
    return oc_fail(e, "-o %s: expected a file name, not a directory", o->output);
  out->lib = o->emit && !strcmp(o->emit, "lib");
  if (o->emit && !out->lib && strcmp(o->emit, "exe"))
    return oc_fail(e, "--emit: expected exe or lib, found '%s'", o->emit);
  if (strlen(o->output) > sizeof out->binary - 32)
    return oc_fail(e, "-o %s: path too long", o->output);
  if (out->lib)
    snprintf(out->binary, sizeof out->binary, "%.*slib%s.so", dir, o->output, name);
  else
    snprintf(out->binary, sizeof out->binary, "%s", o->output);
  snprintf(out->header, sizeof out->header, "%s.h", o->output);
  snprintf(out->weights, sizeof out->weights, "%s.weights", o->output);
  snprintf(out->pack, sizeof out->pack, "%s%s", out->weights, o->embed ? ".embed" : "");
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

/* As for olmoc run: -O0, -O1, -O2 (the default) or --passes, plan-memory last. */
static int pipeline(const compile_options *o, ir_graph *g, int64_t ctx, pass_result *r, oc_error *e) {
  if (o->o0 + o->o1 + o->o2 + !!o->passes > 1)
    return oc_fail(e, "give one of -O0, -O1, -O2 and --passes");
  pass_options po = {.level = o->o0 ? 0 : o->o1 ? 1 : 2, .passes = o->passes, .max_tokens = ctx,
                     .max_ctx = ctx, .need_plan = true};
  return pass_run_pipeline(g, &po, r, e);
}

typedef struct job {
  const compile_options *o;
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
  bool bf16_compute; /* --compute bf16 */
  bool kv_bf16;      /* --kv-cache bf16 */
  int64_t ctx;
  cg_target target;
  cg_jit *jit;
  rt_pack_writer *pack;
  rt_aot_meta meta;
  bool packed, linked; /* the pack, the binary are in place (removed if a later step fails) */
} job;

/* Checkpoint, tokenizer, graph in the weights' dtype, -O2. */
static int open_model(job *j, oc_error *e) {
  const compile_options *o = j->o;
  if (olmo2_config_load(j->dir, &j->config, e) || rt_tokenizer_load(j->dir, &j->tokenizer, e) ||
      rt_weights_open(j->dir, &j->weights, e))
    return -1;
  const rt_tensor *embed = rt_weights_find(j->weights, "model.embed_tokens.weight");
  ir_dtype stored = embed ? embed->dtype : IR_F32;
  j->dtype = stored == IR_BF16 ? IR_BF16 : IR_F32;
  if (o->dtype && strcmp(o->dtype, "f32") && strcmp(o->dtype, "bf16") && strcmp(o->dtype, "q8"))
    return oc_fail(e, "--dtype: expected f32, bf16 or q8, found '%s'", o->dtype);
  /* q8 as olmoc run --dtype q8: the graph in the checkpoint's dtype, its
   * matmul weights quantized from it while lowering */
  j->q8 = o->dtype && !strcmp(o->dtype, "q8");
  if (o->dtype && !j->q8)
    j->dtype = strcmp(o->dtype, "f32") ? IR_BF16 : IR_F32;
  if (j->bf16_compute && (j->q8 || j->dtype != IR_BF16))
    return oc_fail(e, "--compute bf16 needs bf16 weights, and these are %s", j->q8 ? "q8" : "f32: add --dtype bf16");
  int64_t limit = j->config.max_position_embeddings;
  if (o->ctx > limit)
    return oc_fail(e, "%s: a context of %ld positions exceeds the model's %lld (max_position_embeddings)",
                   j->dir, o->ctx, (long long)limit);
  j->ctx = o->ctx > 0 ? o->ctx : limit;
  /* checked as stored, compiled as asked: rt_pack_weight converts */
  if (olmo2_build_graph(&j->config, stored, &j->graph, e) || rt_weights_check_graph(j->weights, j->graph, e))
    return -1;
  if (j->dtype != stored) {
    ir_graph_free(j->graph);
    j->graph = NULL;
    if (olmo2_build_graph(&j->config, j->dtype, &j->graph, e))
      return -1;
  }
  if (pipeline(o, j->graph, j->ctx, &j->passes, e))
    return -1;
  j->planned = true;
  return make_meta(j->dir, &j->config, j->ctx, &j->meta, e);
}

static int build(job *j, oc_error *e) {
  uint64_t build_id;
  if (getrandom(&build_id, sizeof build_id, 0) != (ssize_t)sizeof build_id)
    return oc_fail(e, "no random build id: %s", strerror(errno));
  if (cli_f32_or_bf16("--compute", j->o->compute, &j->bf16_compute, e) ||
      cli_f32_or_bf16("--kv-cache", j->o->kv_cache, &j->kv_bf16, e) || cg_target_named(j->o->target, &j->target, e) ||
      open_model(j, e) || cg_aot_new(&j->target, &j->jit, e) ||
      cg_jit_set_bf16_compute(j->jit, j->bf16_compute, e) || cg_jit_set_kv_bf16(j->jit, j->kv_bf16, e) ||
      (j->o->emit_llvm && cg_jit_set_ir_dump_dir(j->jit, j->o->emit_llvm, e)))
    return -1;
  cg_jit_set_q8(j->jit, j->q8);
  rt_pack_dtype dtype = j->q8 ? RT_PACK_Q8 : j->dtype == IR_BF16 ? RT_PACK_BF16 : RT_PACK_F32;
  rt_pack_target t = {j->target.cpu, j->target.features, build_id, dtype};
  if (rt_pack_create(j->out.pack, &t, &j->pack, e) ||
      cg_lower_packed(j->jit, j->graph, &j->passes.plan, j->ctx, j->weights, j->dtype, j->pack, e) ||
      rt_tokenizer_pack(j->tokenizer, j->pack, e) || rt_aot_meta_pack(&j->meta, j->pack, e))
    return -1;
  rt_pack_writer *w = j->pack;
  j->pack = NULL;
  if (rt_pack_finish(w, e))
    return -1;
  j->packed = true;
  const cg_blob archives[] = {
      {"libolmoc_aot.a", olmoc_blob_runtime, (size_t)(olmoc_blob_runtime_end - olmoc_blob_runtime)},
      {"libpcre2-8.a", olmoc_blob_pcre2, (size_t)(olmoc_blob_pcre2_end - olmoc_blob_pcre2)},
  };
  cg_link l = {.output = j->out.binary, .shared = j->out.lib, .target = &j->target, .build_id = build_id,
               .dtype = dtype, .archives = archives, .n_archives = 2};
  if (cg_aot_link(j->jit, &l, e))
    return -1;
  j->linked = true;
  if (j->out.lib) {
    rt_output h;
    size_t n = (size_t)(olmoc_blob_api_h_end - olmoc_blob_api_h);
    if (rt_output_open(&h, j->out.header, e))
      return -1;
    if (fwrite(olmoc_blob_api_h, 1, n, h.f) != n) {
      rt_output_abandon(&h);
      return oc_fail(e, "%s: cannot write: %s", j->out.header, strerror(errno));
    }
    if (rt_output_close(&h, e))
      return -1;
  }
  if (j->o->embed) {
    if (rt_pack_append(j->out.pack, j->out.binary, e))
      return -1;
    unlink(j->out.pack);
    j->packed = false;
  }
  return 0;
}

static void finish(job *j) {
  rt_pack_abandon(j->pack);
  cg_jit_free(j->jit);
  if (j->planned)
    pass_result_free(&j->passes);
  ir_graph_free(j->graph);
  rt_weights_close(j->weights);
  rt_tokenizer_free(j->tokenizer);
}

static int compile(const compile_options *o, oc_error *e) {
  double t0 = rt_seconds();
  job j = {.o = o, .dir = o->model ? o->model : cli_default_model()};
  if (!o->output)
    return oc_fail(e, "no output: give -o OUT");
  if (name_outputs(o, &j.out, e))
    return -1;
  int rc = build(&j, e);
  int kernels = j.jit ? cg_jit_compile_count(j.jit) : 0;
  finish(&j);
  if (rc) { /* leave nothing half made */
    if (j.packed)
      unlink(j.out.pack);
    if (j.linked)
      unlink(j.out.binary);
    return oc_wrap(e, "%s", j.dir);
  }
  fprintf(stderr, "compiled %s for %s (%s weights, %s compute, %s KV cache, %d kernels, context %lld) in %.1f s: "
          "%s%s%s%s%s\n", j.dir, j.target.cpu, j.q8 ? "q8" : ir_dtype_name(j.dtype), j.bf16_compute ? "bf16" : "f32",
          j.kv_bf16 ? "bf16" : "f32", kernels,
          (long long)j.ctx, rt_seconds() - t0, j.out.binary, j.out.lib ? ", " : "", j.out.lib ? j.out.header : "",
          o->embed ? "" : ", ", o->embed ? "" : j.out.weights);
  return 0;
}

int cmd_compile(int argc, char **argv) {
  compile_options o = {0};
  const cli_option opts[] = {
      CLI_OPT_STRING("-m", "--model", &o.model),
      CLI_OPT_STRING("-o", "--output", &o.output),
      CLI_OPT_STRING(NULL, "--emit", &o.emit),
      CLI_OPT_STRING(NULL, "--dtype", &o.dtype),
      CLI_OPT_STRING(NULL, "--compute", &o.compute),
      CLI_OPT_STRING(NULL, "--kv-cache", &o.kv_cache),
      CLI_OPT_FLAG(NULL, "--embed-weights", &o.embed),
      CLI_OPT_STRING(NULL, "--target", &o.target),
      CLI_OPT_INT(NULL, "--ctx", &o.ctx, 1, 1 << 24, NULL),
      CLI_OPT_FLAG(NULL, "-O0", &o.o0),
      CLI_OPT_FLAG(NULL, "-O1", &o.o1),
      CLI_OPT_FLAG(NULL, "-O2", &o.o2),
      CLI_OPT_STRING(NULL, "--passes", &o.passes),
      CLI_OPT_STRING(NULL, "--emit-llvm", &o.emit_llvm),
      {0},
  };
  oc_error e = {{0}};
  int parsed = cli_parse(argc, argv, opts, NULL, &e);
  return cli_exit("compile", usage, parsed, !parsed && compile(&o, &e), &e);
}
