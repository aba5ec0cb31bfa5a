/* `olmoc eval`: run a checkpoint on token ids through the reference
 * interpreter and show the most likely next tokens, then optionally decode
 * greedily through the KV cache. The slow, trusted path: what a downloaded
 * checkpoint computes before any pass or kernel touches it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "olmoc/interp.h"
#include "olmoc/olmo2.h"
#include "olmoc/weights.h"

static const char usage[] =
    "usage: olmoc eval -m MODEL --tokens ID,ID,... [options]\n"
    "\n"
    "Runs the token ids through the reference interpreter and prints the top\n"
    "next-token candidates after the last one.\n"
    "\n"
    "options:\n"
    "  -m, --model DIR    a checkpoint: config.json and model.safetensors (or shards)\n"
    "  --tokens LIST      prompt token ids, comma-separated\n"
    "  --top K            candidates to show (default 5)\n"
    "  -n, --decode N     then decode N more tokens greedily (default 0)\n"
    "  -h, --help         show this help\n";

typedef struct eval_options {
  const char *model;
  int32_t *tokens; /* [n_tokens + decode]: prompt, then room for what is decoded */
  long n_tokens, top, decode;
} eval_options;

static int parse_tokens(const char *list, eval_options *o, oc_error *e) {
  if (!list || !*list)
    return oc_fail(e, "--tokens: expected a comma-separated list of ids");
  size_t n = 1;
  for (const char *c = list; *c; c++)
    n += *c == ',';
  free(o->tokens);
  o->tokens = malloc(n * sizeof *o->tokens);
  if (!o->tokens)
    return oc_fail(e, "--tokens: out of memory");
  char *copy = strdup(list), *save = NULL;
  if (!copy)
    return oc_fail(e, "--tokens: out of memory");
  o->n_tokens = 0;
  int rc = 0;
  for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
    long id;
    rc = cli_int("--tokens", t, 0, INT32_MAX, &id, e);
    o->tokens[o->n_tokens++] = (int32_t)id;
  }
  free(copy);
  if (!rc && (size_t)o->n_tokens != n)
    rc = oc_fail(e, "--tokens: empty entry in '%s'", list);
  return rc;
}

static int parse_args(int argc, char **argv, eval_options *o, oc_error *e) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help"))
      return 1;
    if (!v)
      return oc_fail(e, "option '%s' needs a value", a);
    if (!strcmp(a, "-m") || !strcmp(a, "--model"))
      o->model = v;
    else if (!strcmp(a, "--tokens")) {
      if (parse_tokens(v, o, e))
        return -1;
    } else if (!strcmp(a, "--top")) {
      if (cli_int(a, v, 1, 1000, &o->top, e))
        return -1;
    } else if (!strcmp(a, "-n") || !strcmp(a, "--decode")) {
      if (cli_int(a, v, 0, 1 << 20, &o->decode, e))
        return -1;
    } else
      return oc_fail(e, "unknown option '%s'", a);
    i++;
  }
  if (!o->model || !o->tokens)
    return oc_fail(e, "-m MODEL and --tokens are required");
  int32_t *all = realloc(o->tokens, (size_t)(o->n_tokens + o->decode) * sizeof *all);
  if (!all)
    return oc_fail(e, "out of memory");
  o->tokens = all;
  return 0;
}

/* Index of the largest of the k best so far, kept sorted: a small insertion sort. */
static void print_top(const float *logits, int64_t vocab, int k) {
  int best[1000];
  int n = 0;
  for (int64_t v = 0; v < vocab; v++) {
    int at = n < k ? n++ : k;
    if (at == k && logits[v] <= logits[best[k - 1]])
      continue;
    if (at == k)
      at = k - 1;
    while (at > 0 && logits[best[at - 1]] < logits[v]) {
      best[at] = best[at - 1];
      at--;
    }
    best[at] = (int)v;
  }
  printf("top %d:", n);
  for (int i = 0; i < n; i++)
    printf(" %d (%.4f)", best[i], logits[best[i]]);
  printf("\n");
}

static int argmax(const float *x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; i++)
    if (x[i] > x[best])
      best = i;
  return (int)best;
}

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs T tokens from `at`; the last row of logits is returned. */
static const float *step(ir_interp *it, const int32_t *at, int64_t T, int64_t vocab, oc_error *e) {
  ir_binding in = {"tokens", {IR_I32, 1, {T}, at}};
  if (ir_interp_run(it, T, &in, 1, e))
    return NULL;
  const ir_tensor *logits = ir_interp_output(it, "logits");
  return (const float *)logits->data + (T - 1) * vocab;
}

static int evaluate(const eval_options *o, oc_error *e) {
  olmo2_config c;
  rt_weights *w = NULL;
  ir_graph *g = NULL;
  ir_interp *it = NULL;
  int rc = -1;
  if (olmo2_config_load(o->model, &c, e) || rt_weights_open(o->model, &w, e))
    goto done;
  /* The graph reads weights in the checkpoint's own dtype. */
  const rt_tensor *embed = rt_weights_find(w, "model.embed_tokens.weight");
  ir_dtype dtype = embed ? embed->dtype : IR_F32;
  if (olmo2_build_graph(&c, dtype, &g, e) || rt_weights_check_graph(w, g, e))
    goto done;
  int64_t needed = o->n_tokens + o->decode;
  if (needed > c.max_position_embeddings) {
    oc_fail(e, "%ld prompt + %ld decoded tokens exceed the model's context of %lld positions",
            o->n_tokens, o->decode, (long long)c.max_position_embeddings);
    goto done;
  }
  for (long i = 0; i < o->n_tokens; i++)
    if (o->tokens[i] >= c.vocab_size) {
      oc_fail(e, "--tokens: id %d is outside the vocabulary of %lld", o->tokens[i],
              (long long)c.vocab_size);
      goto done;
    }
  if (ir_interp_new(g, needed, rt_weights_lookup, w, &it, e))
    goto done;
  double t0 = seconds();
  const float *last = step(it, o->tokens, o->n_tokens, c.vocab_size, e);
  if (!last)
    goto done;
  printf("prefill: %ld tokens in %.3f s\n", o->n_tokens, seconds() - t0);
  print_top(last, c.vocab_size, (int)o->top);
  if (o->decode) {
    t0 = seconds();
    printf("greedy:");
    for (long i = 0; i < o->decode; i++) {
      int32_t *next = &o->tokens[o->n_tokens + i];
      *next = argmax(last, c.vocab_size);
      printf(" %d", *next);
      fflush(stdout);
      if (i + 1 < o->decode && !(last = step(it, next, 1, c.vocab_size, e)))
        goto done;
    }
    printf("\ndecode: %.3f s per token\n", (seconds() - t0) / (double)o->decode);
  }
  rc = 0;
done:
  ir_interp_free(it);
  ir_graph_free(g);
  rt_weights_close(w);
  return rc;
}

int cmd_eval(int argc, char **argv) {
  oc_error e = {{0}};
  eval_options o = {.top = 5};
  int parsed = parse_args(argc, argv, &o, &e), rc = 0;
  if (parsed == 1)
    fputs(usage, stdout);
  else if (parsed < 0) {
    fprintf(stderr, "olmoc eval: %s\n%s", e.msg, usage);
    rc = 2;
  } else if (evaluate(&o, &e)) {
    fprintf(stderr, "olmoc eval: %s\n", e.msg);
    rc = 1;
  }
  free(o.tokens);
  return rc;
}
