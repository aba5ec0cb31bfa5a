/* fuzz_tokenizer: the tokenizer.json loader and encoding (runtime/tokenizer/),
 * pretokenizer.c, bpe.c, detokenizer.c). The input is a tokenizer.json, a NUL
 * byte, then any bytes of text to encode. Checks: a refused file has a
 * message; with an accepted one, encoding succeeds, every id is a token of
 * the tokenizer, and decoding the ids whole gives the same text as decoding
 * them through the streaming detokenizer. */
#include "fuzz.h"

#include "olmoc/tokenizer.h"

/* Decodes ids one at a time through rt_detokenizer; malloc'ed, *len bytes. */
static char *decode_streamed(const rt_tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
  size_t cap = 64, o = 0;
  char *out = malloc(cap);
  rt_detokenizer d;
  rt_detokenizer_init(&d, t);
  for (size_t i = 0; out && i <= n; i++) {
    size_t blen = 0;
    if (i < n) rt_tokenizer_bytes(t, ids[i], &blen);
    size_t need = o + 3 * blen + 3; /* the bound rt_detokenizer_push asks for */
    if (need > cap) {
      while (cap < need) cap *= 2;
      char *more = realloc(out, cap);
      if (!more) free(out);
      out = more;
      if (!out) break;
    }
    o += i < n ? rt_detokenizer_push(&d, ids[i], out + o, cap - o)
               : rt_detokenizer_flush(&d, out + o, cap - o);
  }
  *len = o;
  return out;
}

int fuzz_tokenizer(const uint8_t *data, size_t size) {
  const uint8_t *nul = size ? memchr(data, 0, size) : NULL;
  size_t json_len = nul ? (size_t)(nul - data) : size;
  const char *text = nul ? (const char *)nul + 1 : "";
  size_t text_len = nul ? size - json_len - 1 : 0;

  rt_tokenizer *t = NULL;
  oc_error e = {{0}};
  if (rt_tokenizer_parse((const char *)data, json_len, "tokenizer.json", &t, &e) != 0) {
    FUZZ_CHECK(e.msg[0], "rt_tokenizer_parse failed without a message");
    return 0;
  }

  int32_t *ids = NULL;
  size_t n = 0;
  if (rt_tokenizer_encode(t, text, text_len, &ids, &n, &e) != 0)
    FUZZ_CHECK(0, "encoding %zu bytes failed: %s", text_len, e.msg);
  for (size_t i = 0; i < n; i++)
    FUZZ_CHECK(rt_tokenizer_bytes(t, ids[i], NULL), "id %d (token %zu) is not in the tokenizer",
               ids[i], i);

  char *whole = NULL, *streamed;
  size_t whole_len = 0, streamed_len = 0;
  if (rt_tokenizer_decode(t, ids, n, &whole, &whole_len, &e) != 0)
    FUZZ_CHECK(0, "decoding the ids encode gave failed: %s", e.msg);
  streamed = decode_streamed(t, ids, n, &streamed_len);
  if (streamed)
    FUZZ_CHECK(streamed_len == whole_len && memcmp(streamed, whole, whole_len) == 0,
               "streamed decode (%zu bytes) differs from whole decode (%zu bytes)", streamed_len,
               whole_len);
  free(streamed);
  free(whole);
  free(ids);
  rt_tokenizer_free(t);
  return 0;
}

FUZZ_MAIN(fuzz_tokenizer)
