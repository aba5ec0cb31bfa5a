/* runtime/tokenizer*.c, bpe.c, detokenizer.c: OLMo 2's tokenizer
 * (models/olmo2-tokenizer/tokenizer.json) against the ids the reference
 * tokenizers give (tests/data/tokenizer/, made by
 * tools/tokenizer_golden/make_golden.mjs), decoding whole and streamed, and a
 * tiny hand-made tokenizer for merge order and for every refusal message. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "olmoc/tokenizer.h"

#define DOLMA2 "models/olmo2-tokenizer/tokenizer.json"
#define GOLDEN "tests/data/tokenizer/dolma2.jsonl"
#define VARIANTS "tests/data/tokenizer/variants.jsonl"

static rt_tokenizer *dolma2;

/* ---- reading files ---- */

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s (tests run from the repository root)", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  buf[n] = 0;
  if (len) *len = (size_t)n;
  return buf;
}

/* One golden line: the string's bytes and the ids it must encode to. */
typedef struct golden {
  char name[64];
  char variant[32];
  unsigned char *bytes, *lossy; /* lossy: what decode must give back */
  size_t n, n_lossy;
  int32_t *ids;
  size_t n_ids;
} golden;

static unsigned char *unhex(const char *h, size_t *n) {
  size_t len = strlen(h) / 2;
  unsigned char *b = malloc(len + 1);
  assert_non_null(b);
  for (size_t i = 0; i < len; i++) {
    unsigned v;
    assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
    b[i] = (unsigned char)v;
  }
  *n = len;
  return b;
}

static void read_golden_line(const cJSON *j, golden *g) {
  const cJSON *name = cJSON_GetObjectItem(j, "name"), *hex = cJSON_GetObjectItem(j, "hex");
  const cJSON *variant = cJSON_GetObjectItem(j, "variant"), *lossy = cJSON_GetObjectItem(j, "lossy_hex");
  const cJSON *ids = cJSON_GetObjectItem(j, "rust_ids"); /* olmoc follows Rust where JS differs */
  if (!ids) ids = cJSON_GetObjectItem(j, "ids");
  assert_true(cJSON_IsString(name) && cJSON_IsString(hex) && cJSON_IsArray(ids));
  snprintf(g->name, sizeof g->name, "%s", name->valuestring);
  snprintf(g->variant, sizeof g->variant, "%s", cJSON_IsString(variant) ? variant->valuestring : "");
  g->bytes = unhex(hex->valuestring, &g->n);
  g->lossy = unhex(cJSON_IsString(lossy) ? lossy->valuestring : hex->valuestring, &g->n_lossy);
  g->n_ids = (size_t)cJSON_GetArraySize(ids);
  g->ids = malloc((g->n_ids + 1) * sizeof *g->ids);
  assert_non_null(g->ids);
  for (size_t i = 0; i < g->n_ids; i++) g->ids[i] = cJSON_GetArrayItem(ids, (int)i)->valueint;
}

static void free_golden(golden *g, size_t n) {
  for (size_t i = 0; i < n; i++) free(g[i].bytes), free(g[i].lossy), free(g[i].ids);
  free(g);
}

/* Every string line of a .jsonl file (lines holding a "pre_tokenizer" are
 * skipped: they describe a variant). */
static golden *read_golden(const char *path, size_t *count) {
  char *text = read_file(path, NULL), *save = NULL;
  size_t n = 0, cap = 64;
  golden *g = calloc(cap, sizeof *g);
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    cJSON *j = cJSON_Parse(line);
    assert_non_null(j);
    if (!cJSON_GetObjectItem(j, "pre_tokenizer")) {
      if (n == cap) g = realloc(g, (cap *= 2) * sizeof *g), assert_non_null(g);
      memset(&g[n], 0, sizeof g[n]);
      read_golden_line(j, &g[n++]);
    }
    cJSON_Delete(j);
  }
  free(text);
  *count = n;
  return g;
}

/* Encodes g and compares with its ids, naming the string and where they part. */
static void check_encode(const rt_tokenizer *t, const golden *g) {
  int32_t *ids;
  size_t n;
  oc_error e;
  if (rt_tokenizer_encode(t, (const char *)g->bytes, g->n, &ids, &n, &e) != 0)
    fail_msg("%s %s: encode failed: %s", g->variant, g->name, e.msg);
  size_t at = 0;
  while (at < n && at < g->n_ids && ids[at] == g->ids[at]) at++;
  if (at < n || at < g->n_ids)
    fail_msg("%s %s: %zu ids, expected %zu; first difference at %zu: %d, expected %d", g->variant,
             g->name, n, g->n_ids, at, at < n ? ids[at] : -1, at < g->n_ids ? g->ids[at] : -1);
  free(ids);
}

