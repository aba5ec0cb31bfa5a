/* config.json -> olmo2_config: every key the model depends on is read and
 * checked (type, range, divisibility), and whatever olmoc cannot compile (other
 * architectures, rope scaling, biases, other activations) is refused with a
 * message "<file>: key '<k>': expected ..., found ...". Invariant on success:
 * sizes and projection widths are in [1, 2^24] and layers in [1, 1024], so
 * every product later code forms (olmo2_param_count < 2^61) fits in int64_t. */
#include "olmoc/olmo2.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "olmoc/alloc.h"
#include "olmoc/file.h"

#define MAX_SIZE (INT64_C(1) << 24) /* hidden, intermediate, vocab, heads, widths, context */
#define MAX_LAYERS 1024
#define MAX_FILE_BYTES (64 << 20)   /* a config.json is a few hundred bytes */
#define ARCH "Olmo2ForCausalLM"

/* ---- describing a JSON value for "found ..." ---------------------------- */

/* Writes a number as short as it round-trips: 2048, 2048.5, 1e-06. */
static void format_number(double d, char *buf, size_t n) {
  if (d == floor(d) && fabs(d) < 1e15) {
    snprintf(buf, n, "%.0f", d);
    return;
  }
  snprintf(buf, n, "%.15g", d);
  if (strtod(buf, NULL) != d) snprintf(buf, n, "%.17g", d);
}

/* "null", "true (a boolean)", "-4", "\"2048\" (a string)", "[...] (an array)". */
static const char *describe(const cJSON *v, char *buf, size_t n) {
  if (cJSON_IsNull(v)) {
    snprintf(buf, n, "null");
  } else if (cJSON_IsBool(v)) {
    snprintf(buf, n, "%s (a boolean)", cJSON_IsTrue(v) ? "true" : "false");
  } else if (cJSON_IsNumber(v)) {
    format_number(v->valuedouble, buf, n);
  } else {
    const char *kind = cJSON_IsString(v) ? "a string" : cJSON_IsArray(v) ? "an array" : "an object";
    char *text = cJSON_PrintUnformatted(v);
    if (!text) {
      snprintf(buf, n, "%s", kind);
    } else if (strlen(text) > 60) {
      snprintf(buf, n, "%.57s... (%s)", text, kind);
    } else {
      snprintf(buf, n, "%s (%s)", text, kind);
    }
    cJSON_free(text);
  }
  return buf;
}

#define FOUND(v) describe((v), found, sizeof found)

/* ---- typed getters: messages here start at "key ..."; the caller adds the file */

static const cJSON *get(const cJSON *root, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(root, key);
}

/* The value, or NULL when the key is absent or null. */
static const cJSON *get_opt(const cJSON *root, const char *key) {
  const cJSON *v = get(root, key);
  return cJSON_IsNull(v) ? NULL : v;
}

/* An integral JSON number in [lo, hi]. what describes the expectation; NULL
 * means "a positive integer" with hi reported only when it is exceeded. */
static int read_int(const cJSON *v, const char *key, int64_t lo, int64_t hi, const char *what,
                    int64_t *out, oc_error *e) {
  char found[128];
  const char *expect = what ? what : "a positive integer";
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
      v->valuedouble < (double)lo)
    return oc_fail(e, "key '%s': expected %s, found %s", key, expect, FOUND(v));
  if (v->valuedouble > (double)hi) {
    if (what) return oc_fail(e, "key '%s': expected %s, found %s", key, expect, FOUND(v));
    return oc_fail(e, "key '%s': expected %s no larger than %lld, found %s", key, expect,
                   (long long)hi, FOUND(v));
  }
  *out = (int64_t)v->valuedouble;
  return 0;
}

static int require_int(const cJSON *root, const char *key, int64_t hi, int64_t *out, oc_error *e) {
  const cJSON *v = get(root, key);
  if (!v) return oc_fail(e, "key '%s' is missing: expected a positive integer", key);
  return read_int(v, key, 1, hi, NULL, out, e);
}

