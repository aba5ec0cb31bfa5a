/* Splitting text before BPE: added tokens first (a byte trie, longest match at
 * the leftmost position, as the reference's AddedVocabulary does), then the
 * pre-tokenizer's regex steps (Split, Digits, ByteLevel's GPT-2 regex) with
 * PCRE2. Patterns are written for Oniguruma, the reference's engine: each is
 * rewritten so that PCRE2 reads it the same way, or refused. Text given to the
 * steps is valid UTF-8 (bpe.c sanitizes it), so no match call re-checks it. */
#include "tokenizer_tables.h"
#include "olmoc/utf8.h"
#include "olmoc/alloc.h"

#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

/* GPT-2's pattern, which ByteLevel applies when use_regex is true. */
#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* ---- added tokens ---------------------------------------------------------- */

int tok_trie_add(tok_trie *tr, const char *text, size_t n, int32_t id) {
  int32_t node = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t key = (uint64_t)node << 8 | (unsigned char)text[i];
    const struct tok_pair_slot *s = tok_pairmap_get(&tr->edges, key);
    int32_t child = s ? s->a : tr->nodes;
    int32_t end = i + 1 == n ? id : s ? s->b : -1;
    if (!s) tr->nodes++;
    if (tok_pairmap_put(&tr->edges, key, child, end) != 0) return -1;
    node = child;
  }
  tr->first[(unsigned char)text[0] >> 3] |= (uint8_t)(1u << (text[0] & 7));
  tr->count++;
  return 0;
}

int tok_split_added(const tok_trie *tr, const unsigned char *s, size_t n, tok_text_fn text,
                    tok_added_fn token, void *ctx) {
  size_t start = 0;
  for (size_t i = 0; tr->count && i < n;) {
    if (!(tr->first[s[i] >> 3] & (1u << (s[i] & 7)))) {
      i++;
      continue;
    }
    int32_t node = 0, best = -1;
    size_t best_len = 0;
    for (size_t j = i; j < n; j++) {
      const struct tok_pair_slot *e = tok_pairmap_get(&tr->edges, (uint64_t)node << 8 | s[j]);
      if (!e) break;
      node = e->a;
      if (e->b >= 0) best = e->b, best_len = j - i + 1;
    }
    if (best < 0) {
      i++;
      continue;
    }
    if (i > start && text(ctx, s + start, i - start) != 0) return -1;
    if (token(ctx, best) != 0) return -1;
    i += best_len;
    start = i;
  }
  return n > start ? text(ctx, s + start, n - start) : 0;
}

/* ---- patterns ---------------------------------------------------------------- */

/* Oniguruma's \s is Unicode White_Space; PCRE2's adds U+180E. \w, \b and \h
 * mean different things in the two engines, as do POSIX classes. Returns the
 * rewritten pattern (malloc'ed) or NULL with *bad naming what was refused. */
static char *rewrite_pattern(const char *src, const char **bad) {
  size_t n = strlen(src), o = 0;
  char *out = oc_malloc(n * 8 + 1); /* "\s" (2 bytes) becomes 15 */
  *bad = NULL;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (src[i] == '[' && src[i + 1] == ':' && strstr(src + i, ":]")) {
      *bad = "a POSIX class [:name:]";
      break;
    }
    if (src[i] != '\\' || i + 1 == n) {
      out[o++] = src[i];
      continue;
    }
    char c = src[++i];
    if (c == 's' || c == 'S') {
      memcpy(out + o, c == 's' ? "\\p{White_Space}" : "\\P{White_Space}", 15);
      o += 15;
    } else if (strchr("wWbBhH", c)) {
      static const char *const names[] = {"\\w", "\\W", "\\b", "\\B", "\\h", "\\H"};
      *bad = names[strchr("wWbBhH", c) - "wWbBhH"];
      break;
    } else {
      out[o++] = '\\', out[o++] = c;
    }
  }
  if (*bad) {
    free(out);
    return NULL;
  }
  out[o] = 0;
  return out;
}

static int add_step(rt_tokenizer *t, const char *pattern, bool literal, tok_keep keep,
                    const char *where, oc_error *e) {
  if (oc_utf8_valid((const unsigned char *)pattern, strlen(pattern)) != strlen(pattern))
    return oc_fail(e, "%s: the pattern is not valid UTF-8", where);
  const char *bad = NULL;
  char *rewritten = literal ? NULL : rewrite_pattern(pattern, &bad);
  if (bad)
    return oc_fail(e, "%s: the pattern uses %s, which the reference's regex engine (Oniguruma) "
                      "reads differently from PCRE2 (not supported)", where, bad);
  if (!literal && !rewritten) return oc_fail(e, "out of memory");
  /* Oniguruma's ^ and $ match at every line; its . excludes only \n. */
  uint32_t opts = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE;
  int rc = tok_add_regex(t, literal ? pattern : rewritten, opts, keep, where, e);
  free(rewritten);
  return rc;
}