/* Strictly well-formed UTF-8 (no overlongs, surrogates, or past U+10FFFF). */
static bool utf8_ok(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned c = s[i], need, lo = 0x80, hi = 0xBF;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return false;
    for (unsigned k = 1; k <= need; k++, lo = 0x80, hi = 0xBF)
      if (i + k >= n || s[i + k] < lo || s[i + k] > hi) return false;
    i += need + 1;
  }
  return true;
}

/* ---- OLMo 2's tokenizer against the reference ---- */

static int setup_dolma2(void **state) {
  (void)state;
  oc_error e;
  if (rt_tokenizer_load(DOLMA2, &dolma2, &e) != 0) {
    fprintf(stderr, "%s\n", e.msg);
    return -1;
  }
  return 0;
}

static int teardown_dolma2(void **state) {
  (void)state;
  rt_tokenizer_free(dolma2);
  return 0;
}

static void test_golden_ids(void **state) {
  (void)state;
  size_t n, invalid = 0;
  golden *g = read_golden(GOLDEN, &n);
  assert_true(n >= 300);
  for (size_t i = 0; i < n; i++) {
    check_encode(dolma2, &g[i]);
    invalid += g[i].n_lossy != g[i].n || memcmp(g[i].lossy, g[i].bytes, g[i].n) != 0;
  }
  assert_true(invalid >= 20);
  free_golden(g, n);
}

/* decode(encode(s)) is s, or for ill-formed bytes the lossy reading of s. */
static void test_golden_roundtrip(void **state) {
  (void)state;
  size_t n;
  golden *g = read_golden(GOLDEN, &n);
  for (size_t i = 0; i < n; i++) {
    char *text;
    size_t len;
    oc_error e;
    if (rt_tokenizer_decode(dolma2, g[i].ids, g[i].n_ids, &text, &len, &e) != 0)
      fail_msg("%s: %s", g[i].name, e.msg);
    if (len != g[i].n_lossy || memcmp(text, g[i].lossy, len) != 0)
      fail_msg("%s: decode gives %zu bytes, expected %zu", g[i].name, len, g[i].n_lossy);
    assert_int_equal(text[len], 0);
    free(text);
  }
  free_golden(g, n);
}

/* Streaming gives the whole decode, one well-formed piece at a time. */
static void test_golden_streaming(void **state) {
  (void)state;
  size_t n;
  golden *g = read_golden(GOLDEN, &n);
  for (size_t i = 0; i < n; i++) {
    char *all = malloc(3 * g[i].n_lossy + 16), piece[3 * 4096 + 3];
    size_t len = 0;
    rt_detokenizer d;
    rt_detokenizer_init(&d, dolma2);
    for (size_t k = 0; k < g[i].n_ids; k++) {
      size_t got = rt_detokenizer_push(&d, g[i].ids[k], piece, sizeof piece);
      if (!utf8_ok((unsigned char *)piece, got))
        fail_msg("%s: token %zu streams a partial character", g[i].name, k);
      memcpy(all + len, piece, got);
      len += got;
    }
    len += rt_detokenizer_flush(&d, all + len, 3);
    if (len != g[i].n_lossy || memcmp(all, g[i].lossy, len) != 0)
      fail_msg("%s: streamed %zu bytes, expected %zu", g[i].name, len, g[i].n_lossy);
    free(all);
  }
  free_golden(g, n);
}

/* The byte-level token of one byte, by its text. */
static int32_t byte_token(unsigned b) {
  unsigned cp = b, next = 256;
  bool prints = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  if (!prints) {
    for (unsigned x = 0; x < b; x++)
      if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) next++;
    cp = next;
  }
  char text[3] = {0};
  if (cp < 0x80) text[0] = (char)cp;
  else text[0] = (char)(0xC0 | cp >> 6), text[1] = (char)(0x80 | (cp & 0x3F));
  return rt_tokenizer_find(dolma2, text);
}

