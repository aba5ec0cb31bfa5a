/* The C API of a compiled model library (olmoc/model_api.h, shipped as
 * NAME.h): a thin layer over rt_aot_open, the tokenizer, the program and
 * the sampler, turning their messages into status codes. The only exported
 * symbols of libNAME.so are these functions (the rest is built hidden).
 * Invariant: every failing call leaves its message in the model's error. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "olmoc/alloc.h"
#include "olmoc/aot.h"
#include "olmoc/model_api.h"

extern const rt_aot_image olmoc_aot_image;

struct olmoc_model {
  rt_aot_model *m; /* NULL when opening failed */
  oc_error error;
};

struct olmoc_sampler {
  rt_sampler *s;
  float *row; /* [vocab]: the sampler may change the logits it is given */
  int32_t vocab;
};

static olmoc_status fail(olmoc_model *m, olmoc_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->error.msg, sizeof m->error.msg, fmt, ap);
  va_end(ap);
  return status;
}

static olmoc_status failed(olmoc_model *m, olmoc_status status) {
  return strstr(m->error.msg, "out of memory") ? OLMOC_ERROR_MEMORY : status;
}

/* Calls on a model that did not open say so. */
static bool usable(olmoc_model *m) {
  if (m && !m->m && !m->error.msg[0])
    snprintf(m->error.msg, sizeof m->error.msg, "the model did not open");
  return m && m->m;
}

OLMOC_API olmoc_params olmoc_default_params(void) { return (olmoc_params){0}; }

OLMOC_API olmoc_status olmoc_open(const olmoc_params *params, olmoc_model **out) {
  olmoc_model *m = oc_calloc(1, sizeof *m);
  *out = m;
  if (!m)
    return OLMOC_ERROR_MEMORY;
  olmoc_params p = params ? *params : olmoc_default_params();
  if (p.context < 0 || p.threads < 0)
    return fail(m, OLMOC_ERROR_ARGUMENT, "context (%lld) and threads (%d) must not be negative",
                (long long)p.context, p.threads);
  if (rt_cpu_check(olmoc_aot_image.cpu, olmoc_aot_image.features, &m->error))
    return OLMOC_ERROR_CPU;
  Dl_info self = {0};
  dladdr((void *)olmoc_open, &self); /* this library's path: its weights are beside it or in it */
  rt_aot_options o = {.binary = self.dli_fname, .weights = p.weights,
                      .load = p.mmap ? RT_PACK_MMAP : RT_PACK_READ, .ctx = p.context, .threads = p.threads};
  if (rt_aot_open(&olmoc_aot_image, &o, &m->m, &m->error))
    return failed(m, OLMOC_ERROR_WEIGHTS);
  m->error.msg[0] = '\0';
  return OLMOC_OK;
}

OLMOC_API void olmoc_free(olmoc_model *m) {
  if (m)
    rt_aot_close(m->m);
  free(m);
}

OLMOC_API const char *olmoc_errmsg(const olmoc_model *m) { return m ? m->error.msg : "out of memory"; }

OLMOC_API int32_t olmoc_vocab_size(const olmoc_model *m) { return m && m->m ? m->m->model.vocab : 0; }
OLMOC_API int64_t olmoc_context_size(const olmoc_model *m) { return m && m->m ? m->m->model.ctx : 0; }

OLMOC_API int64_t olmoc_position(const olmoc_model *m) {
  return m && m->m ? rt_program_position(m->m->program) : 0;
}

OLMOC_API olmoc_status olmoc_set_threads(olmoc_model *m, int threads) {
  if (!usable(m))
    return OLMOC_ERROR_ARGUMENT;
  if (threads < 0)
    return fail(m, OLMOC_ERROR_ARGUMENT, "threads: %d is negative", threads);
  m->m->threads = threads ? threads : rt_default_threads();
  return OLMOC_OK;
}

OLMOC_API olmoc_status olmoc_tokenize(olmoc_model *m, const char *text, size_t len, int32_t *ids,
                                      size_t cap, size_t *n) {
  if (!usable(m) || !n || (!text && len) || (!ids && cap))
    return m ? fail(m, OLMOC_ERROR_ARGUMENT, "tokenize: text, ids or n is NULL") : OLMOC_ERROR_ARGUMENT;
  int32_t *all;
  if (rt_tokenizer_encode(m->m->tokenizer, text ? text : "", len, &all, n, &m->error))
    return failed(m, OLMOC_ERROR_ARGUMENT);
  memcpy(ids, all, (*n < cap ? *n : cap) * sizeof *ids);
  free(all);
  return OLMOC_OK;
}