/* A finite number > 0. */
static int read_positive(const cJSON *v, const char *key, double *out, oc_error *e) {
  char found[128];
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || !(v->valuedouble > 0))
    return oc_fail(e, "key '%s': expected a positive number, found %s", key, FOUND(v));
  *out = v->valuedouble;
  return 0;
}

/* A token id in [0, vocab), or -1 when the key is absent or null. */
static int read_token(const cJSON *root, const char *key, int64_t vocab, int64_t *out, oc_error *e) {
  char what[96];
  const cJSON *v = get_opt(root, key);
  *out = -1;
  if (!v) return 0;
  snprintf(what, sizeof what, "null or a token id in [0, vocab_size = %lld)", (long long)vocab);
  return read_int(v, key, 0, vocab - 1, what, out, e);
}

/* ---- the config, key by key ---------------------------------------------- */

static int check_architecture(const cJSON *root, oc_error *e) {
  char found[128];
  const cJSON *a = get(root, "architectures"), *name, *other = NULL;
  if (!a) return oc_fail(e, "key 'architectures' is missing: expected [\"" ARCH "\"]");
  if (!cJSON_IsArray(a))
    return oc_fail(e, "key 'architectures': expected an array such as [\"" ARCH "\"], found %s",
                   FOUND(a));
  bool ours = false;
  cJSON_ArrayForEach(name, a) {
    if (cJSON_IsString(name) && strcmp(name->valuestring, ARCH) == 0) ours = true;
    else if (cJSON_IsString(name) && !other) other = name;
  }
  if (!ours && other)
    return oc_fail(e, "key 'architectures': %.60s is not supported: olmoc compiles " ARCH
                   " (found %s)", other->valuestring, FOUND(a));
  if (!ours)
    return oc_fail(e, "key 'architectures': expected an array containing \"" ARCH "\", found %s",
                   FOUND(a));

  const cJSON *t = get(root, "model_type");
  if (t && !(cJSON_IsString(t) && strcmp(t->valuestring, "olmo2") == 0))
    return oc_fail(e, "key 'model_type': expected \"olmo2\", found %s", FOUND(t));
  return 0;
}

/* Python's json keeps the last of two equal keys and cJSON the first, so a
 * duplicated key would make olmoc and transformers read different models. */
static int check_duplicates(const cJSON *root, oc_error *e) {
  static const char *const keys[] = {
      "architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
      "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
      "vocab_size", "rms_norm_eps", "rope_theta", "rope_scaling", "attention_bias", "hidden_act",
      "tie_word_embeddings", "eos_token_id", "pad_token_id", "bos_token_id"};
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    int seen = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
      if (it->string && strcmp(it->string, keys[k]) == 0 && ++seen > 1)
        return oc_fail(e, "key '%s' appears more than once", keys[k]);
    }
  }
  return 0;
}

