/* The pipeline's options on the command line of run, logits and perplexity:
 * the flags that fill a drv_request, which the driver validates, and their
 * help lines. */
#ifndef OLMOC_TOOLS_PIPELINE_ARGS_H
#define OLMOC_TOOLS_PIPELINE_ARGS_H

#include "cli.h"
#include "olmoc/driver.h"

/* The help lines of CLI_PIPELINE_OPTIONS every command shares (-t and
 * --backend, whose defaults differ, each command writes itself), and of -q,
 * which each lists as its own flag: it fills no request field but picks the
 * request's progress sink (oc_progress_stderr). */
#define CLI_PIPELINE_USAGE                                                                          \
  "  -q, --quiet             no progress on standard error (it shows for steps over 1 s)\n"        \
  "  -O0, -O1, -O2           pass pipeline before running (default -O2; `olmoc passes`)\n"          \
  "  --passes=A,B            run these passes instead\n"                                            \
  "  --dtype bf16|q8|q4      bf16: f32 or f16 weights rounded to bf16; q8, q4: int8 or\n"         \
  "                          4-bit matmul weights (q4: the LM head int8); at load (JIT\n"          \
  "                          only; default: the checkpoint's dtype)\n"                             \
  "  --emit-llvm DIR         write each JIT kernel's optimized LLVM IR to DIR\n"                     \
  "  --target T              the JIT's instruction set: native (default) or avx2\n"                 \
  "  --pack-weights W        where the JIT packs the weights: auto (default:\n"                     \
  "                          memory, or a file when they do not fit), memory or\n"                  \
  "                          file (deleted at once, in $OLMOC_PACK_DIR or /var/tmp)\n"              \
  "  --compute f32|bf16      matmuls of T > 1 tokens on vdpbf16ps with the inputs\n"                \
  "                          rounded to bf16 (JIT, AVX512_BF16, bf16 weights: f32 or f16\n"      \
  "                          ones are rounded as by --dtype bf16; default f32)\n"                  \
  "  --kv-cache f32|bf16     the JIT's KV caches: bf16 halves what a long context costs\n"          \
  "                          in memory and in reads per token (-O1/-O2; default f32)\n"

#define CLI_PIPELINE_OPTIONS(p)                                                                    \
  CLI_OPT_FLAG(NULL, "-O0", &(p)->o0), CLI_OPT_FLAG(NULL, "-O1", &(p)->o1),                        \
      CLI_OPT_FLAG(NULL, "-O2", &(p)->o2), CLI_OPT_STRING(NULL, "--passes", &(p)->passes),         \
      CLI_OPT_STRING(NULL, "--backend", &(p)->backend),                                            \
      CLI_OPT_INT("-t", "--threads", &(p)->threads, 1, 1024, NULL),                               \
      CLI_OPT_STRING(NULL, "--emit-llvm", &(p)->emit_llvm),                                       \
      CLI_OPT_STRING(NULL, "--target", &(p)->target), CLI_OPT_STRING(NULL, "--dtype", &(p)->dtype), \
      CLI_OPT_STRING(NULL, "--pack-weights", &(p)->pack_weights),                                 \
      CLI_OPT_STRING(NULL, "--compute", &(p)->compute), CLI_OPT_STRING(NULL, "--kv-cache", &(p)->kv_cache)

/* drv_configure, with its notice (a request it changed) printed as a
 * warning of `olmoc command`. */
int cli_configure(const char *command, const drv_request *r, drv_backend backend, drv_config *c, oc_error *e);

#endif