int tok_add_regex(rt_tokenizer *t, const char *pattern, uint32_t opts, tok_keep keep,
                  const char *where, oc_error *e) {
  if (t->n_steps == TOK_MAX_STEPS)
    return oc_fail(e, "%s: more than %d splitting steps (not supported)", where, TOK_MAX_STEPS);
  char *source = oc_strdup(pattern);
  pcre2_compile_context *cc = source ? pcre2_compile_context_create(t->pcre) : NULL;
  if (!cc) {
    free(source);
    return oc_fail(e, "out of memory");
  }
  pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
  int err;
  PCRE2_SIZE at;
  unsigned long failures = oc_alloc_failures();
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &err, &at, cc);
  pcre2_compile_context_free(cc);
  if (!re) free(source);
  if (!re && oc_alloc_failures() != failures) return oc_fail(e, "%s: out of memory", where);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return oc_fail(e, "%s: the pattern does not compile: %s", where, (const char *)msg);
  }
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* on failure pcre2_match interprets */
  t->steps[t->n_steps++] = (tok_split){re, keep, source, opts};
  return 0;
}

void tok_free_pretokenizer(rt_tokenizer *t) {
  for (int i = 0; i < t->n_steps; i++) {
    pcre2_code_free(t->steps[i].re);
    free(t->steps[i].pattern);
  }
  t->n_steps = 0;
}

/* ---- the "pre_tokenizer" object ------------------------------------------------ */

static const char *kind(const cJSON *v) {
  return !v ? "missing" : cJSON_IsNull(v) ? "null" : cJSON_IsBool(v) ? "a boolean"
       : cJSON_IsNumber(v) ? "a number" : cJSON_IsString(v) ? "a string"
       : cJSON_IsArray(v) ? "an array" : "an object";
}

static int get_bool(const cJSON *obj, const char *key, const char *where, int def, bool *out,
                    oc_error *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if ((!v || cJSON_IsNull(v)) && def >= 0) {
    *out = def;
    return 0;
  }
  if (!cJSON_IsBool(v))
    return oc_fail(e, "%s.%s: expected a boolean, found %s", where, key, kind(v));
  *out = cJSON_IsTrue(v);
  return 0;
}

static int parse_split(rt_tokenizer *t, const cJSON *p, const char *where, oc_error *e) {
  const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
  const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
  const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
  const cJSON *beh = cJSON_GetObjectItemCaseSensitive(p, "behavior");
  bool invert;
  if (!cJSON_IsObject(pat) || cJSON_IsString(re) == cJSON_IsString(str))
    return oc_fail(e, "%s.pattern: expected {\"Regex\": ...} or {\"String\": ...}", where);
  if (!cJSON_IsString(beh))
    return oc_fail(e, "%s.behavior: expected a string, found %s", where, kind(beh));
  if (get_bool(p, "invert", where, -1, &invert, e) != 0) return -1;
  tok_keep keep;
  if (strcmp(beh->valuestring, "Isolated") == 0) keep = TOK_KEEP_ALL; /* invert changes nothing */
  else if (strcmp(beh->valuestring, "Removed") == 0) keep = invert ? TOK_KEEP_MATCHES : TOK_KEEP_GAPS;
  else
    return oc_fail(e, "%s.behavior %s is not supported (expected Isolated or Removed)", where,
                   beh->valuestring);
  bool literal = cJSON_IsString(str);
  if (literal && str->valuestring[0] == 0)
    return oc_fail(e, "%s.pattern: the string is empty", where);
  return add_step(t, literal ? str->valuestring : re->valuestring, literal, keep, where, e);
}

