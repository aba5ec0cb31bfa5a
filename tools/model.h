/* A checkpoint directory opened for running: config, tokenizer, weights, the
 * frontend's graph and the backend that evaluates it (the JIT's program or the
 * reference interpreter), presented to the runtime as an rt_model. */
#ifndef OLMOC_TOOLS_MODEL_H
#define OLMOC_TOOLS_MODEL_H

#include "cli.h"
#include "olmoc/executor.h"
#include "olmoc/generate.h"
#include "olmoc/interp.h"
#include "olmoc/olmo2.h"
#include "olmoc/plan.h"
#include "olmoc/tokenizer.h"
#include "olmoc/weights.h"

/* The pass pipeline a command runs before evaluating: -O0, -O1, -O2 (the
 * default) or an explicit --passes list, as `olmoc ir` takes them; and the
 * backend that evaluates the result: "jit" (the LLVM kernels on the OpenMP
 * executor: any pipeline, plan-memory appended when it does not end with it)
 * or "interp" (the reference interpreter, any pipeline), with a thread count
 * and an instruction set for the JIT. */
typedef struct cli_pipeline {
  bool o0, o1, o2;
  const char *passes;
  const char *backend; /* "jit" or "interp"; the command sets its default */
  long threads;        /* JIT threads; 0: all cores */
  const char *emit_llvm; /* a directory for each JIT kernel's optimized LLVM IR, or NULL */
  const char *target;    /* the JIT's instruction set: "native" (NULL too) or "avx2" */
  const char *dtype;     /* matmul weights: NULL or the checkpoint's dtype (as stored), or "q8"
                            (quantized at load, JIT only) */
  const char *pack_weights; /* where the JIT packs them: NULL or "auto", "memory", "file" */
  const char *compute;   /* "f32" (NULL too) or "bf16": prefill matmuls on vdpbf16ps (JIT, bf16
                            weights, AVX512_BF16) */
  const char *kv_cache;  /* "f32" (NULL too) or "bf16": the JIT's KV caches in bf16 */
} cli_pipeline;

/* The help lines of CLI_PIPELINE_OPTIONS every command shares (-t and
 * --backend, whose defaults differ, each command writes itself). */
#define CLI_PIPELINE_USAGE                                                                          \
  "  -O0, -O1, -O2           pass pipeline before running (default -O2; `olmoc passes`)\n"          \
  "  --passes=A,B            run these passes instead\n"                                            \
  "  --dtype q8              int8 matmul weights, quantized at load (JIT only;\n"                   \
  "                          default: the checkpoint's dtype)\n"                                    \
  "  --emit-llvm DIR         write each JIT kernel's optimized LLVM IR to DIR\n"                     \
  "  --target T              the JIT's instruction set: native (default) or avx2\n"                 \
  "  --pack-weights W        where the JIT packs the weights: auto (default:\n"                     \
  "                          memory, or a file when they do not fit), memory or\n"                  \
  "                          file (deleted at once, in $OLMOC_PACK_DIR or /var/tmp)\n"              \
  "  --compute f32|bf16      matmuls of T > 1 tokens on vdpbf16ps with the inputs\n"                \
  "                          rounded to bf16 (JIT, bf16 weights, AVX512_BF16; default f32)\n"     \
  "  --kv-cache f32|bf16     the JIT's KV caches: bf16 halves what a long context costs\n"          \
  "                          in memory and in reads per token (-O1/-O2; default f32)\n"

#define CLI_PIPELINE_OPTIONS(p)                                                                    \
  CLI_OPT_FLAG(NULL, "-O0", &(p)->o0), CLI_OPT_FLAG(NULL, "-O1", &(p)->o1),                        \
      CLI_OPT_FLAG(NULL, "-O2", &(p)->o2), CLI_OPT_STRING(NULL, "--passes", &(p)->passes),         \
      CLI_OPT_STRING(NULL, "--backend", &(p)->backend),                                            \
      CLI_OPT_INT("-t", "--threads", &(p)->threads, 1, 1024, NULL),                               \
      CLI_OPT_STRING(NULL, "--emit-llvm", &(p)->emit_llvm),                                       \
      CLI_OPT_STRING(NULL, "--target", &(p)->target), CLI_OPT_STRING(NULL, "--dtype", &(p)->dtype), \
      CLI_OPT_STRING(NULL, "--pack-weights", &(p)->pack_weights), CLI_OPT_STRING(NULL, "--compute", &(p)->compute), \
      CLI_OPT_STRING(NULL, "--kv-cache", &(p)->kv_cache)

typedef struct cli_model {
  const char *dir;
  olmo2_config config;
  rt_tokenizer *tokenizer; /* NULL unless asked for */
  rt_weights *weights;
  ir_graph *graph;
  ir_interp *interp;   /* the interp backend's, else NULL */
  struct cg_jit *jit;  /* the jit backend's kernels and program, else NULL */
  rt_program *program;
  int threads;
  rt_model model;
  double load_seconds;
} cli_model;

/* Decides where j packs g's weights (--pack-weights mode, cg_jit_place_weights)
 * and, when into a file, says where and why in one line on stderr. */
int cli_place_weights(struct cg_jit *j, const ir_graph *g, const pass_plan *plan, int64_t ctx,
                      const char *mode, oc_error *e);

/* The model in the bundled directory, for commands given no -m. */
const char *cli_default_model(void);

/* Opens dir with a KV cache of ctx positions (0: the model's context), runs
 * the pipeline over its graph (NULL: -O2 on the JIT), and places activations
 * in the planned arena when plan-memory ran (always for the JIT). want_tokenizer: also load
 * dir/tokenizer.json. */
int cli_model_open(cli_model *m, const char *dir, int64_t ctx, const cli_pipeline *pipeline,
                   bool want_tokenizer, oc_error *e);
void cli_model_close(cli_model *m);

#endif
