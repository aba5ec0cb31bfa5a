/* The OLMo 2 frontend: a Hugging Face config.json (Olmo2ForCausalLM) becomes
 * the primitive graph of one forward call, exactly as docs/architecture.md
 * writes the model: T new tokens at offset P, KV cache in, logits out. */
#ifndef OLMOC_OLMO2_H
#define OLMOC_OLMO2_H

#include <stdbool.h>
#include <stdint.h>

#include "olmoc/ir.h"

#define OLMO2_MAX_EOS 8

typedef struct olmo2_config {
  int64_t hidden_size;
  int64_t intermediate_size;
  int64_t num_hidden_layers;
  int64_t num_attention_heads;
  int64_t num_key_value_heads; /* defaults to num_attention_heads */
  int64_t head_dim;            /* defaults to hidden_size / num_attention_heads */
  int64_t max_position_embeddings;
  int64_t vocab_size;
  double rms_norm_eps;
  double rope_theta;
  bool tie_word_embeddings;
  int n_eos;                   /* eos_token_id may be one id or a list */
  int64_t eos_token_id[OLMO2_MAX_EOS];
  int64_t pad_token_id;        /* -1 when null or absent */
  int64_t bos_token_id;        /* -1 when null or absent */
} olmo2_config;

/* path: a model directory or its config.json. */
int olmo2_config_load(const char *path, olmo2_config *c, oc_error *e);
/* json: the text of a config; source names it in messages. */
int olmo2_config_parse(const char *json, const char *source, olmo2_config *c, oc_error *e);

/* Parameters in the model (embedding, layers, norm, lm_head unless tied). */
int64_t olmo2_param_count(const olmo2_config *c);

/* The primitive graph of one forward call, with weights typed weight_dtype.
 * Inputs: `tokens` i32[T]. Output: `logits` f32[T,vocab]. Caches:
 * `layers.N.k` and `layers.N.v`, each [P,kv_heads,head_dim]. */
int olmo2_build_graph(const olmo2_config *c, ir_dtype weight_dtype, ir_graph **out, oc_error *e);

#endif