static void test_stream_split_character(void **state) {
  (void)state;
  /* 😀 = F0 9F 98 80 fed as four byte tokens: nothing until the last. */
  const unsigned char smile[4] = {0xF0, 0x9F, 0x98, 0x80};
  char out[64];
  rt_detokenizer d;
  rt_detokenizer_init(&d, dolma2);
  for (int k = 0; k < 3; k++) assert_int_equal(rt_detokenizer_push(&d, byte_token(smile[k]), out, sizeof out), 0);
  assert_int_equal(rt_detokenizer_push(&d, byte_token(smile[3]), out, sizeof out), 4);
  assert_memory_equal(out, smile, 4);
  assert_int_equal(rt_detokenizer_flush(&d, out, sizeof out), 0);

  /* Cut short: the flush gives one U+FFFD, as whole decoding does. */
  int32_t ids[3] = {byte_token(0xF0), byte_token(0x9F), byte_token(0x98)};
  for (int k = 0; k < 3; k++) assert_int_equal(rt_detokenizer_push(&d, ids[k], out, sizeof out), 0);
  assert_int_equal(rt_detokenizer_flush(&d, out, sizeof out), 3);
  assert_memory_equal(out, "\xEF\xBF\xBD", 3);
  char *text;
  size_t len;
  oc_error e;
  assert_int_equal(rt_tokenizer_decode(dolma2, ids, 3, &text, &len, &e), 0);
  assert_string_equal(text, "\xEF\xBF\xBD");
  free(text);

  /* Broken by the next token: U+FFFD for the broken part, then the text. */
  int32_t hello = rt_tokenizer_find(dolma2, "Hello");
  assert_int_equal(rt_detokenizer_push(&d, byte_token(0xE2), out, sizeof out), 0);
  size_t got = rt_detokenizer_push(&d, hello, out, sizeof out);
  assert_int_equal(got, 8);
  assert_memory_equal(out, "\xEF\xBF\xBDHello", 8);

  /* Unknown ids give nothing when streamed and an error when decoded whole. */
  assert_int_equal(rt_detokenizer_push(&d, 100300, out, sizeof out), 0);
  assert_int_equal(rt_detokenizer_push(&d, -1, out, sizeof out), 0);
  int32_t bad[2] = {hello, 100300};
  assert_int_equal(rt_tokenizer_decode(dolma2, bad, 2, &text, &len, &e), -1);
  assert_non_null(strstr(e.msg, "id 100300"));
}

static void test_special_tokens(void **state) {
  (void)state;
  assert_int_equal(rt_tokenizer_size(dolma2), 100278);
  assert_int_equal(rt_tokenizer_find(dolma2, "<|endoftext|>"), 100257);
  assert_int_equal(rt_tokenizer_find(dolma2, "<|pad|>"), 100277);
  assert_int_equal(rt_tokenizer_find(dolma2, "Hello"), 9906);
  assert_int_equal(rt_tokenizer_find(dolma2, "\xC4\xA0world"), 1917); /* "Ġworld" */
  assert_int_equal(rt_tokenizer_find(dolma2, " world"), -1);
  assert_int_equal(rt_tokenizer_find(dolma2, "<|no such token|>"), -1);
  assert_true(rt_tokenizer_is_special(dolma2, 100257));
  assert_true(rt_tokenizer_is_special(dolma2, 100264));
  assert_false(rt_tokenizer_is_special(dolma2, 100256)); /* <|extra_id_0|>: added, not special */
  assert_false(rt_tokenizer_is_special(dolma2, 100261)); /* |||PHONE_NUMBER||| */
  assert_false(rt_tokenizer_is_special(dolma2, 9906));
  assert_false(rt_tokenizer_is_special(dolma2, -5));
  assert_false(rt_tokenizer_is_special(dolma2, 1 << 30));
  size_t len;
  assert_memory_equal(rt_tokenizer_bytes(dolma2, 220, &len), " ", 1);
  assert_int_equal(len, 1);
  assert_string_equal(rt_tokenizer_bytes(dolma2, 100257, &len), "<|endoftext|>");
  assert_string_equal(rt_tokenizer_bytes(dolma2, 1917, &len), " world");
  assert_null(rt_tokenizer_bytes(dolma2, -1, &len));
  assert_null(rt_tokenizer_bytes(dolma2, 100278, &len));

  /* Matched whole wherever they are, never split or merged with text. */
  const char *text = "a<|im_start|><|im_end|> <|endoftext|>b<|endoftext";
  int32_t *ids;
  size_t n;
  oc_error e;
  assert_int_equal(rt_tokenizer_encode(dolma2, text, strlen(text), &ids, &n, &e), 0);
  int32_t expect_head[] = {64, 100264, 100265, 220, 100257, 65};
  assert_true(n > 6);
  assert_memory_equal(ids, expect_head, sizeof expect_head);
  for (size_t i = 6; i < n; i++) assert_false(rt_tokenizer_is_special(dolma2, ids[i]));
  free(ids);
}

