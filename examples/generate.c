/* A compiled model from C: greedy continuation of a prompt through the
 * library `olmoc compile --emit lib -o DIR/NAME` makes (libNAME.so, NAME.h):
 *
 *   olmoc compile -m models/olmo2-tiny --emit lib -o /tmp/m/tiny
 *   cc -I/tmp/m -DMODEL_HEADER='"tiny.h"' examples/generate.c -L/tmp/m -ltiny \
 *      -Wl,-rpath,/tmp/m -o generate
 *   ./generate "Language modeling is " 16
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MODEL_HEADER
#define MODEL_HEADER "tiny.h"
#endif
#include MODEL_HEADER

#define MAX_TOKENS 512

static int failed(olmoc_model *m, olmoc_status s) {
  if (s != OLMOC_OK)
    fprintf(stderr, "generate: %s (status %d)\n", olmoc_errmsg(m), (int)s);
  return s != OLMOC_OK;
}

int main(int argc, char **argv) {
  const char *prompt = argc > 1 ? argv[1] : "Language modeling is ";
  size_t n_new = argc > 2 ? (size_t)atoi(argv[2]) : 16;
  olmoc_model *m;
  if (failed(m, olmoc_open(NULL, &m))) { /* NULL: default parameters, weights beside the library */
    olmoc_free(m);
    return 1;
  }
  int32_t ids[MAX_TOKENS];
  size_t n;
  olmoc_sampling greedy = {.temperature = 0, .top_p = 1, .repetition_penalty = 1};
  olmoc_sampler *sampler = NULL;
  const float *logits; /* one row per token of the last eval */
  int rc = failed(m, olmoc_tokenize(m, prompt, strlen(prompt), ids, MAX_TOKENS, &n));
  if (!rc && (n == 0 || n > MAX_TOKENS)) {
    fprintf(stderr, "generate: the prompt is %zu tokens; 1 to %d fit\n", n, MAX_TOKENS);
    rc = 1;
  }
  rc = rc || failed(m, olmoc_sampler_new(m, &greedy, &sampler)) || failed(m, olmoc_eval(m, ids, n, &logits));
  if (!rc && n + n_new > MAX_TOKENS)
    n_new = MAX_TOKENS - n;
  fputs(prompt, stdout);
  const float *next = rc ? NULL : logits + (n - 1) * (size_t)olmoc_vocab_size(m); /* the prompt's last row */
  for (size_t i = 0; !rc && i < n_new; i++) {
    int32_t id;
    if ((rc = failed(m, olmoc_sample(m, sampler, next, ids, n, &id))) || olmoc_is_eos(m, id))
      break;
    ids[n++] = id;
    size_t len;
    const char *bytes = olmoc_token_bytes(m, id, &len);
    fwrite(bytes, 1, len, stdout);
    if (i + 1 < n_new && !(rc = failed(m, olmoc_eval(m, &id, 1, &logits))))
      next = logits;
  }
  fputs("\n", stdout);
  olmoc_sampler_free(sampler);
  olmoc_free(m);
  return rc;
}
