/* tokenizer.json -> rt_tokenizer: the byte-level BPE model, its added tokens,
 * and a check of every other section. Whatever would make olmoc encode or
 * decode differently from the reference (Hugging Face tokenizers) is refused
 * with "<file>: <key>: ..."; nothing is ignored that changes results. The
 * pre-tokenizer is read by pretokenizer.c, encoding is bpe.c's. */
#include "olmoc/file.h"
#include "tokenizer_tables.h"
#include "olmoc/utf8.h"
#include "olmoc/alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#define MAX_FILE_BYTES (1u << 30) /* the largest tokenizer.json files are ~30 MB */

/* ---- token texts ------------------------------------------------------- */

static size_t pow2_at_least(size_t n) {
  size_t c = 16;
  while (c < n) c <<= 1;
  return c;
}

static const char *token_text(const rt_tokenizer *t, int32_t id) {
  return t->arena + t->tokens[id].text;
}

/* ---- arena -------------------------------------------------------------- */

static int arena_add(rt_tokenizer *t, const void *data, size_t n, uint32_t *off) {
  if (t->arena_len + n + 1 > UINT32_MAX) return -1;
  if (t->arena_len + n + 1 > t->arena_cap) {
    size_t cap = t->arena_cap ? t->arena_cap : 1 << 16;
    while (cap < t->arena_len + n + 1) cap *= 2;
    char *a = oc_realloc(t->arena, cap);
    if (!a) return -1;
    t->arena = a;
    t->arena_cap = cap;
  }
  memcpy(t->arena + t->arena_len, data, n);
  t->arena[t->arena_len + n] = '\0';
  *off = (uint32_t)t->arena_len;
  t->arena_len += n + 1;
  return 0;
}

/* ---- the byte-level alphabet (GPT-2's bytes_to_unicode) ----------------- */

static bool byte_prints(unsigned b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

/* cp_byte[cp] for cp < 0x144: the byte that character stands for, or -1. */
static void byte_level_tables(rt_tokenizer *t, int16_t cp_byte[0x144]) {
  for (int i = 0; i < 0x144; i++) cp_byte[i] = -1;
  unsigned next = 256;
  for (unsigned b = 0; b < 256; b++) {
    unsigned cp = byte_prints(b) ? b : next++;
    cp_byte[cp] = (int16_t)b;
    if (cp < 0x80) {
      t->byte_char[b][0] = (char)cp, t->byte_char[b][1] = 0;
    } else {
      t->byte_char[b][0] = (char)(0xC0 | cp >> 6), t->byte_char[b][1] = (char)(0x80 | (cp & 0x3F));
      t->byte_char[b][2] = 0;
    }
  }
}

/* What a token decodes to, as the reference's ByteLevel decoder does it:
 * each character mapped back to its byte, or the text itself when some
 * character is not in the alphabet. Writes at most n bytes to out. */
static size_t text_to_bytes(const int16_t cp_byte[0x144], const char *s, size_t n, char *out) {
  const unsigned char *u = (const unsigned char *)s;
  size_t len = 0;
  for (size_t i = 0; i < n;) {
    unsigned cp = u[i];
    size_t k = 1;
    if (cp >= 0x80) {
      if ((cp & 0xE0) != 0xC0 || i + 1 >= n) goto raw; /* 3- and 4-byte chars are past 0x143 */
      cp = (cp & 0x1F) << 6 | (u[i + 1] & 0x3F), k = 2;
    }
    if (cp >= 0x144 || cp_byte[cp] < 0) goto raw;
    out[len++] = (char)cp_byte[cp];
    i += k;
  }
  return len;
raw:
  memcpy(out, s, n);
  return n;
}

/* ---- describing JSON for messages --------------------------------------- */

static const char *kind(const cJSON *v) {
  if (!v) return "missing";
  if (cJSON_IsNull(v)) return "null";
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsArray(v)) return "an array";
  return "an object";
}

/* A printable excerpt of a token text for messages: its first 40 bytes or so,
 * quoted, with control and ill-formed bytes escaped. */