/* Ill-formed bytes are read as a lossy decoder reads them. */
static void test_invalid_utf8(void **state) {
  (void)state;
  static const struct {
    const char *bytes, *same_as;
  } cases[] = {
      {"\xFF", "\xEF\xBF\xBD"},
      {"\xE2\x82", "\xEF\xBF\xBD"},                                 /* a cut-off character: one */
      {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},     /* a surrogate: three */
      {"\xC0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD"},                     /* an overlong: two */
      {"a\x80z", "a\xEF\xBF\xBDz"},
      {"\xF0\x9F\x98 x", "\xEF\xBF\xBD x"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int32_t *a, *b;
    size_t na, nb;
    oc_error e;
    assert_int_equal(rt_tokenizer_encode(dolma2, cases[i].bytes, strlen(cases[i].bytes), &a, &na, &e), 0);
    assert_int_equal(rt_tokenizer_encode(dolma2, cases[i].same_as, strlen(cases[i].same_as), &b, &nb, &e), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    free(a), free(b);
  }
}

static void test_empty_and_long(void **state) {
  (void)state;
  int32_t *ids;
  size_t n;
  oc_error e;
  assert_int_equal(rt_tokenizer_encode(dolma2, "", 0, &ids, &n, &e), 0);
  assert_int_equal(n, 0);
  free(ids);
  char *text;
  size_t len;
  assert_int_equal(rt_tokenizer_decode(dolma2, NULL, 0, &text, &len, &e), 0);
  assert_int_equal(len, 0);
  assert_string_equal(text, "");
  free(text);

  /* 200 kB without a space is one piece for the merge heap; it comes back whole. */
  size_t big = 200000;
  char *word = malloc(big);
  for (size_t i = 0; i < big; i++) word[i] = "abcdefghijklmnopqrstuvwxyz"[(i * 7 + i / 26) % 26];
  assert_int_equal(rt_tokenizer_encode(dolma2, word, big, &ids, &n, &e), 0);
  assert_true(n > big / 10 && n < big);
  assert_int_equal(rt_tokenizer_decode(dolma2, ids, n, &text, &len, &e), 0);
  assert_int_equal(len, big);
  assert_memory_equal(text, word, big);
  free(ids), free(text), free(word);
}

/* ---- other real pre-tokenizers on the same vocabulary ---- */

static void test_variants(void **state) {
  (void)state;
  size_t len;
  char *base = read_file(DOLMA2, &len), *text = read_file(VARIANTS, NULL), *save = NULL;
  cJSON *root = cJSON_ParseWithLength(base, len);
  assert_non_null(root);
  free(base);
  rt_tokenizer *t = NULL;
  int variants = 0, strings = 0;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    cJSON *j = cJSON_Parse(line);
    assert_non_null(j);
    cJSON *pt = cJSON_DetachItemFromObject(j, "pre_tokenizer");
    if (pt) {
      rt_tokenizer_free(t);
      cJSON_ReplaceItemInObject(root, "pre_tokenizer", pt);
      char *json = cJSON_PrintUnformatted(root);
      oc_error e;
      if (rt_tokenizer_parse(json, strlen(json), "variant", &t, &e) != 0) fail_msg("%s", e.msg);
      free(json);
      variants++;
    } else {
      golden g = {0};
      read_golden_line(j, &g);
      check_encode(t, &g);
      free(g.bytes), free(g.lossy), free(g.ids);
      strings++;
    }
    cJSON_Delete(j);
  }
  assert_true(variants >= 4 && strings >= 4 * 300);
  rt_tokenizer_free(t);
  cJSON_Delete(root);
  free(text);
}

/* ---- a tiny tokenizer made by hand ---- */

/* The 256 byte tokens (ids = byte values), then bc ab abc aa xy yz (256-261);
 * merges "b c" < "a b" < "ab c" < "a a"; the whole text is one piece. */
static cJSON *tiny(void) {
  cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
  cJSON_AddNullToObject(root, "normalizer");
  cJSON *pt = cJSON_AddObjectToObject(root, "pre_tokenizer");
  cJSON_AddStringToObject(pt, "type", "ByteLevel");
  cJSON_AddFalseToObject(pt, "add_prefix_space");
  cJSON_AddFalseToObject(pt, "use_regex");
  cJSON_AddObjectToObject(root, "decoder");
  cJSON_AddStringToObject(cJSON_GetObjectItem(root, "decoder"), "type", "ByteLevel");
  cJSON_AddArrayToObject(root, "added_tokens");
  cJSON_AddStringToObject(model, "type", "BPE");
  cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
  unsigned next = 256;
  for (unsigned b = 0; b < 256; b++) {
    bool prints = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    unsigned cp = prints ? b : next++;
    char text[3] = {0};
    if (cp < 0x80) text[0] = (char)cp;
    else text[0] = (char)(0xC0 | cp >> 6), text[1] = (char)(0x80 | (cp & 0x3F));
    cJSON_AddNumberToObject(vocab, text, b);
  }
  const char *extra[] = {"bc", "ab", "abc", "aa", "xy", "yz"};
  for (int i = 0; i < 6; i++) cJSON_AddNumberToObject(vocab, extra[i], 256 + i);
  const char *merges[] = {"b c", "a b", "ab c", "a a"};
  cJSON_AddItemToObject(model, "merges", cJSON_CreateStringArray(merges, 4));
  return root;
}

/* Sets (or with value NULL removes) the item at a dotted path. */
static void set_path(cJSON *root, const char *path, const char *value) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  cJSON *at = root;
  char *key = buf, *dot;
  while ((dot = strchr(key, '.'))) {
    *dot = 0;
    at = cJSON_GetObjectItem(at, key);
    assert_non_null(at);
    key = dot + 1;
  }
  cJSON_DeleteItemFromObjectCaseSensitive(at, key);
  if (value) {
    cJSON *v = cJSON_Parse(value);
    if (!v) fail_msg("bad test JSON for %s: %s", path, value);
    cJSON_AddItemToObject(at, key, v);
  }
}

