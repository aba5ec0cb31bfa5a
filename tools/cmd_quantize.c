/* `olmoc quantize`: its options (drv_quantize does the work). */
#include <time.h>

#include "cli.h"
#include "pipeline_args.h"
#include "olmoc/driver.h"

static const char usage[] =
    "usage: olmoc quantize -m MODEL -o DIR [options]\n"
    "\n"
    "Quantizes a checkpoint's matmul weights once, as `olmoc run --dtype q4|q8`\n"
    "does at every load, into the directory DIR: its config, tokenizer and\n"
    "generation files and model.olmoc (docs/formats.md). `olmoc run -m DIR` (and\n"
    "logits, perplexity, compile) then starts without quantizing, on the same bits.\n"
    "\n"
    "options:\n"
    "  -m, --model DIR         the checkpoint (f32, bf16 or f16 safetensors)\n"
    "  -o, --output DIR        the quantized checkpoint to write (made if missing)\n"
    "  --dtype q4|q8           q4: 4-bit matmul weights with the LM head int8 (default);\n"
    "                          q8: int8 ones; f16 scales per group of 32\n"
    "  --target native|avx2    the panels' width: this CPU's (default), or AVX2's\n"
    "  -t, --threads N         threads quantizing (default: the cores)\n"
    "  --no-mmap               read the checkpoint into memory instead of mapping it\n"
    "  -q, --quiet             no progress on standard error (it shows for steps over 1 s)\n"
    "  -h, --help              show this help\n";

int cmd_quantize(int argc, char **argv) {
  const char *model = NULL, *output = NULL;
  bool quiet = false;
  drv_request r = {.dtype = "q4"};
  const cli_option opts[] = {
      CLI_OPT_STRING("-m", "--model", &model),
      CLI_OPT_STRING("-o", "--output", &output),
      CLI_OPT_STRING(NULL, "--dtype", &r.dtype),
      CLI_OPT_STRING(NULL, "--target", &r.target),
      CLI_OPT_INT("-t", "--threads", &r.threads, 1, 1024, NULL),
      CLI_OPT_FLAG(NULL, "--no-mmap", &r.no_mmap),
      CLI_OPT_FLAG("-q", "--quiet", &quiet),
      {0},
  };
  oc_error e = {{0}};
  int parsed = cli_parse(argc, argv, opts, NULL, &e);
  if (!parsed && (!model || !output))
    parsed = oc_fail(&e, "give the checkpoint (-m DIR) and where to write (-o DIR)");
  drv_config c;
  oc_progress_bar bar;
  r.progress = oc_progress_stderr(&bar, quiet);
  double t0 = rt_seconds();
  int failed = !parsed && (cli_configure("quantize", &r, DRV_JIT, &c, &e) || drv_quantize(model, &c, output, &e));
  if (!parsed && !failed)
    fprintf(stderr, "quantized %s to %s (%s) in %.1f s\n", model, output, r.dtype, rt_seconds() - t0);
  return cli_exit("quantize", usage, parsed, failed, &e);
}