static const char *excerpt(const char *s, char buf[200]) {
  const unsigned char *u = (const unsigned char *)s;
  size_t o = 0, n = strlen(s), bad;
  bool cut;
  buf[o++] = '\'';
  for (size_t i = 0; i < n;) {
    if (i >= 40) {
      o += (size_t)snprintf(buf + o, 200 - o, "...");
      break;
    }
    size_t k = oc_utf8_char(u + i, n - i, &bad, &cut);
    if (k == 1 && u[i] >= 0x20 && u[i] != 0x7F) {
      buf[o++] = (char)u[i];
    } else if (k > 1) {
      memcpy(buf + o, u + i, k);
      o += k;
    } else {
      o += (size_t)snprintf(buf + o, 200 - o, "\\x%02X", u[i]);
      k = 1;
    }
    i += k;
  }
  buf[o++] = '\'';
  buf[o] = 0;
  return buf;
}

static const cJSON *get(const cJSON *obj, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static bool is_null(const cJSON *v) { return !v || cJSON_IsNull(v); }

/* The "type" of a component object, or NULL (with the message) when it has none. */
static const char *type_of(const cJSON *v, const char *key, oc_error *e) {
  if (!cJSON_IsObject(v))
    return oc_fail(e, "%s: expected null or an object, found %s", key, kind(v)), NULL;
  const cJSON *ty = get(v, "type");
  if (!cJSON_IsString(ty))
    return oc_fail(e, "%s.type: expected a string, found %s", key, kind(ty)), NULL;
  return ty->valuestring;
}

/* An optional boolean (absent or null gives def). */
static int opt_bool(const cJSON *obj, const char *key, const char *where, bool def, bool *out,
                    oc_error *e) {
  const cJSON *v = get(obj, key);
  *out = def;
  if (is_null(v)) return 0;
  if (!cJSON_IsBool(v)) return oc_fail(e, "%s.%s: expected a boolean, found %s", where, key, kind(v));
  *out = cJSON_IsTrue(v);
  return 0;
}

/* An id: an integral JSON number in [0, 2^24). */
static int read_id(const cJSON *v, int32_t *out) {
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
      v->valuedouble < 0 || v->valuedouble >= TOK_MAX_IDS)
    return -1;
  *out = (int32_t)v->valuedouble;
  return 0;
}

/* Token text: valid UTF-8, at most TOK_MAX_TEXT bytes, non-empty unless it
 * may be (the reference allows "" in a vocabulary, not as an added token). */
static const char *bad_text(const char *s, bool may_be_empty) {
  size_t n = strlen(s);
  if (n == 0 && !may_be_empty) return "is empty";
  if (n > TOK_MAX_TEXT) return "is longer than 4096 bytes";
  if (oc_utf8_valid((const unsigned char *)s, n) != n) return "is not valid UTF-8";
  return NULL;
}

/* ---- sections other than the model -------------------------------------- */

static int check_plain_sections(const cJSON *root, oc_error *e) {
  static const char *const unused[] = {"truncation", "padding"};
  for (int i = 0; i < 2; i++)
    if (!is_null(get(root, unused[i])))
      return oc_fail(e, "%s: expected null, found %s: olmoc encodes whole texts and does not "
                        "%s them (not supported)",
                     unused[i], kind(get(root, unused[i])), i ? "pad" : "truncate");
  const cJSON *norm = get(root, "normalizer");
  if (!is_null(norm)) {
    const char *ty = type_of(norm, "normalizer", e);
    if (!ty) return -1;
    return oc_fail(e, "normalizer %s is not supported: olmoc reads byte-level BPE tokenizers "
                      "without a normalizer (normalizer must be null)", ty);
  }
  const cJSON *dec = get(root, "decoder");
  if (!is_null(dec)) {
    const char *ty = type_of(dec, "decoder", e);
    if (!ty) return -1;
    if (strcmp(ty, "ByteLevel") != 0)
      return oc_fail(e, "decoder %s is not supported: expected ByteLevel or null", ty);
  }
  return 0;
}