static int parse_json(cJSON *root, rt_tokenizer **t, oc_error *e) {
  char *json = cJSON_PrintUnformatted(root);
  int rc = rt_tokenizer_parse(json, strlen(json), "tiny.json", t, e);
  free(json);
  return rc;
}

static void expect_ids(const rt_tokenizer *t, const char *text, const int32_t *want, size_t n_want) {
  int32_t *ids;
  size_t n;
  oc_error e;
  assert_int_equal(rt_tokenizer_encode(t, text, strlen(text), &ids, &n, &e), 0);
  if (n != n_want || memcmp(ids, want, n * sizeof *ids) != 0)
    fail_msg("'%.20s' (%zu bytes): %zu ids, expected %zu", text, strlen(text), n, n_want);
  free(ids);
}

#define EXPECT(t, text, ...)                                                 \
  do {                                                                       \
    const int32_t want_[] = {__VA_ARGS__};                                   \
    expect_ids(t, text, want_, sizeof want_ / sizeof want_[0]);              \
  } while (0)

static void test_merge_order(void **state) {
  (void)state;
  rt_tokenizer *t;
  oc_error e;
  cJSON *root = tiny();
  assert_int_equal(parse_json(root, &t, &e), 0);
  EXPECT(t, "abc", 'a', 256);      /* "b c" ranks first, wherever it is */
  EXPECT(t, "ab", 257);
  EXPECT(t, "abab", 257, 257);
  EXPECT(t, "aaa", 259, 'a');      /* equal ranks: the leftmost first */
  EXPECT(t, "aaaa", 259, 259);
  EXPECT(t, "xyz", 'x', 'y', 'z'); /* in the vocabulary, but no merge makes them */
  /* Long pieces take the heap and must agree: 101 a's, 30 abc's. */
  char text[128];
  int32_t want[64];
  memset(text, 'a', 101), text[101] = 0;
  for (int i = 0; i < 50; i++) want[i] = 259;
  want[50] = 'a';
  expect_ids(t, text, want, 51);
  for (int i = 0; i < 30; i++) memcpy(text + 3 * i, "abc", 3), want[2 * i] = 'a', want[2 * i + 1] = 256;
  text[90] = 0;
  expect_ids(t, text, want, 60);
  rt_tokenizer_free(t);

  /* ignore_merges: a piece in the vocabulary is one token. */
  set_path(root, "model.ignore_merges", "true");
  assert_int_equal(parse_json(root, &t, &e), 0);
  EXPECT(t, "abc", 258);
  EXPECT(t, "xabc", 'x', 'a', 256); /* not whole: merged as usual */
  rt_tokenizer_free(t);

  /* A repeated merge takes its later rank; "#version" lines are skipped;
   * merges may be pairs. */
  set_path(root, "model.ignore_merges", "false");
  set_path(root, "model.merges", "[\"b c\", \"a b\", \"ab c\", \"a a\", \"b c\"]");
  assert_int_equal(parse_json(root, &t, &e), 0);
  EXPECT(t, "abc", 258);
  rt_tokenizer_free(t);
  set_path(root, "model.merges", "[\"#version: 0.2\", [\"b\", \"c\"], [\"a\", \"b\"]]");
  assert_int_equal(parse_json(root, &t, &e), 0);
  EXPECT(t, "abc", 'a', 256);
  rt_tokenizer_free(t);
  cJSON_Delete(root);
}

