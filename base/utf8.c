/* UTF-8 as the reference's lossy decoders (Rust's from_utf8_lossy, the
 * WHATWG TextDecoder) read it, for encoding and decoding alike. Invariant:
 * every ill-formed input is split into maximal ill-formed subparts, each
 * standing for exactly one U+FFFD. In base/ so that every reader of text
 * (tokenizer, safetensors headers, the command line's inputs) shares it. */
#include <stdint.h>
#include <string.h>

#include "olmoc/utf8.h"

const unsigned char oc_utf8_replacement[3] = {0xEF, 0xBF, 0xBD}; /* U+FFFD */

size_t oc_utf8_char(const unsigned char *s, size_t n, size_t *bad, bool *cut) {
  unsigned c = s[0], lo = 0x80, hi = 0xBF;
  size_t need;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) need = 1;
  else if (c == 0xE0) need = 2, lo = 0xA0;       /* no overlongs */
  else if (c == 0xED) need = 2, hi = 0x9F;       /* no surrogates */
  else if (c >= 0xE1 && c <= 0xEF) need = 2;
  else if (c == 0xF0) need = 3, lo = 0x90;       /* no overlongs */
  else if (c == 0xF4) need = 3, hi = 0x8F;       /* nothing past U+10FFFF */
  else if (c >= 0xF1 && c <= 0xF3) need = 3;
  else {
    *bad = 1, *cut = false;
    return 0;
  }
  for (size_t i = 1; i <= need; i++) {
    if (i == n) {
      *bad = i, *cut = true;
      return 0;
    }
    if (s[i] < lo || s[i] > hi) {
      *bad = i, *cut = false;
      return 0;
    }
    lo = 0x80, hi = 0xBF;
  }
  return need + 1;
}

size_t oc_utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0, bad;
  bool cut;
  while (i < n) {
    if (i + 8 <= n) { /* skip ASCII eight bytes at a time */
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (!(w & 0x8080808080808080ull)) {
        i += 8;
        continue;
      }
    }
    size_t k = oc_utf8_char(s + i, n - i, &bad, &cut);
    if (!k) return i;
    i += k;
  }
  return n;
}

size_t oc_utf8_lossy(const unsigned char *s, size_t n, unsigned char *out) {
  size_t i = 0, o = 0, bad;
  bool cut;
  while (i < n) {
    size_t k = oc_utf8_char(s + i, n - i, &bad, &cut);
    if (k) {
      memcpy(out + o, s + i, k);
      o += k, i += k;
    } else {
      memcpy(out + o, oc_utf8_replacement, 3);
      o += 3, i += bad;
    }
  }
  return o;
}