/* The post-processor may not add tokens to a single text, since encode adds none. */
static int check_post_processor(const cJSON *pp, const char *where, int depth, oc_error *e) {
  if (is_null(pp)) return 0;
  const char *ty = type_of(pp, where, e);
  if (!ty) return -1;
  if (strcmp(ty, "ByteLevel") == 0) return 0; /* only moves offsets */
  if (strcmp(ty, "Sequence") == 0 && depth == TOK_MAX_NESTING)
    return oc_fail(e, "%s: Sequences nested more than %d deep (not supported)", where, TOK_MAX_NESTING);
  if (strcmp(ty, "Sequence") == 0) {
    const cJSON *list = get(pp, "processors"), *p;
    if (!cJSON_IsArray(list))
      return oc_fail(e, "%s.processors: expected an array, found %s", where, kind(list));
    cJSON_ArrayForEach(p, list) if (check_post_processor(p, where, depth + 1, e) != 0) return -1;
    return 0;
  }
  if (strcmp(ty, "TemplateProcessing") == 0) {
    const cJSON *single = get(pp, "single"), *item;
    if (!cJSON_IsArray(single))
      return oc_fail(e, "%s TemplateProcessing: single: expected an array, found %s", where,
                     kind(single));
    cJSON_ArrayForEach(item, single) {
      const cJSON *sp = get(item, "SpecialToken"), *id = sp ? get(sp, "id") : NULL;
      if (sp)
        return oc_fail(e, "%s TemplateProcessing adds %s to every text; olmoc's encode adds no "
                          "tokens (not supported)", where,
                       cJSON_IsString(id) ? id->valuestring : "a special token");
      if (!cJSON_IsObject(get(item, "Sequence")))
        return oc_fail(e, "%s TemplateProcessing: single: expected Sequence or SpecialToken "
                          "items", where);
    }
    return 0;
  }
  return oc_fail(e, "%s %s is not supported: it adds tokens to every text (expected null, "
                    "ByteLevel, or a TemplateProcessing that adds none)", where, ty);
}

/* ---- the model ------------------------------------------------------------ */

static int check_model_options(rt_tokenizer *t, const cJSON *model, oc_error *e) {
  const char *ty = type_of(model, "model", e);
  if (!ty) return -1;
  if (strcmp(ty, "BPE") != 0)
    return oc_fail(e, "model type %s is not supported: olmoc reads byte-level BPE tokenizers "
                      "only", ty);
  const cJSON *v = get(model, "dropout");
  if (!is_null(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0))
    return oc_fail(e, "model.dropout: expected null or 0, found %s: BPE dropout (random "
                      "merges) is not supported", cJSON_IsNumber(v) ? "a non-zero number" : kind(v));
  static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
  for (int i = 0; i < 2; i++) {
    v = get(model, affixes[i]);
    if (!is_null(v) && !(cJSON_IsString(v) && v->valuestring[0] == 0))
      return oc_fail(e, "model.%s: expected null or \"\", found %s: not supported", affixes[i],
                     cJSON_IsString(v) ? "a non-empty string" : kind(v));
  }
  /* fuse_unk, byte_fallback and unk_token act on characters missing from the
   * vocabulary; a byte-level vocabulary has all 256 (checked below). */
  bool unused;
  if (opt_bool(model, "fuse_unk", "model", false, &unused, e) != 0 ||
      opt_bool(model, "byte_fallback", "model", false, &unused, e) != 0 ||
      opt_bool(model, "ignore_merges", "model", false, &t->ignore_merges, e) != 0)
    return -1;
  v = get(model, "unk_token");
  if (!is_null(v) && !cJSON_IsString(v))
    return oc_fail(e, "model.unk_token: expected null or a string, found %s", kind(v));
  return 0;
}

/* Gives id its text (and decoded bytes) and indexes it. */
static int add_token(rt_tokenizer *t, int32_t id, const char *text, const int16_t cp_byte[0x144],
                     oc_error *e) {
  tok_token *tk = &t->tokens[id];
  size_t n = strlen(text);
  char bytes[TOK_MAX_TEXT];
  size_t nb = text_to_bytes(cp_byte, text, n, bytes);
  if (arena_add(t, text, n, &tk->text) != 0 || arena_add(t, bytes, nb, &tk->bytes) != 0)
    return oc_fail(e, "out of memory");
  tk->text_len = (uint16_t)n, tk->bytes_len = (uint16_t)nb, tk->used = 1;
  tok_strmap_put(t, id);
  return 0;
}