static void test_added_matching(void **state) {
  (void)state;
  rt_tokenizer *t;
  oc_error e;
  cJSON *root = tiny();
  /* Tokens with normalized false are found first; the others only in what
   * remains (the reference's two passes): "xyz" is x + yz. */
  set_path(root, "added_tokens",
           "[{\"id\": 260, \"content\": \"xy\", \"normalized\": true},"
           " {\"id\": 261, \"content\": \"yz\", \"normalized\": false}]");
  assert_int_equal(parse_json(root, &t, &e), 0);
  EXPECT(t, "xyz", 'x', 261);
  EXPECT(t, "xyxy", 260, 260);
  rt_tokenizer_free(t);
  /* In one pass: the leftmost match, the longest there. */
  set_path(root, "added_tokens",
           "[{\"id\": 260, \"content\": \"xy\", \"special\": true, \"normalized\": false},"
           " {\"id\": 261, \"content\": \"yz\", \"normalized\": false},"
           " {\"id\": 262, \"content\": \"xyz!\", \"normalized\": false}]");
  assert_int_equal(parse_json(root, &t, &e), 0);
  EXPECT(t, "xyz", 260, 'z');
  EXPECT(t, "xyz!abc", 262, 'a', 256);
  EXPECT(t, "yxyz!", 'y', 262);
  assert_int_equal(rt_tokenizer_size(t), 263);
  assert_true(rt_tokenizer_is_special(t, 260));
  assert_false(rt_tokenizer_is_special(t, 262));
  assert_int_equal(rt_tokenizer_find(t, "xyz!"), 262);
  rt_tokenizer_free(t);
  cJSON_Delete(root);
}

/* ---- refusals: every message names the file and the problem ---- */

static void expect_refusal(cJSON *root, const char *want) {
  rt_tokenizer *t = (rt_tokenizer *)1;
  oc_error e = {{0}};
  if (parse_json(root, &t, &e) == 0) fail_msg("loaded, expected an error with '%s'", want);
  assert_null(t);
  if (strncmp(e.msg, "tiny.json: ", 11) != 0 || !strstr(e.msg, want))
    fail_msg("message '%s' lacks '%s'", e.msg, want);
  print_message("  %s\n", e.msg);
}