OLMOC_API const char *olmoc_token_bytes(const olmoc_model *m, int32_t id, size_t *len) {
  return m && m->m ? rt_tokenizer_bytes(m->m->tokenizer, id, len) : NULL;
}

OLMOC_API olmoc_status olmoc_detokenize(olmoc_model *m, const int32_t *ids, size_t n, char *text,
                                        size_t cap, size_t *len) {
  if (!usable(m) || !len || (!ids && n) || (!text && cap))
    return m ? fail(m, OLMOC_ERROR_ARGUMENT, "detokenize: ids, text or len is NULL") : OLMOC_ERROR_ARGUMENT;
  char *all;
  if (rt_tokenizer_decode(m->m->tokenizer, ids, n, &all, len, &m->error))
    return failed(m, OLMOC_ERROR_ARGUMENT);
  if (cap)
    snprintf(text, cap, "%s", all);
  free(all);
  return OLMOC_OK;
}

OLMOC_API int olmoc_is_eos(const olmoc_model *m, int32_t id) {
  for (int i = 0; m && m->m && i < m->m->meta.n_eos; i++)
    if (m->m->meta.eos[i] == id)
      return 1;
  return 0;
}

OLMOC_API olmoc_status olmoc_eval(olmoc_model *m, const int32_t *ids, size_t n, const float **logits) {
  if (!usable(m) || !ids || !logits || !n)
    return m ? fail(m, OLMOC_ERROR_ARGUMENT, "eval: needs ids, at least one, and logits") : OLMOC_ERROR_ARGUMENT;
  int64_t room = m->m->model.ctx - rt_program_position(m->m->program);
  if ((int64_t)n > room)
    return fail(m, OLMOC_ERROR_CONTEXT, "eval: %zu tokens do not fit: the KV cache has room for %lld "
                "more (rewind or reset)", n, (long long)room);
  *logits = rt_program_run(m->m->program, ids, (int64_t)n, m->m->threads, &m->error);
  return *logits ? OLMOC_OK : failed(m, OLMOC_ERROR_ARGUMENT);
}

OLMOC_API olmoc_status olmoc_rewind(olmoc_model *m, int64_t position) {
  if (!usable(m))
    return OLMOC_ERROR_ARGUMENT;
  if (position < 0 || position > rt_program_position(m->m->program))
    return fail(m, OLMOC_ERROR_ARGUMENT, "rewind: position %lld is not in [0, %lld]", (long long)position,
                (long long)rt_program_position(m->m->program));
  rt_program_rewind(m->m->program, position);
  return OLMOC_OK;
}

OLMOC_API void olmoc_reset(olmoc_model *m) {
  if (m && m->m)
    rt_program_rewind(m->m->program, 0);
}

OLMOC_API olmoc_sampling olmoc_default_sampling(const olmoc_model *m) {
  rt_sampling s = m && m->m ? m->m->meta.sampling : rt_sampling_default();
  return (olmoc_sampling){s.temperature, s.top_k, s.top_p, s.min_p, s.repetition_penalty, 0};
}

OLMOC_API olmoc_status olmoc_sampler_new(olmoc_model *m, const olmoc_sampling *s, olmoc_sampler **out) {
  if (!usable(m) || !s || !out)
    return m ? fail(m, OLMOC_ERROR_ARGUMENT, "sampler_new: needs sampling options and out") : OLMOC_ERROR_ARGUMENT;
  *out = NULL;
  rt_sampling r = {s->temperature, s->top_k, s->top_p, s->min_p, s->repetition_penalty, s->seed};
  olmoc_sampler *sm = oc_calloc(1, sizeof *sm);
  if (!sm || !(sm->row = oc_malloc((size_t)m->m->model.vocab * sizeof *sm->row))) {
    free(sm);
    return fail(m, OLMOC_ERROR_MEMORY, "out of memory");
  }
  if (rt_sampler_new(&r, m->m->model.vocab, &sm->s, &m->error)) {
    olmoc_sampler_free(sm);
    return failed(m, OLMOC_ERROR_ARGUMENT);
  }
  sm->vocab = m->m->model.vocab;
  *out = sm;
  return OLMOC_OK;
}

OLMOC_API olmoc_status olmoc_sample(olmoc_model *m, olmoc_sampler *s, const float *logits,
                                    const int32_t *history, size_t n_history, int32_t *id) {
  if (!usable(m) || !s || !logits || !id || (!history && n_history))
    return m ? fail(m, OLMOC_ERROR_ARGUMENT, "sample: needs a sampler, logits and id") : OLMOC_ERROR_ARGUMENT;
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
