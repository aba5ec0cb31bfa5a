/* Decoding ids to text, whole or streamed, with the UTF-8 rules of utf8.c:
 * each maximal ill-formed subpart becomes one U+FFFD. Invariant of
 * rt_detokenizer: pending holds at most 3 bytes, always a proper prefix of a
 * well-formed character. */
#include "tokenizer_tables.h"
#include "olmoc/utf8.h"
#include "olmoc/alloc.h"

#include <assert.h>
#include <stdlib.h>

/* ---- streaming ------------------------------------------------------------------- */

void rt_detokenizer_init(rt_detokenizer *d, const rt_tokenizer *t) {
  memset(d, 0, sizeof *d);
  d->t = t;
}

static size_t put(char *out, size_t cap, size_t o, const void *src, size_t n) {
  assert(o + n <= cap && "rt_detokenizer: out is smaller than the contract asks");
  if (o + n > cap) return o; /* never write past cap, even without assertions */
  memcpy(out + o, src, n);
  return o + n;
}

/* Feeds n bytes: whole characters and U+FFFDs go to out, an unfinished
 * character stays in pending. */
static size_t feed(rt_detokenizer *d, const unsigned char *b, size_t n, char *out, size_t cap) {
  size_t o = 0, i = 0, bad;
  bool cut;
  while (d->n_pending && i < n) { /* finish (or give up on) the pending character */
    d->pending[d->n_pending++] = b[i++];
    size_t k = oc_utf8_char(d->pending, d->n_pending, &bad, &cut);
    if (k) {
      o = put(out, cap, o, d->pending, k);
      d->n_pending = 0;
    } else if (!cut) {
      o = put(out, cap, o, oc_utf8_replacement, 3);
      d->n_pending = 0;
      i--; /* the byte that broke it starts afresh */
    }
  }
  while (i < n) {
    size_t k = oc_utf8_char(b + i, n - i, &bad, &cut);
    if (k) {
      o = put(out, cap, o, b + i, k);
      i += k;
    } else if (cut) {
      memcpy(d->pending, b + i, n - i);
      d->n_pending = n - i;
      i = n;
    } else {
      o = put(out, cap, o, oc_utf8_replacement, 3);
      i += bad;
    }
  }
  return o;
}

size_t rt_detokenizer_push(rt_detokenizer *d, int32_t id, char *out, size_t cap) {
  size_t len;
  const char *bytes = rt_tokenizer_bytes(d->t, id, &len);
  return bytes ? feed(d, (const unsigned char *)bytes, len, out, cap) : 0;
}

size_t rt_detokenizer_flush(rt_detokenizer *d, char *out, size_t cap) {
  if (!d->n_pending) return 0;
  d->n_pending = 0;
  return put(out, cap, 0, oc_utf8_replacement, 3);
}

/* ---- whole sequences -------------------------------------------------------------- */

int rt_tokenizer_decode(const rt_tokenizer *t, const int32_t *ids, size_t n, char **text,
                        size_t *len, oc_error *e) {
  *text = NULL;
  if (len) *len = 0;
  size_t total = 0, blen;
  for (size_t i = 0; i < n; i++) {
    if (!rt_tokenizer_bytes(t, ids[i], &blen))
      return oc_fail(e, "decode: token %zu: id %d is not in the tokenizer (ids 0 to %d)", i,
                     ids[i], t->size - 1);
    total += blen;
  }
  char *raw = oc_malloc(total + 1);
  if (!raw) return oc_fail(e, "decode: out of memory");
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    const char *b = rt_tokenizer_bytes(t, ids[i], &blen);
    memcpy(raw + o, b, blen);
    o += blen;
  }
  raw[o] = 0;
  if (oc_utf8_valid((const unsigned char *)raw, total) != total) { /* the rare case */
    char *out = oc_malloc(3 * total + 1);
    if (!out) {
      free(raw);
      return oc_fail(e, "decode: out of memory");
    }
    o = oc_utf8_lossy((const unsigned char *)raw, total, (unsigned char *)out);
    out[o] = 0;
    free(raw);
    raw = out;
  }
  *text = raw;
  if (len) *len = o;
  return 0;
}