static int read_vocab(rt_tokenizer *t, const cJSON *vocab, const int16_t cp_byte[0x144],
                      oc_error *e) {
  const cJSON *v;
  char ex[200], ex2[200];
  cJSON_ArrayForEach(v, vocab) {
    int32_t id;
    read_id(v, &id); /* checked by the caller's first pass */
    const char *why = bad_text(v->string, true);
    if (why) return oc_fail(e, "model.vocab: token %s (id %d) %s", excerpt(v->string, ex), id, why);
    int32_t other = tok_find_text(t, v->string, strlen(v->string));
    if (other >= 0) return oc_fail(e, "model.vocab lists %s twice", excerpt(v->string, ex));
    if (t->tokens[id].used)
      return oc_fail(e, "model.vocab gives id %d to both %s and %s", id,
                     excerpt(token_text(t, id), ex), excerpt(v->string, ex2));
    if (add_token(t, id, v->string, cp_byte, e) != 0) return -1;
    t->tokens[id].in_vocab = 1;
  }
  for (int b = 0; b < 256; b++) {
    t->byte_id[b] = tok_find_text(t, t->byte_char[b], strlen(t->byte_char[b]));
    if (t->byte_id[b] < 0)
      return oc_fail(e, "model.vocab has no token '%s' for byte 0x%02X: not a byte-level BPE "
                        "vocabulary", t->byte_char[b], b);
  }
  return 0;
}

/* One merge, "a b" or ["a", "b"], into its two parts (pointers into m or buf). */
static int merge_parts(const cJSON *m, char buf[2 * TOK_MAX_TEXT + 2], const char **a,
                       const char **b) {
  if (cJSON_IsString(m)) {
    const char *s = m->valuestring, *sp = strchr(s, ' ');
    size_t n = strlen(s);
    if (!sp || strchr(sp + 1, ' ') || n > 2 * TOK_MAX_TEXT + 1) return -1;
    memcpy(buf, s, n + 1);
    buf[sp - s] = 0;
    *a = buf, *b = buf + (sp - s) + 1;
    return 0;
  }
  if (cJSON_GetArraySize(m) != 2) return -1;
  const cJSON *x = cJSON_GetArrayItem(m, 0), *y = cJSON_GetArrayItem(m, 1);
  if (!cJSON_IsString(x) || !cJSON_IsString(y)) return -1;
  *a = x->valuestring, *b = y->valuestring;
  return 0;
}

static int read_merges(rt_tokenizer *t, const cJSON *merges, oc_error *e) {
  int n = cJSON_GetArraySize(merges);
  if (n > TOK_MAX_IDS)
    return oc_fail(e, "model.merges: %d merges, more than 2^24 (not supported)", n);
  if (tok_pairmap_init(&t->merges, (size_t)n) != 0) return oc_fail(e, "out of memory");
  char buf[2 * TOK_MAX_TEXT + 2], cat[2 * TOK_MAX_TEXT + 1], ex[200], ex2[200], ex3[200];
  const cJSON *m;
  int i = 0;
  int32_t rank = 0;
  cJSON_ArrayForEach(m, merges) {
    const char *a, *b;
    if (cJSON_IsString(m) && strncmp(m->valuestring, "#version", 8) == 0) {
      i++; /* a merges.txt header line; the reference skips it */
      continue;
    }
    if (merge_parts(m, buf, &a, &b) != 0)
      return oc_fail(e, "model.merges[%d]: expected \"left right\" (one space) or "
                        "[\"left\", \"right\"], found %s", i,
                     cJSON_IsString(m) ? excerpt(m->valuestring, ex) : kind(m));
    size_t na = strlen(a), nb = strlen(b);
    int32_t ia = tok_find_text(t, a, na), ib = tok_find_text(t, b, nb);
    if (ia < 0 || !t->tokens[ia].in_vocab || ib < 0 || !t->tokens[ib].in_vocab)
      return oc_fail(e, "model.merges[%d] (%s %s): %s is not in the vocabulary", i,
                     excerpt(a, ex), excerpt(b, ex2), excerpt(ia < 0 || !t->tokens[ia].in_vocab ? a : b, ex3));
    memcpy(cat, a, na);
    memcpy(cat + na, b, nb);
    cat[na + nb] = 0;
    int32_t ic = tok_find_text(t, cat, na + nb);
    if (ic < 0 || !t->tokens[ic].in_vocab)
      return oc_fail(e, "model.merges[%d] (%s %s): their concatenation %s is not in the "
                        "vocabulary", i, excerpt(a, ex), excerpt(b, ex2), excerpt(cat, ex3));
    if (tok_pairmap_put(&t->merges, (uint64_t)ia << 32 | (uint32_t)ib, rank, ic) != 0)
      return oc_fail(e, "out of memory");
    i++, rank++;
  }
  return 0;
}

