/* A checkpoint from C through olmoc's JIT API (olmoc/olmoc.h): load a
 * Hugging Face OLMo 2 directory, continue a prompt greedily with a token
 * callback that streams the text, then score the prompt: the logits of all
 * its positions in one eval, and how likely the model found each next token.
 * Built with the project (CMake target jit_generate: a program links the
 * library olmoc_driver, which brings the compiler, the runtime and LLVM):
 *
 *   build/jit_generate models/olmo2-tiny "Language modeling is " 16
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "olmoc/olmoc.h"

#define MAX_PROMPT 512

static int failed(olmoc_model *m, olmoc_status s) {
  if (s != OLMOC_OK)
    fprintf(stderr, "jit_generate: %s (status %d)\n", olmoc_errmsg(m), (int)s);
  return s != OLMOC_OK;
}

/* Streams each token's bytes as it is chosen. */
static int print_token(void *user, int32_t id) {
  size_t len;
  const char *bytes = olmoc_token_bytes(user, id, &len);
  fwrite(bytes, 1, len, stdout);
  fflush(stdout);
  return 0;
}

/* log p(ids[i+1] | ids[..i]) for each position of the prompt, from one eval. */
static int score(olmoc_model *m, const int32_t *ids, size_t n) {
  const float *logits;
  if (failed(m, olmoc_eval(m, ids, n, &logits)))
    return 1;
  int32_t vocab = olmoc_vocab_size(m);
  double total = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    const float *row = logits + i * (size_t)vocab;
    double max = row[0], sum = 0;
    for (int32_t v = 1; v < vocab; v++)
      max = row[v] > max ? row[v] : max;
    for (int32_t v = 0; v < vocab; v++)
      sum += exp(row[v] - max);
    total += row[ids[i + 1]] - max - log(sum);
  }
  fprintf(stderr, "prompt: %zu tokens, log-likelihood of the last %zu: %.4f\n", n, n - 1, total);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: jit_generate MODEL_DIR PROMPT [TOKENS]\n");
    return 2;
  }
  const char *prompt = argv[2];
  int64_t n_new = argc > 3 ? atoll(argv[3]) : 16;
  olmoc_model *m;
  olmoc_load_options o = olmoc_default_load_options();
  if (failed(m, olmoc_load(argv[1], &o, &m))) {
    olmoc_free(m);
    return 1;
  }
  int32_t ids[MAX_PROMPT];
  size_t n;
  olmoc_sampling greedy = {.temperature = 0, .top_p = 1, .repetition_penalty = 1};
  olmoc_generation g;
  int rc = failed(m, olmoc_tokenize(m, prompt, strlen(prompt), ids, MAX_PROMPT, &n));
  if (!rc && (n == 0 || n > MAX_PROMPT)) {
    fprintf(stderr, "jit_generate: the prompt is %zu tokens; 1 to %d fit\n", n, MAX_PROMPT);
    rc = 1;
  }
  if (!rc) {
    fputs(prompt, stdout);
    rc = failed(m, olmoc_generate(m, ids, n, &greedy, n_new, print_token, m, &g));
    fputs("\n", stdout);
  }
  if (!rc) {
    fprintf(stderr, "generated %lld tokens (stop %d)\n", (long long)g.generated_tokens, (int)g.stop);
    olmoc_reset(m);
    rc = score(m, ids, n);
  }
  olmoc_free(m);
  return rc;
}
