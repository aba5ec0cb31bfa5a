/* fuzz_tokenizer_dolma2: OLMo 2's real tokenizer (models/olmo2-tokenizer/tokenizer.json,
 * loaded once) on any bytes. Checks: encoding
 * succeeds with ids of the tokenizer; decoding them gives the input back
 * exactly when it is valid UTF-8, and otherwise valid UTF-8 text (the lossy
 * reading, U+FFFD for ill-formed bytes) that itself round-trips. */
#include "fuzz.h"

#include "olmoc/tokenizer.h"

#ifndef OLMOC_SOURCE_DIR
#define OLMOC_SOURCE_DIR "."
#endif
#define DOLMA2 OLMOC_SOURCE_DIR "/models/olmo2-tokenizer/tokenizer.json"

static const rt_tokenizer *dolma2(void) {
  static rt_tokenizer *t;
  if (!t) {
    oc_error e;
    FUZZ_CHECK(rt_tokenizer_load(DOLMA2, &t, &e) == 0, "%s", e.msg);
  }
  return t;
}

/* Whether s[0, n) is valid UTF-8: no overlongs, surrogates or code points
 * past U+10FFFF (written here independently of the library's check). */
static int valid_utf8(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned c = s[i], len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                         : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || n - i < len) return 0;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (unsigned k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += len;
  }
  return 1;
}

/* decode(encode(text)) as a malloc'ed string of *len bytes. */
static char *round_trip(const rt_tokenizer *t, const char *text, size_t n, size_t *len) {
  int32_t *ids = NULL;
  size_t n_ids = 0;
  oc_error e;
  FUZZ_CHECK(rt_tokenizer_encode(t, text, n, &ids, &n_ids, &e) == 0, "encode: %s", e.msg);
  /* at most a token a byte, after each ill-formed byte became 3 (U+FFFD) */
  FUZZ_CHECK(n_ids <= 3 * n, "%zu bytes gave %zu tokens", n, n_ids);
  for (size_t i = 0; i < n_ids; i++)
    FUZZ_CHECK(ids[i] >= 0 && ids[i] < rt_tokenizer_size(t), "id %d out of range", ids[i]);
  char *out = NULL;
  FUZZ_CHECK(rt_tokenizer_decode(t, ids, n_ids, &out, len, &e) == 0, "decode: %s", e.msg);
  free(ids);
  return out;
}

int fuzz_tokenizer_dolma2(const uint8_t *data, size_t size) {
  const rt_tokenizer *t = dolma2();
  const char *text = size ? (const char *)data : "";
  size_t len;
  char *out = round_trip(t, text, size, &len);
  if (valid_utf8(data, size)) {
    FUZZ_CHECK(len == size && memcmp(out, text, size) == 0,
               "decode(encode(s)) != s for %zu bytes of valid UTF-8", size);
  } else {
    FUZZ_CHECK(valid_utf8((const unsigned char *)out, len), "decode gave ill-formed UTF-8");
    size_t len2;
    char *again = round_trip(t, out, len, &len2);
    FUZZ_CHECK(len2 == len && memcmp(again, out, len) == 0, "the lossy text does not round-trip");
    free(again);
  }
  free(out);
  return 0;
}

FUZZ_MAIN(fuzz_tokenizer_dolma2)