static int read_shape(const cJSON *root, olmo2_config *c, oc_error *e) {
  char found[128];
  if (require_int(root, "hidden_size", MAX_SIZE, &c->hidden_size, e) ||
      require_int(root, "intermediate_size", MAX_SIZE, &c->intermediate_size, e) ||
      require_int(root, "num_hidden_layers", MAX_LAYERS, &c->num_hidden_layers, e) ||
      require_int(root, "num_attention_heads", MAX_SIZE, &c->num_attention_heads, e) ||
      require_int(root, "vocab_size", MAX_SIZE, &c->vocab_size, e) ||
      require_int(root, "max_position_embeddings", MAX_SIZE, &c->max_position_embeddings, e))
    return -1;

  int64_t heads = c->num_attention_heads;
  const cJSON *v = get_opt(root, "num_key_value_heads"); /* null means "same as heads" */
  c->num_key_value_heads = heads;
  if (v && read_int(v, "num_key_value_heads", 1, MAX_SIZE, NULL, &c->num_key_value_heads, e))
    return -1;
  if (heads % c->num_key_value_heads != 0)
    return oc_fail(e, "key 'num_key_value_heads': %lld does not divide num_attention_heads (%lld); "
                   "each key/value head must serve the same number of query heads",
                   (long long)c->num_key_value_heads, (long long)heads);

  v = get_opt(root, "head_dim");
  if (v) {
    if (read_int(v, "head_dim", 1, MAX_SIZE, NULL, &c->head_dim, e)) return -1;
    if (c->head_dim % 2 != 0)
      return oc_fail(e, "key 'head_dim': expected an even number (RoPE rotates pairs), found %s",
                     FOUND(v));
  } else {
    if (c->hidden_size % heads != 0)
      return oc_fail(e, "key 'num_attention_heads': %lld does not divide hidden_size (%lld), and "
                     "there is no 'head_dim' key to give the head size",
                     (long long)heads, (long long)c->hidden_size);
    c->head_dim = c->hidden_size / heads;
    if (c->head_dim % 2 != 0)
      return oc_fail(e, "key 'num_attention_heads': head_dim = hidden_size / num_attention_heads = "
                     "%lld / %lld = %lld is odd; RoPE needs an even head_dim",
                     (long long)c->hidden_size, (long long)heads, (long long)c->head_dim);
  }
  if (heads * c->head_dim > MAX_SIZE)
    return oc_fail(e, "key 'head_dim': num_attention_heads * head_dim = %lld * %lld is larger than "
                   "%lld", (long long)heads, (long long)c->head_dim, (long long)MAX_SIZE);
  return 0;
}

static int read_numerics(const cJSON *root, olmo2_config *c, oc_error *e) {
  const cJSON *v = get(root, "rms_norm_eps");
  if (!v)
    return oc_fail(e, "key 'rms_norm_eps' is missing: expected a positive number (transformers "
                   "would assume 1e-05, OLMo 2 was trained with 1e-06: the file must say)");
  if (read_positive(v, "rms_norm_eps", &c->rms_norm_eps, e)) return -1;

  v = get(root, "rope_theta"); /* absent: 10000 as in transformers; null is not a theta */
  c->rope_theta = 10000.0;
  if (v && read_positive(v, "rope_theta", &c->rope_theta, e)) return -1;
  return 0;
}

static int refuse_unsupported(const cJSON *root, olmo2_config *c, oc_error *e) {
  char found[128];
  const cJSON *v = get_opt(root, "rope_scaling");
  if (v)
    return oc_fail(e, "key 'rope_scaling': rope scaling is not supported: expected null, found %s",
                   FOUND(v));

  v = get(root, "attention_bias");
  if (v && !cJSON_IsFalse(v))
    return oc_fail(e, "key 'attention_bias': expected false (OLMo 2 has no biases), found %s",
                   FOUND(v));

  v = get(root, "hidden_act");
  if (v && !(cJSON_IsString(v) && strcmp(v->valuestring, "silu") == 0))
    return oc_fail(e, "key 'hidden_act': expected \"silu\" (the only activation olmoc compiles), "
                   "found %s", FOUND(v));

  v = get(root, "tie_word_embeddings");
  c->tie_word_embeddings = false;
  if (v && !cJSON_IsBool(v))
    return oc_fail(e, "key 'tie_word_embeddings': expected true or false, found %s", FOUND(v));
  if (v) c->tie_word_embeddings = cJSON_IsTrue(v);
  return 0;
}

