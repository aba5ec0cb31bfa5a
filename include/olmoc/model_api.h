/* A compiled OLMo 2 model as a C library: `olmoc compile --emit lib -o DIR/NAME`
 * writes DIR/libNAME.so, this header as DIR/NAME.h, and the weights as
 * DIR/NAME.weights (or inside the library with --embed-weights). Link with
 * -LDIR -lNAME; the library needs only libc, libm and libgomp.
 *
 * A model holds its weights, tokenizer, KV cache and thread count; models
 * are independent (there is no global state) and a model must not be used
 * by two threads at once. Every call that can fail returns an olmoc_status;
 * olmoc_errmsg(model) then says what went wrong, naming the file or value. */
#ifndef OLMOC_MODEL_API_H
#define OLMOC_MODEL_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OLMOC_API __attribute__((visibility("default")))

typedef enum olmoc_status {
  OLMOC_OK = 0,
  OLMOC_ERROR_ARGUMENT = 1, /* NULL where a value is needed, a token id out of range, ... */
  OLMOC_ERROR_WEIGHTS = 2,  /* the weights file: missing, damaged, or for another binary or CPU */
  OLMOC_ERROR_CPU = 3,      /* this CPU lacks a feature the kernels were compiled for */
  OLMOC_ERROR_CONTEXT = 4,  /* the tokens do not fit in the KV cache (rewind or reset) */
  OLMOC_ERROR_MEMORY = 5,
} olmoc_status;

typedef struct olmoc_model olmoc_model;

typedef struct olmoc_params {
  const char *weights; /* NULL: inside the library if embedded, else NAME.weights beside it */
  int mmap;            /* 1: map the weights (fast start; their checksums are not verified);
                          0: read them into memory on 2 MiB pages, verified (default) */
  int64_t context;     /* KV cache positions; 0: what the model was compiled for */
  int threads;         /* 0: all cores */
} olmoc_params;

OLMOC_API olmoc_params olmoc_default_params(void);

/* Opens the model. *out is set even when opening fails (except when there is
 * no memory for it), so that olmoc_errmsg can say why; olmoc_free it. */
OLMOC_API olmoc_status olmoc_open(const olmoc_params *params, olmoc_model **out);
OLMOC_API void olmoc_free(olmoc_model *m);
/* The message of m's last failed call ("" if none); valid until the next call on m. */
OLMOC_API const char *olmoc_errmsg(const olmoc_model *m);

OLMOC_API int32_t olmoc_vocab_size(const olmoc_model *m); /* logits per position */
OLMOC_API int64_t olmoc_context_size(const olmoc_model *m);
OLMOC_API int64_t olmoc_position(const olmoc_model *m);    /* tokens in the KV cache */
/* 0: all cores; more than the cores run as many as the cores; above 1024 refused */
OLMOC_API olmoc_status olmoc_set_threads(olmoc_model *m, int threads);

/* ---- text ---- */

/* Encodes len bytes of text; writes at most cap ids and sets *n to the
 * number the text has (if *n > cap, call again with more room). */
OLMOC_API olmoc_status olmoc_tokenize(olmoc_model *m, const char *text, size_t len, int32_t *ids,
                                      size_t cap, size_t *n);
/* The bytes token id stands for (not NUL-terminated; may be part of a UTF-8
 * character), *len of them, or NULL for an unknown id. */
OLMOC_API const char *olmoc_token_bytes(const olmoc_model *m, int32_t id, size_t *len);
/* Decodes ids into text (ill-formed UTF-8 becomes U+FFFD), NUL-terminated in
 * text[cap]; *len is the full length (if *len >= cap, call again with more room). */
OLMOC_API olmoc_status olmoc_detokenize(olmoc_model *m, const int32_t *ids, size_t n, char *text,
                                        size_t cap, size_t *len);
/* Whether id ends generation (the model's EOS ids). */
OLMOC_API int olmoc_is_eos(const olmoc_model *m, int32_t id);

/* ---- evaluation ---- */

/* Runs n tokens at the current position and advances it; *logits points at
 * f32[n][vocab] (one row per token), valid until the next eval, rewind or free. */
OLMOC_API olmoc_status olmoc_eval(olmoc_model *m, const int32_t *ids, size_t n, const float **logits);
/* Forgets the positions from `position` on (position <= olmoc_position). */
OLMOC_API olmoc_status olmoc_rewind(olmoc_model *m, int64_t position);
OLMOC_API void olmoc_reset(olmoc_model *m); /* olmoc_rewind(m, 0) */

/* ---- sampling ---- */

typedef struct olmoc_sampling {
  float temperature;        /* 0: greedy */
  int top_k;                /* 0: off */
  float top_p;              /* 1: off */
  float min_p;              /* 0: off */
  float repetition_penalty; /* 1: off */
  uint64_t seed;            /* the same seed gives the same choices */
} olmoc_sampling;

/* The model's generation_config.json defaults (greedy if it had none), seed 0. */
OLMOC_API olmoc_sampling olmoc_default_sampling(const olmoc_model *m);

typedef struct olmoc_sampler olmoc_sampler;
OLMOC_API olmoc_status olmoc_sampler_new(olmoc_model *m, const olmoc_sampling *s, olmoc_sampler **out);
/* Picks a token from one row of logits (left unchanged), given the ids seen
 * so far for the repetition penalty. */
OLMOC_API olmoc_status olmoc_sample(olmoc_model *m, olmoc_sampler *s, const float *logits,
                                    const int32_t *history, size_t n_history, int32_t *id);
OLMOC_API void olmoc_sampler_free(olmoc_sampler *s);

/* ---- generation ---- */

/* Why a generation stopped. */
typedef enum olmoc_stop {
  OLMOC_STOP_EOS = 0,     /* the model produced an end-of-sequence id */
  OLMOC_STOP_LENGTH = 1,  /* max_new tokens were generated */
  OLMOC_STOP_CONTEXT = 2, /* the KV cache is full */
  OLMOC_STOP_CALLER = 3,  /* on_token asked to stop */
} olmoc_stop;

typedef struct olmoc_generation {
  int64_t prompt_tokens, generated_tokens;
  double prompt_seconds, generate_seconds;
  olmoc_stop stop;
} olmoc_generation;

/* Called with each generated token (EOS ids are not passed); a non-zero
 * return stops the generation after it. */
typedef int (*olmoc_token_fn)(void *user, int32_t id);

/* Runs the n >= 1 prompt ids at the current position, then samples up to
 * max_new tokens (< 0: until EOS or the context is full), each passed to
 * on_token as soon as it is chosen (on_token may be NULL). The cache keeps
 * the conversation, so a later call continues it. result may be NULL. A
 * prompt that does not fit the context fails with OLMOC_ERROR_CONTEXT before
 * any work. */
OLMOC_API olmoc_status olmoc_generate(olmoc_model *m, const int32_t *prompt, size_t n,
                                      const olmoc_sampling *s, int64_t max_new, olmoc_token_fn on_token,
                                      void *user, olmoc_generation *result);

#ifdef __cplusplus
}
#endif

#endif
