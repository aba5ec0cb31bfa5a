/* The generation loop: prefill the prompt through the KV cache, then decode
 * one token at a time until an end-of-sequence id, the token budget or the
 * context runs out. It sees the model only through rt_model, so the reference
 * interpreter and compiled kernels plug in alike. */
#ifndef OLMOC_GENERATE_H
#define OLMOC_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "olmoc/clock.h"
#include "olmoc/error.h"
#include "olmoc/sampler.h"

/* A model with a KV cache, as the loop drives it. */
typedef struct rt_model {
  void *self;
  int32_t vocab;
  int64_t ctx; /* positions the KV cache holds */
  /* Runs T tokens at the current position and advances it; returns the
   * logits of every new position, f32[T,vocab], valid until the next call. */
  const float *(*forward)(void *self, const int32_t *tokens, int64_t T, oc_error *e);
  int64_t (*position)(void *self);
  /* Forgets cached positions from P on (P <= position): 0 starts over. */
  void (*rewind)(void *self, int64_t P);
  /* Sets the threads later calls run on (>= 1). */
  void (*set_threads)(void *self, int threads);
} rt_model;

typedef enum rt_stop {
  RT_STOP_EOS,      /* the model produced an end-of-sequence id */
  RT_STOP_LENGTH,   /* max_new tokens were generated */
  RT_STOP_CONTEXT,  /* the KV cache is full */
  RT_STOP_CALLER,   /* on_token asked to stop (e.g. Ctrl-C) */
} rt_stop;

typedef struct rt_generation {
  int64_t max_new;        /* tokens to generate at most; < 0: until EOS or context */
  const int32_t *eos;     /* [n_eos] ids that end generation (not passed to on_token) */
  int n_eos;
  bool ignore_eos;        /* never sample the eos ids (their logits -inf), so never end on one */
  /* Called with each new token; a non-zero return stops generation. */
  int (*on_token)(void *user, int32_t id);
  /* If set, called with the model's logits [vocab] of each step before the
   * sampler sees them (and may change them): for log-probabilities. */
  void (*on_logits)(void *user, const float *logits);
  void *user;
} rt_generation;

typedef struct rt_generation_stats {
  int64_t prompt_tokens, generated_tokens;
  double prompt_seconds, generate_seconds;
  /* from the start of the prefill to the first token sampled (the prefill's
   * time when none was) */
  double first_token_seconds;
  rt_stop stop;
} rt_generation_stats;

/* Generates after `prompt` (n_prompt >= 1 ids) from the model's current
 * position, so a conversation can continue on its cache. A prompt that does
 * not fit the context is an error, before any work. */
int rt_generate(const rt_model *m, rt_sampler *s, const int32_t *prompt, int64_t n_prompt,
                const rt_generation *g, rt_generation_stats *stats, oc_error *e);

#endif
