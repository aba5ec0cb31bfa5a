/* `olmoc perplexity`: how well a model predicts a text. The text is cut into
 * non-overlapping whole windows of N tokens, each evaluated from an empty cache;
 * perplexity = exp(mean negative log-likelihood of tokens 1..N-1 of every
 * window given the tokens before them in the window), with its standard
 * error, and the figure so far after each window as progress. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pipeline_args.h"

static const char usage[] =
    "usage: olmoc perplexity [-m MODEL] -f FILE [--ctx N]\n"
    "\n"
    "Prints perplexity ± its standard error (as llama-perplexity computes it);\n"
    "the figure so far after each window shows as progress.\n"
    "\n"
    "options:\n"
    "  -m, --model DIR         checkpoint directory (default: the bundled model)\n"
    "  -f, --file FILE         the text ('-': standard input), which must be UTF-8\n"
    "                          without NUL bytes (the error names the first bad byte)\n"
    "  --allow-invalid-utf8    evaluate FILE's bytes as they are (ill-formed UTF-8 as U+FFFD)\n"
    "  --ctx N                 tokens per window (default: the model's context)\n"
    "  --max-tokens N          evaluate only the first N tokens of the text\n"
    CLI_PIPELINE_USAGE
    "  --backend B             jit (default: LLVM kernels on all cores, any pipeline) or\n"
    "                          interp (the reference interpreter, the oracle, one thread)\n"
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

/* What the windows add up: the sum of the NLLs and of their squares, over
 * `count` predicted tokens, in double. */
typedef struct nll_sums {
  double sum, squares;
  int64_t count;
} nll_sums;

static double ppl_of(const nll_sums *s) { return exp(s->sum / (double)s->count); }

/* The standard error of the perplexity as llama.cpp's perplexity tool
 * computes it (tools/perplexity/perplexity.cpp): with m the mean NLL and
 * v = mean(NLL^2) - m^2 their variance over the N predicted tokens,
 * ppl * sqrt(v / (N - 1)), the delta method on exp(m). NaN for N < 2. */
static double ppl_error(const nll_sums *s) {
  double n = (double)s->count, mean = s->sum / n, var = s->squares / n - mean * mean;
  return s->count < 2 ? NAN : var > 0 ? ppl_of(s) * sqrt(var / (n - 1)) : 0;
}

typedef struct text_options {
  const char *file;
  bool allow_invalid, quiet;
  long max_tokens;
} text_options;

static int perplexity(const char *dir, drv_request *pipeline, const text_options *o, oc_error *e) {
  oc_progress_bar bar;
  pipeline->progress = oc_progress_stderr(&bar, o->quiet);
  drv_config c;
  drv_model m;
  char *text = NULL;
  int32_t *ids = NULL;
  size_t len, n;
  int rc = -1;
  if (cli_configure("perplexity", pipeline, DRV_JIT, &c, e) ||
      cli_read_text(o->file, o->allow_invalid, &text, &len, e) ||
      drv_model_open(&m, dir, &c, true, e)) {
    free(text);
    return -1;
  }
  if (rt_tokenizer_encode(m.tokenizer, text, len, &ids, &n, e))
    goto done;
  if (o->max_tokens > 0 && (size_t)o->max_tokens < n)
    n = (size_t)o->max_tokens;
  int64_t window = m.model.ctx;
  if (n < 2) {
    oc_fail(e, "%s: %zu tokens: perplexity needs at least 2", o->file, n);
    goto done;
  }
  /* Whole windows only, as llama.cpp and the reference script count: a tail
   * shorter than a window is dropped, unless the text is shorter than one. */
  int64_t windows = (int64_t)n / window;
  if (windows == 0)
    windows = 1, window = (int64_t)n;
  nll_sums s = {0};
  double t0 = rt_seconds();
  oc_step evaluated;
  oc_step_begin(&evaluated, pipeline->progress, "perplexity", windows, "windows", "tok");
  for (int64_t w = 0; w < windows; w++) {
    size_t at = (size_t)(w * window);
    int64_t T = window;
    m.model.rewind(m.model.self, 0);
    const float *logits = m.model.forward(m.model.self, ids + at, T, e);
    if (!logits)
      break;
    for (int64_t i = 1; i < T; i++) {
      double x = nll(logits + (i - 1) * m.model.vocab, m.model.vocab, ids[at + (size_t)i]);
      s.sum += x;
      s.squares += x * x;
    }
    s.count += T - 1;
    snprintf(evaluated.note, sizeof evaluated.note, "%.4f", ppl_of(&s));
    oc_step_add(&evaluated, 1, (double)T);
  }
  oc_step_end(&evaluated);
  if (evaluated.done < windows)
    goto done;
  printf("perplexity: %.4f ± %.4f over %lld predicted tokens (%lld windows of %lld tokens), %.1f tok/s\n",
         ppl_of(&s), ppl_error(&s), (long long)s.count, (long long)windows, (long long)window,
         (double)n / (rt_seconds() - t0));
  rc = 0;
done:
  free(ids);
  free(text);
  drv_model_close(&m);
  return rc;
}

int cmd_perplexity(int argc, char **argv) {
  const char *dir = drv_default_model();
  text_options o = {0};
  drv_request pipeline = {0};
  const cli_option opts[] = {
      CLI_PIPELINE_OPTIONS(&pipeline),
      CLI_OPT_FLAG("-q", "--quiet", &o.quiet),
      CLI_OPT_STRING("-m", "--model", &dir),
      CLI_OPT_STRING("-f", "--file", &o.file),
      CLI_OPT_FLAG(NULL, "--allow-invalid-utf8", &o.allow_invalid),
      CLI_OPT_INT(NULL, "--ctx", &pipeline.ctx, 2, 1 << 24, NULL),
      CLI_OPT_INT(NULL, "--max-tokens", &o.max_tokens, 2, 1e12, NULL),
      {0},
  };
  oc_error e = {{0}};
  int parsed = cli_parse(argc, argv, opts, NULL, &e);
  if (!parsed && !o.file)
    parsed = oc_fail(&e, "-f FILE is required");
  return cli_exit("perplexity", usage, parsed, !parsed && perplexity(dir, &pipeline, &o, &e), &e);
}