/* First pass over ids: range checks and the size of the id space. */
static int scan_ids(rt_tokenizer *t, const cJSON *vocab, const cJSON *added, oc_error *e) {
  const cJSON *v;
  char ex[200];
  int n = 0;
  cJSON_ArrayForEach(v, vocab) {
    int32_t id;
    if (read_id(v, &id) != 0)
      return oc_fail(e, "model.vocab: token %s: expected an integer id in [0, 2^24), found %s",
                     excerpt(v->string, ex), cJSON_IsNumber(v) ? "a number out of range" : kind(v));
    if (id >= t->size) t->size = id + 1;
    if (++n > TOK_MAX_IDS) return oc_fail(e, "model.vocab: more than 2^24 tokens (not supported)");
  }
  t->n_vocab = n;
  int i = 0;
  cJSON_ArrayForEach(v, added) {
    int32_t id;
    if (!cJSON_IsObject(v))
      return oc_fail(e, "added_tokens[%d]: expected an object, found %s", i, kind(v));
    if (read_id(get(v, "id"), &id) != 0)
      return oc_fail(e, "added_tokens[%d].id: expected an integer in [0, 2^24), found %s", i,
                     cJSON_IsNumber(get(v, "id")) ? "a number out of range" : kind(get(v, "id")));
    if (id >= t->size) t->size = id + 1;
    i++;
  }
  return 0;
}

static int read_added(rt_tokenizer *t, const cJSON *added, const int16_t cp_byte[0x144],
                      oc_error *e) {
  const cJSON *v;
  char ex[200], ex2[200];
  int i = 0;
  cJSON_ArrayForEach(v, added) {
    int32_t id;
    read_id(get(v, "id"), &id);
    const cJSON *content = get(v, "content");
    if (!cJSON_IsString(content))
      return oc_fail(e, "added_tokens[%d].content: expected a string, found %s", i, kind(content));
    const char *text = content->valuestring, *why = bad_text(text, false);
    if (why) return oc_fail(e, "added_tokens[%d].content %s %s", i, excerpt(text, ex), why);
    char where[64];
    snprintf(where, sizeof where, "added_tokens[%d]", i);
    bool special, normalized, flag;
    if (opt_bool(v, "special", where, false, &special, e) != 0 ||
        opt_bool(v, "normalized", where, !special, &normalized, e) != 0)
      return -1;
    static const char *const flags[] = {"single_word", "lstrip", "rstrip"};
    for (int f = 0; f < 3; f++) {
      if (opt_bool(v, flags[f], where, false, &flag, e) != 0) return -1;
      if (flag)
        return oc_fail(e, "%s (%s): %s true is not supported", where, excerpt(text, ex), flags[f]);
    }
    int32_t known = tok_find_text(t, text, strlen(text));
    tok_token *tk = &t->tokens[id];
    if (known >= 0 && known != id)
      return oc_fail(e, "%s: %s has id %d, but %s gives it id %d", where, excerpt(text, ex), id,
                     t->tokens[known].added ? "an earlier added token" : "model.vocab", known);
    if (known < 0 && tk->used)
      return oc_fail(e, "%s: %s has id %d, which %s already gives to %s", where,
                     excerpt(text, ex), id, tk->added ? "an earlier added token" : "model.vocab",
                     excerpt(token_text(t, id), ex2));
    if (tk->added) return oc_fail(e, "%s: %s is listed twice", where, excerpt(text, ex));
    if (known < 0 && add_token(t, id, text, cp_byte, e) != 0) return -1;
    tk->added = 1, tk->special = special;
    if (tok_trie_add(&t->tries[normalized], text, strlen(text), id) != 0)
      return oc_fail(e, "out of memory");
    i++;
  }
  return 0;
}

