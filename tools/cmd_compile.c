/* `olmoc compile`: its options, and the runtime built into olmoc
 * (aot/blobs.S.in) that drv_compile links every model binary against. */
#include <string.h>

#include "cli.h"
#include "olmoc/driver.h"

extern const unsigned char olmoc_blob_runtime[], olmoc_blob_runtime_end[];
extern const unsigned char olmoc_blob_pcre2[], olmoc_blob_pcre2_end[];
extern const unsigned char olmoc_blob_edit[], olmoc_blob_edit_end[];
extern const unsigned char olmoc_blob_tinfo[], olmoc_blob_tinfo_end[];
extern const unsigned char olmoc_blob_bsd[], olmoc_blob_bsd_end[];
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
    "  --dtype f32|bf16|q8|q4  the weights' dtype in the binary (default: the checkpoint's;\n"
    "                          q8: int8 matmul weights with f16 group scales, q4: 4-bit\n"
    "                          ones with the LM head int8, quantized while compiling, as\n"
    "                          olmoc run --dtype q8|q4 does at load)\n"
    "  --compute f32|bf16      bf16: matmuls of T > 1 tokens on vdpbf16ps with inputs rounded\n"
    "                          to bf16 (a target with AVX512_BF16; bf16 weights, the default\n"
    "                          dtype then; default f32)\n"
    "  --kv-cache f32|bf16     the KV caches' dtype (bf16: half the memory and reads of a\n"
    "                          long context; -O1/-O2; default f32)\n"
    "  --embed-weights         put the weights inside the binary: one file to copy\n"
    "  --target native|avx2    the CPU to compile for: this one (default), or any with AVX2\n"
    "                          and FMA (haswell and later)\n"
    "  --ctx N                 the longest context the binary will run (default: the model's)\n"
    "  -O0, -O1, -O2           pass pipeline, as for run (default -O2; `olmoc passes`)\n"
    "  --passes=A,B            run these passes instead\n"
    "  --emit-llvm DIR         write each kernel's optimized LLVM IR to DIR\n"
    "  -q, --quiet             no progress on standard error (it shows for steps over 1 s)\n"
    "  -h, --help              show this help\n";

typedef struct compile_options {
  const char *model, *output, *emit;
  bool embed, quiet;
  drv_request pipeline;
} compile_options;

static int compile(compile_options *o, oc_error *e) {
  bool lib = o->emit && !strcmp(o->emit, "lib");
  if (o->emit && !lib && strcmp(o->emit, "exe"))
    return oc_fail(e, "--emit: expected exe or lib, found '%s'", o->emit);
  const cg_blob archives[] = {
      {"libolmoc_aot.a", olmoc_blob_runtime, (size_t)(olmoc_blob_runtime_end - olmoc_blob_runtime)},
      {"libpcre2-8.a", olmoc_blob_pcre2, (size_t)(olmoc_blob_pcre2_end - olmoc_blob_pcre2)},
      /* the chat's line editor, then what it calls */
      {"libedit.a", olmoc_blob_edit, (size_t)(olmoc_blob_edit_end - olmoc_blob_edit)},
      {"libtinfo.a", olmoc_blob_tinfo, (size_t)(olmoc_blob_tinfo_end - olmoc_blob_tinfo)},
      {"libbsd.a", olmoc_blob_bsd, (size_t)(olmoc_blob_bsd_end - olmoc_blob_bsd)},
  };
  const cg_blob header = {"model_api.h", olmoc_blob_api_h, (size_t)(olmoc_blob_api_h_end - olmoc_blob_api_h)};
  drv_compile_request r = {.output = o->output, .lib = lib, .embed = o->embed, .archives = archives,
                           .n_archives = sizeof archives / sizeof *archives, .header = &header};
  drv_config c;
  oc_progress_bar bar;
  o->pipeline.progress = oc_progress_stderr(&bar, o->quiet);
  return drv_configure(&o->pipeline, DRV_OBJECT, &c, e) ||
         drv_compile(o->model ? o->model : drv_default_model(), &c, &r, e);
}

int cmd_compile(int argc, char **argv) {
  compile_options o = {0};
  const cli_option opts[] = {
      CLI_OPT_STRING("-m", "--model", &o.model),
      CLI_OPT_STRING("-o", "--output", &o.output),
      CLI_OPT_STRING(NULL, "--emit", &o.emit),
      CLI_OPT_STRING(NULL, "--dtype", &o.pipeline.dtype),
      CLI_OPT_STRING(NULL, "--compute", &o.pipeline.compute),
      CLI_OPT_STRING(NULL, "--kv-cache", &o.pipeline.kv_cache),
      CLI_OPT_FLAG(NULL, "--embed-weights", &o.embed),
      CLI_OPT_STRING(NULL, "--target", &o.pipeline.target),
      CLI_OPT_INT(NULL, "--ctx", &o.pipeline.ctx, 1, 1 << 24, NULL),
      CLI_OPT_FLAG(NULL, "-O0", &o.pipeline.o0),
      CLI_OPT_FLAG(NULL, "-O1", &o.pipeline.o1),
      CLI_OPT_FLAG(NULL, "-O2", &o.pipeline.o2),
      CLI_OPT_STRING(NULL, "--passes", &o.pipeline.passes),
      CLI_OPT_STRING(NULL, "--emit-llvm", &o.pipeline.emit_llvm),
      CLI_OPT_FLAG("-q", "--quiet", &o.quiet),
      {0},
  };
  oc_error e = {{0}};
  int parsed = cli_parse(argc, argv, opts, NULL, &e);
  return cli_exit("compile", usage, parsed, !parsed && compile(&o, &e), &e);
}
