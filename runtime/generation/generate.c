/* rt_generate: one prefill call for the whole prompt, then one forward call
 * per generated token. The history the sampler's repetition penalty sees is
 * the prompt plus everything generated, in one array sized for the context. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "olmoc/alloc.h"
#include "olmoc/generate.h"

static bool is_eos(const rt_generation *g, int32_t id) {
  for (int i = 0; i < g->n_eos; i++)
    if (g->eos[i] == id)
      return true;
  return false;
}

int rt_generate(const rt_model *m, rt_sampler *s, const int32_t *prompt, int64_t n_prompt,
                const rt_generation *g, rt_generation_stats *stats, oc_error *e) {
  *stats = (rt_generation_stats){.prompt_tokens = n_prompt};
  int64_t start = m->position(m->self);
  if (n_prompt < 1)
    return oc_fail(e, "the prompt is empty: generation needs at least one token");
  if (start + n_prompt > m->ctx)
    return oc_fail(e, "the prompt is %lld tokens but the context holds %lld positions%s",
                   (long long)n_prompt, (long long)(m->ctx - start),
                   start ? " after the conversation so far" : "");
  /* room for the prompt, everything the context can still take, and the one
   * token sampled when it is full */
  int64_t room = m->ctx - start + 1;
  int32_t *history = oc_malloc((size_t)room * sizeof *history);
  if (!history)
    return oc_fail(e, "out of memory for %lld tokens of history", (long long)room);
  memcpy(history, prompt, (size_t)n_prompt * sizeof *history);
  int64_t n = n_prompt;

  int rc = 0;
  double start_time = rt_seconds();
  const float *rows = m->forward(m->self, prompt, n_prompt, e);
  stats->prompt_seconds = stats->first_token_seconds = rt_seconds() - start_time;
  float *logits = oc_malloc((size_t)m->vocab * sizeof *logits);
  if (!rows || !logits) {
    rc = rows ? oc_fail(e, "out of memory for logits") : -1;
    goto done;
  }
  memcpy(logits, rows + (n_prompt - 1) * m->vocab, (size_t)m->vocab * sizeof *logits);

  /* Each step feeds the previous token only when another one is wanted, so
   * the last token sampled is never run for nothing. */
  double t0 = rt_seconds();
  for (int64_t made = 0;; made++) {
    if (g->max_new >= 0 && made >= g->max_new) {
      stats->stop = RT_STOP_LENGTH;
      break;
    }
    if (made > 0) {
      if (start + n > m->ctx) { /* history[n-1] would need row start+n-1 */
        stats->stop = RT_STOP_CONTEXT;
        break;
      }
      if (!(rows = m->forward(m->self, &history[n - 1], 1, e))) {
        rc = -1;
        break;
      }
      memcpy(logits, rows, (size_t)m->vocab * sizeof *logits);
    }
    if (g->on_logits)
      g->on_logits(g->user, logits);
    for (int i = 0; g->ignore_eos && i < g->n_eos; i++)
      if (g->eos[i] >= 0 && g->eos[i] < m->vocab)
        logits[g->eos[i]] = -INFINITY;
    int32_t id = rt_sampler_sample(s, logits, history, (size_t)n);
    if (made == 0)
      stats->first_token_seconds = rt_seconds() - start_time;
    if (is_eos(g, id)) {
      stats->stop = RT_STOP_EOS;
      break;
    }
    history[n++] = id;
    stats->generated_tokens++;
    if (g->on_token && g->on_token(g->user, id)) {
      stats->stop = RT_STOP_CALLER;
      break;
    }
  }
  stats->generate_seconds = rt_seconds() - t0;
done:
  free(logits);
  free(history);
  return rc;
}
