/* The C API of a model (olmoc/model_api.h) once it is open, whoever opened
 * it: the compiled library (aot/api.c) or the JIT (driver/api.c). A thin
 * layer over rt_model, the tokenizer and the sampler, turning their messages
 * into status codes. In libNAME.so these are exported, the rest is hidden.
 * Invariant: every failing call leaves its message in the model's error. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "olmoc/alloc.h"
#include "olmoc/executor.h"
#include "olmoc/model_handle.h"

struct olmoc_sampler {
  rt_sampler *s;
  float *row; /* [vocab]: the sampler may change the logits it is given */
  int32_t vocab;
};

olmoc_model *rt_api_model_new(void) { return oc_calloc(1, sizeof(olmoc_model)); }

olmoc_status rt_api_fail(olmoc_model *m, olmoc_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->error.msg, sizeof m->error.msg, fmt, ap);
  va_end(ap);
  return status;
}

olmoc_status rt_api_failed(olmoc_model *m, olmoc_status status) {
  return strstr(m->error.msg, "out of memory") ? OLMOC_ERROR_MEMORY : status;
}

/* Calls on a model that did not open say so. */
static bool usable(olmoc_model *m) {
  if (m && !m->model && !m->error.msg[0])
    snprintf(m->error.msg, sizeof m->error.msg, "the model did not open");
  return m && m->model;
}

OLMOC_API void olmoc_free(olmoc_model *m) {
  if (m && m->close)
    m->close(m->owner);
  free(m);
}

OLMOC_API const char *olmoc_errmsg(const olmoc_model *m) { return m ? m->error.msg : "out of memory"; }

OLMOC_API int32_t olmoc_vocab_size(const olmoc_model *m) { return m && m->model ? m->model->vocab : 0; }
OLMOC_API int64_t olmoc_context_size(const olmoc_model *m) { return m && m->model ? m->model->ctx : 0; }

OLMOC_API int64_t olmoc_position(const olmoc_model *m) {
  return m && m->model ? m->model->position(m->model->self) : 0;
}

OLMOC_API olmoc_status olmoc_set_threads(olmoc_model *m, int threads) {
  if (!usable(m))
    return OLMOC_ERROR_ARGUMENT;
  enum { MAX_THREADS = 1024 }; /* the command line's bound on -t */
  if (threads < 0)
    return rt_api_fail(m, OLMOC_ERROR_ARGUMENT, "threads: %d is negative", threads);
  if (threads > MAX_THREADS)
    return rt_api_fail(m, OLMOC_ERROR_ARGUMENT, "threads: %d is more than %d", threads, MAX_THREADS);
  int cores = rt_default_threads(); /* more only wait on each other at every barrier, as olmoc -t says */
  m->model->set_threads(m->model->self, threads && threads < cores ? threads : cores);
  return OLMOC_OK;
}

OLMOC_API olmoc_status olmoc_tokenize(olmoc_model *m, const char *text, size_t len, int32_t *ids,
                                      size_t cap, size_t *n) {
  if (!usable(m) || !n || (!text && len) || (!ids && cap))
    return m ? rt_api_fail(m, OLMOC_ERROR_ARGUMENT, "tokenize: text, ids or n is NULL") : OLMOC_ERROR_ARGUMENT;
  int32_t *all;
  if (rt_tokenizer_encode(m->tokenizer, text ? text : "", len, &all, n, &m->error))
    return rt_api_failed(m, OLMOC_ERROR_ARGUMENT);
  memcpy(ids, all, (*n < cap ? *n : cap) * sizeof *ids);
  free(all);
  return OLMOC_OK;
}

OLMOC_API const char *olmoc_token_bytes(const olmoc_model *m, int32_t id, size_t *len) {
  return m && m->model ? rt_tokenizer_bytes(m->tokenizer, id, len) : NULL;
}

OLMOC_API olmoc_status olmoc_detokenize(olmoc_model *m, const int32_t *ids, size_t n, char *text,
                                        size_t cap, size_t *len) {
  if (!usable(m) || !len || (!ids && n) || (!text && cap))
    return m ? rt_api_fail(m, OLMOC_ERROR_ARGUMENT, "detokenize: ids, text or len is NULL") : OLMOC_ERROR_ARGUMENT;
  char *all;
  if (rt_tokenizer_decode(m->tokenizer, ids, n, &all, len, &m->error))
    return rt_api_failed(m, OLMOC_ERROR_ARGUMENT);
  if (cap)
    snprintf(text, cap, "%s", all);
  free(all);
  return OLMOC_OK;
}

OLMOC_API int olmoc_is_eos(const olmoc_model *m, int32_t id) {
  for (int i = 0; m && m->model && i < m->n_eos; i++)
    if (m->eos[i] == id)
      return 1;
  return 0;
}

OLMOC_API olmoc_status olmoc_eval(olmoc_model *m, const int32_t *ids, size_t n, const float **logits) {
  if (!usable(m)) /* the open's own message stays */
    return OLMOC_ERROR_ARGUMENT;
  if (!ids || !logits || !n)
    return rt_api_fail(m, OLMOC_ERROR_ARGUMENT, "eval: needs ids, at least one, and logits");
  int64_t room = m->model->ctx - m->model->position(m->model->self);
  if ((int64_t)n > room)
    return rt_api_fail(m, OLMOC_ERROR_CONTEXT, "eval: %zu tokens do not fit: the KV cache has room for %lld "
                "more (rewind or reset)", n, (long long)room);
  *logits = m->model->forward(m->model->self, ids, (int64_t)n, &m->error);
  return *logits ? OLMOC_OK : rt_api_failed(m, OLMOC_ERROR_ARGUMENT);
}