static int parse_step(rt_tokenizer *t, const cJSON *p, const char *where, int depth,
                      bool *byte_level, oc_error *e) {
  const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "type");
  if (!cJSON_IsObject(p)) return oc_fail(e, "%s: expected an object, found %s", where, kind(p));
  if (!cJSON_IsString(ty)) return oc_fail(e, "%s.type: expected a string, found %s", where, kind(ty));
  const char *type = ty->valuestring;
  char inner[96];
  if (strcmp(type, "Sequence") == 0 && depth == TOK_MAX_NESTING)
    return oc_fail(e, "%s: Sequences nested more than %d deep (not supported)", where, TOK_MAX_NESTING);
  if (strcmp(type, "Sequence") == 0) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"), *q;
    if (!cJSON_IsArray(list))
      return oc_fail(e, "%s.pretokenizers: expected an array, found %s", where, kind(list));
    int i = 0;
    cJSON_ArrayForEach(q, list) {
      snprintf(inner, sizeof inner, "%s.pretokenizers[%d]", where, i++);
      if (parse_step(t, q, inner, depth + 1, byte_level, e) != 0) return -1;
    }
    return 0;
  }
  if (*byte_level)
    return oc_fail(e, "%s: a %s step after ByteLevel is not supported (ByteLevel must come last)",
                   where, type);
  if (strcmp(type, "Split") == 0) return parse_split(t, p, where, e);
  if (strcmp(type, "Digits") == 0) {
    bool each;
    if (get_bool(p, "individual_digits", where, 0, &each, e) != 0) return -1;
    return add_step(t, each ? "\\p{N}" : "\\p{N}+", false, TOK_KEEP_ALL, where, e);
  }
  if (strcmp(type, "ByteLevel") == 0) {
    bool prefix, use_regex;
    if (get_bool(p, "add_prefix_space", where, 0, &prefix, e) != 0 ||
        get_bool(p, "use_regex", where, 1, &use_regex, e) != 0)
      return -1;
    if (prefix) return oc_fail(e, "%s: ByteLevel add_prefix_space true is not supported", where);
    *byte_level = true; /* trim_offsets only moves offsets */
    return use_regex ? add_step(t, GPT2_PATTERN, false, TOK_KEEP_ALL, where, e) : 0;
  }
  return oc_fail(e, "%s %s is not supported (expected ByteLevel, Split, Digits or a Sequence "
                    "of them)", where, type);
}

int tok_parse_pretokenizer(rt_tokenizer *t, const cJSON *pt, oc_error *e) {
  if (!pt)
    return oc_fail(e, "pre_tokenizer is null: a byte-level BPE tokenizer needs a ByteLevel "
                      "pre-tokenizer (not supported)");
  bool byte_level = false;
  if (parse_step(t, pt, "pre_tokenizer", 0, &byte_level, e) != 0) return -1;
  if (!byte_level)
    return oc_fail(e, "pre_tokenizer has no ByteLevel step: not a byte-level BPE tokenizer "
                      "(not supported)");
  return 0;
}

/* ---- running the steps ----------------------------------------------------------- */

static size_t char_len(unsigned char c) { return c < 0xE0 ? 1 + (c >= 0xC0) : 3 + (c >= 0xF0); }

/* Step k over s[0, n): the matches and the gaps between them, as Hugging
 * Face's Split finds them with the onig crate (an empty match right where
 * the previous one ended is skipped, one character on). */
static int run_step(const rt_tokenizer *t, int k, const unsigned char *s, size_t n,
                    pcre2_match_data *md, tok_piece_fn piece, void *ctx, oc_error *e) {
  if (n == 0) return 0;
  if (k == t->n_steps) return piece(ctx, s, n);
  const tok_split *st = &t->steps[k];
  size_t pos = 0, prev = 0, last_end = SIZE_MAX;
  while (pos <= n) {
    int rc = pcre2_match(st->re, s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
      rc = pcre2_match(st->re, s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      return oc_fail(e, "pre-tokenizer step %d: regex match failed: %s", k, (const char *)msg);
    }
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t ms = ov[0], me = ov[1];
    if (ms < pos || ms > me || me > n)
      return oc_fail(e, "pre-tokenizer step %d: the regex reported a match outside the text "
                        "(\\K?): not supported", k);
    if (ms == me && me == last_end) {
      if (pos == n) break;
      pos += char_len(s[pos]);
      continue;
    }
    if (ms > prev && st->keep != TOK_KEEP_MATCHES &&
        run_step(t, k + 1, s + prev, ms - prev, md, piece, ctx, e) != 0)
      return -1;
    if (me > ms && st->keep != TOK_KEEP_GAPS &&
        run_step(t, k + 1, s + ms, me - ms, md, piece, ctx, e) != 0)
      return -1;
    prev = pos = last_end = me;
  }
  if (n > prev && st->keep != TOK_KEEP_MATCHES)
    return run_step(t, k + 1, s + prev, n - prev, md, piece, ctx, e);
  return 0;
}

int tok_pretokenize(const rt_tokenizer *t, const unsigned char *s, size_t n,
                    pcre2_match_data *md, tok_piece_fn piece, void *ctx, oc_error *e) {
  return run_step(t, 0, s, n, md, piece, ctx, e);
}

static void *pcre_alloc(size_t n, void *ctx) { return (void)ctx, oc_malloc(n); }
static void pcre_free(void *p, void *ctx) { (void)ctx, free(p); }

pcre2_general_context *tok_pcre_context(void) {
  return pcre2_general_context_create(pcre_alloc, pcre_free, NULL);
}