static int read_tokens(const cJSON *root, olmo2_config *c, oc_error *e) {
  char found[128], what[96];
  int64_t vocab = c->vocab_size;
  const cJSON *v = get_opt(root, "eos_token_id"), *id;
  c->n_eos = 0;
  if (cJSON_IsArray(v)) {
    int n = cJSON_GetArraySize(v);
    if (n < 1 || n > OLMO2_MAX_EOS)
      return oc_fail(e, "key 'eos_token_id': expected one id or a list of 1 to %d ids, found %d "
                     "ids: %s", OLMO2_MAX_EOS, n, FOUND(v));
    snprintf(what, sizeof what, "a token id in [0, vocab_size = %lld)", (long long)vocab);
    cJSON_ArrayForEach(id, v) {
      if (read_int(id, "eos_token_id", 0, vocab - 1, what, &c->eos_token_id[c->n_eos++], e))
        return -1;
    }
  } else if (v) {
    if (read_token(root, "eos_token_id", vocab, &c->eos_token_id[0], e)) return -1;
    c->n_eos = 1;
  }
  if (read_token(root, "pad_token_id", vocab, &c->pad_token_id, e) ||
      read_token(root, "bos_token_id", vocab, &c->bos_token_id, e))
    return -1;
  return 0;
}

static int read_config(const cJSON *root, olmo2_config *c, oc_error *e) {
  char found[128];
  if (!cJSON_IsObject(root))
    return oc_fail(e, "expected a JSON object at the top level, found %s", FOUND(root));
  if (check_duplicates(root, e) || check_architecture(root, e) || read_shape(root, c, e) ||
      read_numerics(root, c, e) || refuse_unsupported(root, c, e) || read_tokens(root, c, e))
    return -1;
  return 0;
}

/* ---- entry points -------------------------------------------------------- */

int olmo2_config_parse(const char *json, const char *source, olmo2_config *c, oc_error *e) {
  assert(c);
  if (!source) source = "<config>";
  if (!json) return oc_fail(e, "%s: no text to parse", source);

  const char *end = NULL;
  unsigned long failures = oc_alloc_failures();
  cJSON *root = cJSON_ParseWithOpts(json, &end, 1); /* 1: nothing may follow the object */
  if (!root && oc_alloc_failures() != failures)
    return oc_fail(e, "%s: out of memory parsing the JSON", source);
  if (!root) {
    char where[96];
    return oc_fail(e, "%s: malformed JSON at %s", source,
                   oc_text_where(json, strlen(json), end, where, sizeof where));
  }

  olmo2_config tmp;
  memset(&tmp, 0, sizeof tmp);
  int rc = read_config(root, &tmp, e);
  cJSON_Delete(root);
  if (rc) return oc_wrap(e, "%s", source);
  *c = tmp; /* c is only written on success */
  return 0;
}

int olmo2_config_load(const char *path, olmo2_config *c, oc_error *e) {
  assert(c);
  if (!path) return oc_fail(e, "no config path given");
  oc_file f;
  if (oc_file_read(&f, path, "config.json", MAX_FILE_BYTES, false, e)) return -1;
  int rc = 0;
  if (strlen(f.data) != f.len)
    rc = oc_fail(e, "%s: NUL byte at offset %zu: not a JSON text file", f.path, strlen(f.data));
  else
    rc = olmo2_config_parse(f.data, f.path, c, e);
  oc_file_free(&f);
  return rc;
}

int64_t olmo2_param_count(const olmo2_config *c) {
  assert(c);
  int64_t H = c->hidden_size, V = c->vocab_size, I = c->intermediate_size;
  int64_t q = c->num_attention_heads * c->head_dim;  /* width of q_proj's output */
  int64_t kv = c->num_key_value_heads * c->head_dim; /* width of k_proj's and v_proj's outputs */
  int64_t layer = H * q + 2 * H * kv + q * H  /* q, k, v, o projections */
                  + q + kv                    /* q_norm, k_norm */
                  + 3 * H * I                 /* gate, up, down */
                  + 2 * H;                    /* post-attention and post-feedforward norms */
  return V * H + c->num_hidden_layers * layer + H + (c->tie_word_embeddings ? 0 : V * H);
}