OLMOC_API olmoc_status olmoc_rewind(olmoc_model *m, int64_t position) {
  if (!usable(m))
    return OLMOC_ERROR_ARGUMENT;
  if (position < 0 || position > m->model->position(m->model->self))
    return rt_api_fail(m, OLMOC_ERROR_ARGUMENT, "rewind: position %lld is not in [0, %lld]", (long long)position,
                (long long)m->model->position(m->model->self));
  m->model->rewind(m->model->self, position);
  return OLMOC_OK;
}

OLMOC_API void olmoc_reset(olmoc_model *m) {
  if (m && m->model)
    m->model->rewind(m->model->self, 0);
}

OLMOC_API olmoc_sampling olmoc_default_sampling(const olmoc_model *m) {
  rt_sampling s = m && m->model ? m->defaults : rt_sampling_default();
  return (olmoc_sampling){s.temperature, s.top_k, s.top_p, s.min_p, s.repetition_penalty, 0};
}

OLMOC_API olmoc_status olmoc_sampler_new(olmoc_model *m, const olmoc_sampling *s, olmoc_sampler **out) {
  if (!usable(m) || !s || !out)
    return m ? rt_api_fail(m, OLMOC_ERROR_ARGUMENT, "sampler_new: needs sampling options and out") : OLMOC_ERROR_ARGUMENT;
  *out = NULL;
  rt_sampling r = {s->temperature, s->top_k, s->top_p, s->min_p, s->repetition_penalty, s->seed};
  olmoc_sampler *sm = oc_calloc(1, sizeof *sm);
  if (!sm || !(sm->row = oc_malloc((size_t)m->model->vocab * sizeof *sm->row))) {
    free(sm);
    return rt_api_fail(m, OLMOC_ERROR_MEMORY, "out of memory");
  }
  if (rt_sampler_new(&r, m->model->vocab, &sm->s, &m->error)) {
    olmoc_sampler_free(sm);
    return rt_api_failed(m, OLMOC_ERROR_ARGUMENT);
  }
  sm->vocab = m->model->vocab;
  *out = sm;
  return OLMOC_OK;
}

OLMOC_API olmoc_status olmoc_sample(olmoc_model *m, olmoc_sampler *s, const float *logits,
                                    const int32_t *history, size_t n_history, int32_t *id) {
  if (!usable(m) || !s || !logits || !id || (!history && n_history))
    return m ? rt_api_fail(m, OLMOC_ERROR_ARGUMENT, "sample: needs a sampler, logits and id") : OLMOC_ERROR_ARGUMENT;
  memcpy(s->row, logits, (size_t)s->vocab * sizeof *s->row);
  *id = rt_sampler_sample(s->s, s->row, history, n_history);
  return OLMOC_OK;
}

OLMOC_API void olmoc_sampler_free(olmoc_sampler *s) {
  if (!s)
    return;
  rt_sampler_free(s->s);
  free(s->row);
  free(s);
}

typedef struct token_sink {
  olmoc_token_fn fn;
  void *user;
} token_sink;

static int pass_token(void *user, int32_t id) {
  const token_sink *t = user;
  return t->fn ? t->fn(t->user, id) : 0;
}

OLMOC_API olmoc_status olmoc_generate(olmoc_model *m, const int32_t *prompt, size_t n,
                                      const olmoc_sampling *s, int64_t max_new, olmoc_token_fn on_token,
                                      void *user, olmoc_generation *result) {
  if (!usable(m) || !prompt || !n || !s)
    return m ? rt_api_fail(m, OLMOC_ERROR_ARGUMENT, "generate: needs a prompt of at least one id and sampling")
             : OLMOC_ERROR_ARGUMENT;
  int64_t room = m->model->ctx - m->model->position(m->model->self);
  if ((int64_t)n > room)
    return rt_api_fail(m, OLMOC_ERROR_CONTEXT, "generate: a prompt of %zu tokens does not fit: the KV cache has "
                       "room for %lld more (rewind or reset)", n, (long long)room);
  rt_sampling r = {s->temperature, s->top_k, s->top_p, s->min_p, s->repetition_penalty, s->seed};
  rt_sampler *sampler;
  if (rt_sampler_new(&r, m->model->vocab, &sampler, &m->error))
    return rt_api_failed(m, OLMOC_ERROR_ARGUMENT);
  token_sink sink = {on_token, user};
  rt_generation g = {.max_new = max_new, .eos = m->eos, .n_eos = m->n_eos, .on_token = pass_token, .user = &sink};
  rt_generation_stats stats;
  int rc = rt_generate(m->model, sampler, prompt, (int64_t)n, &g, &stats, &m->error);
  rt_sampler_free(sampler);
  if (rc)
    return rt_api_failed(m, OLMOC_ERROR_ARGUMENT);
  if (result)
    *result = (olmoc_generation){stats.prompt_tokens, stats.generated_tokens, stats.prompt_seconds,
                                 stats.generate_seconds, (olmoc_stop)stats.stop};
  return OLMOC_OK;
}
