/* `olmoc perplexity`: how well a model predicts a text. The text is cut into
 * non-overlapping whole windows of N tokens, each evaluated from an empty cache;
 * perplexity = exp(mean negative log-likelihood of tokens 1..N-1 of every
 * window given the tokens before them in the window). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pipeline_args.h"

static const char usage[] =
    "usage: olmoc perplexity [-m MODEL] -f FILE [--ctx N]\n"
    "\n"
    "options:\n"
    "  -m, --model DIR         checkpoint directory (default: the bundled model)\n"
    "  -f, --file FILE         the text ('-': standard input)\n"
    "  --ctx N                 tokens per window (default: the model's context)\n"
    "  --max-tokens N          evaluate only the first N tokens of the text\n"
    CLI_PIPELINE_USAGE
    "  --backend B             interp (the reference interpreter, the default) or jit\n"
    "                          (LLVM kernels on all cores, any -O level or --passes)\n"
    "  -t, --threads N         JIT threads (default: all cores)\n"
    "  -h, --help              show this help\n";

/* -log softmax(logits)[target], in double. */
static double nll(const float *logits, int32_t vocab, int32_t target) {
  double max = logits[0], sum = 0;
  for (int32_t v = 1; v < vocab; v++)
    max = logits[v] > max ? logits[v] : max;
  for (int32_t v = 0; v < vocab; v++)
    sum += exp((double)logits[v] - max);
  return log(sum) + max - (double)logits[target];
}

static int perplexity(const char *dir, drv_request *pipeline, bool quiet, const char *file, long max_tokens,
                      oc_error *e) {
  oc_progress_bar bar;
  pipeline->progress = oc_progress_stderr(&bar, quiet);
  drv_config c;
  drv_model m;
  char *text = NULL;
  int32_t *ids = NULL;
  size_t len, n;
  int rc = -1;
  if (drv_configure(pipeline, DRV_INTERP, &c, e) || cli_read_file(file, &text, &len, e) ||
      drv_model_open(&m, dir, &c, true, e)) {
    free(text);
    return -1;
  }
  if (rt_tokenizer_encode(m.tokenizer, text, len, &ids, &n, e))
    goto done;
  if (max_tokens > 0 && (size_t)max_tokens < n)
    n = (size_t)max_tokens;
  int64_t window = m.model.ctx;
  if (n < 2) {
    oc_fail(e, "%s: %zu tokens: perplexity needs at least 2", file, n);
    goto done;
  }
  /* Whole windows only, as llama.cpp and the reference script count: a tail
   * shorter than a window is dropped, unless the text is shorter than one. */
  int64_t windows = (int64_t)n / window;
  if (windows == 0)
    windows = 1, window = (int64_t)n;
  double total = 0, t0 = rt_seconds();
  int64_t counted = 0;
  for (int64_t w = 0; w < windows; w++) {
    size_t at = (size_t)(w * window);
    int64_t T = window;
    m.model.rewind(m.model.self, 0);
    const float *logits = m.model.forward(m.model.self, ids + at, T, e);
    if (!logits)
      goto done;
    for (int64_t i = 1; i < T; i++)
      total += nll(logits + (i - 1) * m.model.vocab, m.model.vocab, ids[at + (size_t)i]);
    counted += T - 1;
  }
  printf("perplexity: %.4f over %lld predicted tokens (%lld windows of %lld tokens), %.1f tok/s\n",
         exp(total / (double)counted), (long long)counted, (long long)windows, (long long)window,
         (double)n / (rt_seconds() - t0));
  rc = 0;
done:
  free(ids);
  free(text);
  drv_model_close(&m);
  return rc;
}

int cmd_perplexity(int argc, char **argv) {
  const char *dir = drv_default_model(), *file = NULL;
  long max_tokens = 0;
  drv_request pipeline = {0};
  bool quiet = false;
  const cli_option opts[] = {
      CLI_PIPELINE_OPTIONS(&pipeline),
      CLI_OPT_FLAG("-q", "--quiet", &quiet),
      CLI_OPT_STRING("-m", "--model", &dir),
      CLI_OPT_STRING("-f", "--file", &file),
      CLI_OPT_INT(NULL, "--ctx", &pipeline.ctx, 2, 1 << 24, NULL),
      CLI_OPT_INT(NULL, "--max-tokens", &max_tokens, 2, 1e12, NULL),
      {0},
  };
  oc_error e = {{0}};
  int parsed = cli_parse(argc, argv, opts, NULL, &e);
  if (!parsed && !file)
    parsed = oc_fail(&e, "-f FILE is required");
  return cli_exit("perplexity", usage, parsed, !parsed && perplexity(dir, &pipeline, quiet, file, max_tokens, &e), &e);
}
