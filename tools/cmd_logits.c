/* `olmoc logits`: the f32 logits of every position of a prompt, written as a
 * NumPy .npy array [T, vocab]: how one compares an engine with PyTorch
 * (numpy.load, then subtract). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pipeline_args.h"

static const char usage[] =
    "usage: olmoc logits [-m MODEL] (-p TEXT | --ids ID,ID,...) -o FILE.npy\n"
    "\n"
    "options:\n"
    "  -m, --model DIR         checkpoint directory (default: the bundled model)\n"
    "  -p, --prompt TEXT       text to tokenize\n"
    "  --ids LIST              token ids instead of text\n"
    "  -o, --output FILE       the .npy file to write (f32, shape [tokens, vocab])\n"
    CLI_PIPELINE_USAGE
    "  --backend B             jit (default: LLVM kernels on all cores, any pipeline) or\n"
    "                          interp (the reference interpreter, the oracle, one thread)\n"
    "  -t, --threads N         JIT threads (default: all cores)\n"
    "  -h, --help              show this help\n";

static void write_npy(FILE *f, const float *data, int64_t rows, int64_t cols) {
  char dict[128];
  int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                   (long long)rows, (long long)cols);
  int total = 10 + n + 1, padded = (total + 63) / 64 * 64;
  unsigned short header_len = (unsigned short)(padded - 10);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fputc(header_len & 0xff, f);
  fputc(header_len >> 8, f);
  fwrite(dict, 1, (size_t)n, f);
  for (int i = total; i < padded; i++)
    fputc(' ', f);
  fputc('\n', f);
  fwrite(data, sizeof *data, (size_t)(rows * cols), f);
}

static int logits(const char *dir, drv_request *pipeline, bool quiet, const char *prompt, const char *ids_text,
                  const char *out_path, oc_error *e) {
  drv_config c;
  drv_model m;
  oc_progress_bar bar;
  pipeline->progress = oc_progress_stderr(&bar, quiet);
  if (cli_configure("logits", pipeline, DRV_JIT, &c, e) || drv_model_open(&m, dir, &c, prompt != NULL, e))
    return -1;
  int32_t *ids = NULL;
  size_t n = 0;
  int rc = prompt ? rt_tokenizer_encode(m.tokenizer, prompt, strlen(prompt), &ids, &n, e)
                  : cli_ids("--ids", ids_text, &ids, &n, e);
  if (!rc && (n == 0 || (int64_t)n > m.model.ctx))
    rc = oc_fail(e, "%zu tokens: need between 1 and the model's context of %lld", n,
                 (long long)m.model.ctx);
  const float *rows = rc ? NULL : m.model.forward(m.model.self, ids, (int64_t)n, e);
  rt_output out;
  if (!rows || rt_output_open(&out, out_path, e))
    rc = -1;
  else {
    write_npy(out.f, rows, (int64_t)n, m.model.vocab); /* a failed write is reported, with its */
    if (!(rc = rt_output_close(&out, e)))                /* cause, by the close */
      fprintf(stderr, "wrote %s: f32[%zu,%d]\n", out_path, n, m.model.vocab);
  }
  free(ids);
  drv_model_close(&m);
  return rc;
}

int cmd_logits(int argc, char **argv) {
  const char *dir = drv_default_model(), *prompt = NULL, *ids = NULL, *out = NULL;
  drv_request pipeline = {0};
  bool quiet = false;
  const cli_option opts[] = {
      CLI_PIPELINE_OPTIONS(&pipeline),
      CLI_OPT_FLAG("-q", "--quiet", &quiet),
      CLI_OPT_STRING("-m", "--model", &dir),
      CLI_OPT_STRING("-p", "--prompt", &prompt),
      CLI_OPT_STRING(NULL, "--ids", &ids),
      CLI_OPT_STRING("-o", "--output", &out),
      {0},
  };
  oc_error e = {{0}};
  int parsed = cli_parse(argc, argv, opts, NULL, &e);
  if (!parsed && !prompt == !ids)
    parsed = oc_fail(&e, "give either -p TEXT or --ids LIST");
  if (!parsed && !out)
    parsed = oc_fail(&e, "-o FILE.npy is required");
  return cli_exit("logits", usage, parsed, !parsed && logits(dir, &pipeline, quiet, prompt, ids, out, &e), &e);
}
