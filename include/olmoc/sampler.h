/* Choosing the next token from logits: greedy, or sampling with temperature,
 * top-k, top-p and min-p truncation and a repetition penalty, from a seeded
 * generator so that the same seed gives the same text. */
#ifndef OLMOC_SAMPLER_H
#define OLMOC_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "olmoc/error.h"

typedef struct rt_sampling {
  float temperature;        /* 0: greedy */
  int top_k;                /* 0: off */
  float top_p;              /* 1: off */
  float min_p;              /* 0: off */
  float repetition_penalty; /* 1: off (HF semantics: logit/p if > 0 else logit*p) */
  uint64_t seed;
} rt_sampling;

/* greedy, no truncation, no penalty, seed 0 */
rt_sampling rt_sampling_default(void);

/* Overrides defaults with the model's generation_config.json (path: a model
 * directory or the file), when present: do_sample (false means greedy),
 * temperature, top_k, top_p, min_p, repetition_penalty. A missing file is not
 * an error (returns 0, *found = false); a malformed one is. */
int rt_sampling_load(const char *path, rt_sampling *s, bool *found, oc_error *e);

typedef struct rt_sampler rt_sampler;

int rt_sampler_new(const rt_sampling *s, int32_t vocab, rt_sampler **out, oc_error *e);
void rt_sampler_free(rt_sampler *s);

/* Picks a token from logits[vocab] (which it may modify), given the ids seen
 * so far (prompt and output) for the repetition penalty. */
int32_t rt_sampler_sample(rt_sampler *s, float *logits, const int32_t *history, size_t n_history);

#endif