static void test_refusals(void **state) {
  (void)state;
  static const struct {
    const char *path, *value, *want;
  } cases[] = {
      {"model.type", "\"WordPiece\"", "model type WordPiece is not supported"},
      {"model.type", "\"Unigram\"", "model type Unigram is not supported"},
      {"model.type", "\"WordLevel\"", "model type WordLevel is not supported"},
      {"model.type", NULL, "model.type: expected a string"},
      {"model", NULL, "model is missing"},
      {"model", "[]", "model: expected null or an object"},
      {"normalizer", "{\"type\": \"NFC\"}", "normalizer NFC is not supported"},
      {"normalizer", "{\"type\": \"Sequence\", \"normalizers\": []}", "normalizer Sequence is not supported"},
      {"pre_tokenizer", "{\"type\": \"Whitespace\"}", "pre_tokenizer Whitespace is not supported"},
      {"pre_tokenizer", "{\"type\": \"Metaspace\", \"replacement\": \"_\"}", "pre_tokenizer Metaspace is not supported"},
      {"pre_tokenizer", "null", "pre_tokenizer is null"},
      {"pre_tokenizer", "{\"type\": \"ByteLevel\", \"add_prefix_space\": true}", "add_prefix_space true is not supported"},
      {"pre_tokenizer", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Isolated\", \"invert\": false}",
       "has no ByteLevel step"},
      {"pre_tokenizer", "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"ByteLevel\"}, {\"type\": \"Digits\"}]}",
       "pre_tokenizer.pretokenizers[1]: a Digits step after ByteLevel is not supported"},
      {"pre_tokenizer", "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
                        "\"behavior\": \"MergedWithPrevious\", \"invert\": false}, {\"type\": \"ByteLevel\"}]}",
       "behavior MergedWithPrevious is not supported"},
      {"pre_tokenizer", "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}, "
                        "\"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\"}]}",
       "uses \\w, which the reference's regex engine (Oniguruma) reads differently"},
      {"pre_tokenizer", "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"}, "
                        "\"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\"}]}",
       "pre_tokenizer.pretokenizers[0]: the pattern does not compile"},
      {"pre_tokenizer", "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
                        "\"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\"}]}",
       "pre_tokenizer.pretokenizers[0].invert: expected a boolean, found missing"},
      {"model.dropout", "0.1", "model.dropout: expected null or 0"},
      {"model.continuing_subword_prefix", "\"##\"", "model.continuing_subword_prefix: expected null or \"\""},
      {"model.end_of_word_suffix", "\"</w>\"", "model.end_of_word_suffix: expected null or \"\""},
      {"model.ignore_merges", "1", "model.ignore_merges: expected a boolean, found a number"},
      {"truncation", "{\"max_length\": 512}", "truncation: expected null, found an object"},
      {"padding", "{}", "padding: expected null"},
      {"decoder", "{\"type\": \"Metaspace\"}", "decoder Metaspace is not supported"},
      {"post_processor", "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, "
                         "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]}",
       "post_processor TemplateProcessing adds <s> to every text"},
      {"post_processor", "{\"type\": \"RobertaProcessing\"}", "post_processor RobertaProcessing is not supported"},
      {"model.merges", "[\"a zz\"]", "model.merges[0] ('a' 'zz'): 'zz' is not in the vocabulary"},
      {"model.merges", "[\"b c\", \"x z\"]", "model.merges[1] ('x' 'z'): their concatenation 'xz' is not in the vocabulary"},
      {"model.merges", "[\"abc\"]", "model.merges[0]: expected \"left right\""},
      {"model.merges", "[[\"a\"]]", "model.merges[0]: expected"},
      {"model.merges", "{}", "model.merges: expected an array, found an object"},
      {"model.vocab.ab", "98", "model.vocab gives id 98 to both 'b' and 'ab'"},
      {"model.vocab.ab", "16777216", "model.vocab: token 'ab': expected an integer id in [0, 2^24), found a number out of range"},
      {"model.vocab.ab", "-1", "token 'ab': expected an integer id"},
      {"model.vocab.ab", "1.5", "token 'ab': expected an integer id"},
      {"model.vocab.ab", "\"257\"", "token 'ab': expected an integer id in [0, 2^24), found a string"},
      {"model.vocab", NULL, "model.vocab: expected an object (token -> id), found missing"},
      {"model.vocab.a", NULL, "model.vocab has no token 'a' for byte 0x61"},
      {"added_tokens", "{}", "added_tokens: expected an array"},
      {"added_tokens", "[{\"id\": 5, \"content\": \"<x>\"}]", "added_tokens[0]: '<x>' has id 5, which model.vocab already gives to"},
      {"added_tokens", "[{\"id\": 300, \"content\": \"ab\"}]", "added_tokens[0]: 'ab' has id 300, but model.vocab gives it id 257"},
      {"added_tokens", "[{\"id\": 300, \"content\": \"<x>\"}, {\"id\": 300, \"content\": \"<y>\"}]",
       "added_tokens[1]: '<y>' has id 300, which an earlier added token already gives to '<x>'"},
      {"added_tokens", "[{\"id\": 300, \"content\": \"<x>\"}, {\"id\": 300, \"content\": \"<x>\"}]", "added_tokens[1]: '<x>' is listed twice"},
      {"added_tokens", "[{\"id\": 300, \"content\": \"<x>\", \"lstrip\": true}]", "added_tokens[0] ('<x>'): lstrip true is not supported"},
      {"added_tokens", "[{\"id\": 300, \"content\": \"<x>\", \"rstrip\": true}]", "rstrip true is not supported"},
      {"added_tokens", "[{\"id\": 300, \"content\": \"<x>\", \"single_word\": true}]", "single_word true is not supported"},
      {"added_tokens", "[{\"id\": 300, \"content\": \"\"}]", "added_tokens[0].content '' is empty"},
      {"added_tokens", "[{\"id\": 16777216, \"content\": \"<x>\"}]", "added_tokens[0].id: expected an integer in [0, 2^24)"},
      {"added_tokens", "[{\"content\": \"<x>\"}]", "added_tokens[0].id: expected an integer in [0, 2^24), found missing"},
      {"added_tokens", "[7]", "added_tokens[0]: expected an object, found a number"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cJSON *root = tiny();
    set_path(root, cases[i].path, cases[i].value);
    expect_refusal(root, cases[i].want);
    cJSON_Delete(root);
  }

  /* A token longer than 4096 bytes, and one that is not UTF-8. */
  cJSON *root = tiny();
  char *longest = malloc(5001);
  memset(longest, 'q', 5000), longest[5000] = 0;
  cJSON_AddNumberToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "vocab"), longest, 300);
  expect_refusal(root, "is longer than 4096 bytes");
  free(longest);
  cJSON_Delete(root);
  root = tiny();
  cJSON_AddNumberToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "vocab"), "a\xFF", 300);
  expect_refusal(root, "model.vocab: token 'a\\xFF' (id 300) is not valid UTF-8");
  cJSON_Delete(root);

  /* What is fine: ByteLevel post-processing, a template adding nothing, no decoder. */
  root = tiny();
  set_path(root, "post_processor", "{\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"}, "
                                   "{\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": \"A\"}}]}]}");
  set_path(root, "decoder", "null");
  rt_tokenizer *t;
  oc_error e;
  if (parse_json(root, &t, &e) != 0) fail_msg("%s", e.msg);
  rt_tokenizer_free(t);
  cJSON_Delete(root);
}

