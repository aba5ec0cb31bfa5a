/* The stable C API of olmoc's JIT: open a Hugging Face OLMo 2 checkpoint
 * directory, compiled for this CPU as it loads, and use it through the same
 * calls as a compiled model library (olmoc/model_api.h: tokenize, eval for
 * the logits of every position of a batch of tokens, rewind, sample, and
 * generate with a token callback). Together with model_api.h this is the
 * API that stays stable; every other header in include/olmoc is internal.
 *
 * Open with olmoc_load (olmoc_open and olmoc_default_params belong to
 * compiled libraries and are not in this one); close with olmoc_free. The
 * options are strings with the values of the command line's flags, checked
 * by the same code, so a mistake gets the message `olmoc run` gives for it
 * (naming the flag). Link with the olmoc libraries (CMake target
 * olmoc_driver; examples/jit_generate.c). */
#ifndef OLMOC_OLMOC_H
#define OLMOC_OLMOC_H

#include "olmoc/model_api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct olmoc_load_options {
  const char *backend;      /* "jit" (NULL: the default) or "interp", the reference interpreter */
  const char *opt_level;    /* the pass pipeline: "0", "1" or "2" (NULL: 2), as -O */
  const char *passes;       /* "a,b,...": these passes instead of opt_level, as --passes */
  const char *dtype;        /* NULL (as stored), "bf16" (f32 or f16 rounded), "q8" or "q4", as --dtype */
  const char *compute;      /* "f32" (NULL) or "bf16", as --compute */
  const char *kv_cache;     /* "f32" (NULL) or "bf16", as --kv-cache */
  const char *target;       /* "native" (NULL) or "avx2", as --target */
  const char *pack_weights; /* "auto" (NULL), "memory" or "file", as --pack-weights */
  int64_t context;          /* KV cache positions; 0: the model's */
  int threads;              /* 0: all cores */
} olmoc_load_options;

/* All defaults: -O2 on the JIT, weights as stored, every core. */
OLMOC_API olmoc_load_options olmoc_default_load_options(void);

/* Opens the checkpoint directory dir (config.json, safetensors weights,
 * tokenizer.json, and optionally generation_config.json) with options o
 * (NULL: the defaults). *out is set even when loading fails (except without
 * memory for it), so that olmoc_errmsg can say why; olmoc_free it. Fails
 * with OLMOC_ERROR_ARGUMENT for a bad option, OLMOC_ERROR_WEIGHTS for a
 * missing or damaged checkpoint, OLMOC_ERROR_MEMORY. */
OLMOC_API olmoc_status olmoc_load(const char *dir, const olmoc_load_options *o, olmoc_model **out);

#ifdef __cplusplus
}
#endif

#endif
