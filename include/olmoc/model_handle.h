/* The handle behind the C API (olmoc/model_api.h), shared by the compiled
 * model library (aot/api.c opens it from a packed weights file) and the JIT
 * (driver/api.c opens it from a checkpoint): what every other API call
 * needs, whichever opened it. Invariant: `model` is NULL exactly when
 * opening failed, and every failing call leaves its message in `error`. */
#ifndef OLMOC_MODEL_HANDLE_H
#define OLMOC_MODEL_HANDLE_H

#include "olmoc/error.h"
#include "olmoc/generate.h"
#include "olmoc/model_api.h"
#include "olmoc/sampler.h"
#include "olmoc/tokenizer.h"

struct olmoc_model {
  rt_model *model; /* NULL when opening failed */
  const rt_tokenizer *tokenizer;
  const int32_t *eos; /* [n_eos] */
  int n_eos;
  rt_sampling defaults;       /* generation_config.json's, or greedy */
  void *owner;                /* what opened it, closed by close(owner) */
  void (*close)(void *owner);
  oc_error error;
};

/* A handle to open into, or NULL without memory. */
olmoc_model *rt_api_model_new(void);

/* Sets m's message and returns status. */
olmoc_status rt_api_fail(olmoc_model *m, olmoc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* status, or OLMOC_ERROR_MEMORY when m's message says memory ran out. */
olmoc_status rt_api_failed(olmoc_model *m, olmoc_status status);

#endif