static void test_file_errors(void **state) {
  (void)state;
  rt_tokenizer *t;
  oc_error e;
  assert_int_equal(rt_tokenizer_load("/nonexistent/tokenizer.json", &t, &e), -1);
  assert_null(t);
  assert_string_equal(e.msg, "/nonexistent/tokenizer.json: cannot open: No such file or directory");

  char dir[] = "/tmp/olmoc_tok_XXXXXX", path[64];
  assert_non_null(mkdtemp(dir));
  assert_int_equal(rt_tokenizer_load(dir, &t, &e), -1); /* a directory without tokenizer.json */
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  assert_non_null(strstr(e.msg, path));
  assert_non_null(strstr(e.msg, "cannot open"));

  FILE *f = fopen(path, "w");
  fputs("{\n  \"model\": {\"type\": \"BPE\",,\n}", f);
  fclose(f);
  assert_int_equal(rt_tokenizer_load(path, &t, &e), -1);
  if (!strstr(e.msg, path) || !strstr(e.msg, "malformed JSON at line 2, column"))
    fail_msg("%s", e.msg);
  f = fopen(path, "w");
  fputs("[1, 2, 3]", f);
  fclose(f);
  assert_int_equal(rt_tokenizer_load(path, &t, &e), -1);
  assert_non_null(strstr(e.msg, "expected a JSON object, found an array"));

  /* A model directory with a good tokenizer.json loads. */
  cJSON *root = tiny();
  char *json = cJSON_PrintUnformatted(root);
  f = fopen(path, "w");
  fputs(json, f);
  fclose(f);
  free(json);
  cJSON_Delete(root);
  if (rt_tokenizer_load(dir, &t, &e) != 0) fail_msg("%s", e.msg);
  assert_int_equal(rt_tokenizer_size(t), 262);
  rt_tokenizer_free(t);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest dolma2_tests[] = {
      cmocka_unit_test(test_golden_ids),
      cmocka_unit_test(test_golden_roundtrip),
      cmocka_unit_test(test_golden_streaming),
      cmocka_unit_test(test_stream_split_character),
      cmocka_unit_test(test_special_tokens),
      cmocka_unit_test(test_invalid_utf8),
      cmocka_unit_test(test_empty_and_long),
  };
  const struct CMUnitTest other_tests[] = {
      cmocka_unit_test(test_variants),
      cmocka_unit_test(test_merge_order),
      cmocka_unit_test(test_added_matching),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_file_errors),
  };
  int failed = cmocka_run_group_tests_name("tokenizer_dolma2", dolma2_tests, setup_dolma2, teardown_dolma2);
  return failed + cmocka_run_group_tests_name("tokenizer", other_tests, NULL, NULL);
}