static int parse_root(rt_tokenizer *t, const cJSON *root, oc_error *e) {
  if (!cJSON_IsObject(root)) return oc_fail(e, "expected a JSON object, found %s", kind(root));
  const cJSON *model = get(root, "model");
  if (!model) return oc_fail(e, "model is missing");
  if (check_plain_sections(root, e) != 0 || check_model_options(t, model, e) != 0 ||
      check_post_processor(get(root, "post_processor"), "post_processor", 0, e) != 0)
    return -1;
  const cJSON *vocab = get(model, "vocab"), *merges = get(model, "merges");
  const cJSON *added = get(root, "added_tokens");
  if (!cJSON_IsObject(vocab))
    return oc_fail(e, "model.vocab: expected an object (token -> id), found %s", kind(vocab));
  if (!cJSON_IsArray(merges))
    return oc_fail(e, "model.merges: expected an array, found %s", kind(merges));
  if (is_null(added)) added = NULL;
  else if (!cJSON_IsArray(added))
    return oc_fail(e, "added_tokens: expected an array, found %s", kind(added));

  if (scan_ids(t, vocab, added, e) != 0) return -1;
  size_t n_texts = (size_t)t->n_vocab + (size_t)cJSON_GetArraySize(added);
  size_t cap = pow2_at_least(2 * n_texts);
  t->tokens = oc_calloc((size_t)t->size ? (size_t)t->size : 1, sizeof *t->tokens);
  t->by_text.slots = oc_malloc(cap * sizeof *t->by_text.slots);
  if (!t->tokens || !t->by_text.slots) return oc_fail(e, "out of memory");
  for (size_t i = 0; i < cap; i++) t->by_text.slots[i].id = -1;
  t->by_text.mask = cap - 1;
  for (int k = 0; k < 2; k++)
    if (tok_pairmap_init(&t->tries[k].edges, 64) != 0) return oc_fail(e, "out of memory");
  t->tries[0].nodes = t->tries[1].nodes = 1;

  int16_t cp_byte[0x144];
  byte_level_tables(t, cp_byte);
  if (read_vocab(t, vocab, cp_byte, e) != 0 || read_merges(t, merges, e) != 0 ||
      read_added(t, added, cp_byte, e) != 0)
    return -1;
  const cJSON *pt = get(root, "pre_tokenizer");
  if (tok_parse_pretokenizer(t, is_null(pt) ? NULL : pt, e) != 0) return -1;
  if (tok_mark_self(t) != 0) return oc_fail(e, "out of memory");
  return 0;
}

int rt_tokenizer_parse(const char *json, size_t len, const char *source, rt_tokenizer **out,
                       oc_error *e) {
  *out = NULL;
  if (!source) source = "tokenizer.json";
  const char *end = NULL;
  unsigned long failures = oc_alloc_failures();
  cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
  if (!root && oc_alloc_failures() != failures)
    return oc_fail(e, "%s: out of memory parsing the JSON", source);
  if (!root) {
    char where[96];
    return oc_fail(e, "%s: malformed JSON at %s", source,
                   oc_text_where(json, len, end, where, sizeof where));
  }
  rt_tokenizer *t = oc_calloc(1, sizeof *t);
  if (!t || !(t->pcre = tok_pcre_context())) {
    free(t);
    cJSON_Delete(root);
    return oc_fail(e, "%s: out of memory", source);
  }
  int rc = parse_root(t, root, e);
  cJSON_Delete(root);
  if (rc != 0) {
    rt_tokenizer_free(t);
    return oc_wrap(e, "%s", source);
  }
  *out = t;
  return 0;
}

int rt_tokenizer_load(const char *path, rt_tokenizer **out, oc_error *e) {
  *out = NULL;
  oc_file f;
  if (oc_file_read(&f, path, "tokenizer.json", MAX_FILE_BYTES, false, e)) return -1;
  int rc = rt_tokenizer_parse(f.data, f.len, f.path, out, e);
  oc_file_free(&f);
  return rc;
}

void rt_tokenizer_free(rt_tokenizer *t) {
  if (!t) return;
  tok_free_pretokenizer(t);
  pcre2_general_context_free(t->pcre);
  for (int k = 0; k < 2; k++) tok_pairmap_free(&t->tries[k].edges);
  tok_pairmap_free(&t->merges);
  free(t->words);
  free(t->by_text.slots);
  free(t->tokens);
  free(t->arena);
  free(t);
}

/* ---- lookups -------------------------------------------------------------- */

int32_t rt_tokenizer_size(const rt_tokenizer *t) { return t->size; }

const char *rt_tokenizer_bytes(const rt_tokenizer *t, int32_t id, size_t *len) {
  if (id < 0 || id >= t->size || !t->tokens[id].used) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = t->tokens[id].bytes_len;
  return t->arena + t->tokens[id].bytes;
}

int32_t rt_tokenizer_find(const rt_tokenizer *t, const char *token) {
  return token ? tok_find_text(t, token, strlen(token)) : -1;
}

bool rt_tokenizer_is_special(const rt_tokenizer *t, int32_t id) {
  return id >= 0 && id < t->size && t->tokens[id].special;
}
