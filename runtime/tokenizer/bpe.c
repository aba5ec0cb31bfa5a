/* Encoding: bytes -> valid UTF-8 (each maximal ill-formed subpart becomes
 * U+FFFD, as a lossy UTF-8 decoder would give the reference) -> added tokens
 * -> pre-tokenizer pieces -> BPE merges on each piece. Merging is the
 * reference's: the adjacent pair with the lowest rank first, the leftmost on
 * ties, until no pair has a merge; short pieces use arrays, long ones a heap.
 * A piece that is a token its merges give back (most English words with their
 * space) is looked up instead, in a table made once when loading. */
#include "tokenizer_tables.h"
#include "olmoc/utf8.h"
#include "olmoc/alloc.h"

#include <stdlib.h>

#define SMALL_PIECE 64 /* bytes; longer pieces merge with the heap */

typedef struct encoder {
  const rt_tokenizer *t;
  int32_t *ids; /* [n] of cap */
  size_t n, cap;
  pcre2_match_data *md;
  oc_error *e;
} encoder;

static int reserve(encoder *c, size_t more) {
  if (c->n + more <= c->cap) return 0;
  size_t cap = c->cap * 2;
  while (cap < c->n + more) cap *= 2;
  int32_t *ids = oc_realloc(c->ids, cap * sizeof *ids);
  if (!ids) return oc_fail(c->e, "encode: out of memory");
  c->ids = ids, c->cap = cap;
  return 0;
}

static inline void pair_rank(const rt_tokenizer *t, int32_t a, int32_t b, int32_t *rank,
                             int32_t *result) {
  const struct tok_pair_slot *s = tok_pairmap_get(&t->merges, (uint64_t)a << 32 | (uint32_t)b);
  *rank = s ? s->a : INT32_MAX;
  *result = s ? s->b : -1;
}

/* ---- merging -------------------------------------------------------------------- */

/* n <= SMALL_PIECE bytes into sym; returns the number of tokens. */
static size_t bpe_small(const rt_tokenizer *t, const unsigned char *p, size_t n, int32_t *sym) {
  int32_t rank[SMALL_PIECE], result[SMALL_PIECE];
  for (size_t i = 0; i < n; i++) sym[i] = t->byte_id[p[i]];
  for (size_t i = 0; i + 1 < n; i++) pair_rank(t, sym[i], sym[i + 1], &rank[i], &result[i]);
  size_t m = n; /* symbols; pair i joins sym[i] and sym[i + 1] */
  while (m > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < m; i++)
      if (rank[i] < rank[best]) best = i;
    if (rank[best] == INT32_MAX) break;
    sym[best] = result[best];
    for (size_t i = best + 1; i + 1 < m; i++) sym[i] = sym[i + 1];
    for (size_t i = best + 1; i + 2 < m; i++) rank[i] = rank[i + 1], result[i] = result[i + 1];
    m--;
    if (best > 0) pair_rank(t, sym[best - 1], sym[best], &rank[best - 1], &result[best - 1]);
    if (best + 1 < m) pair_rank(t, sym[best], sym[best + 1], &rank[best], &result[best]);
  }
  return m;
}

typedef struct heap_entry {
  int32_t rank, pos; /* ordered by rank, then position */
} heap_entry;

static bool heap_less(heap_entry a, heap_entry b) {
  return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(heap_entry *h, size_t *n, heap_entry x) {
  size_t i = (*n)++;
  while (i > 0 && heap_less(x, h[(i - 1) / 2])) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = x;
}

static heap_entry heap_pop(heap_entry *h, size_t *n) {
  heap_entry top = h[0], last = h[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && heap_less(h[c + 1], h[c])) c++;
    if (!heap_less(h[c], last)) break;
    h[i] = h[c];
    i = c;
  }
  if (*n) h[i] = last;
  return top;
}

/* Any length: symbols in a linked list, candidate pairs in a min-heap (the
 * reference's own scheme); a popped pair is used only if it is still there. */
static int bpe_long(encoder *c, const unsigned char *p, size_t n) {
  const rt_tokenizer *t = c->t;
  int32_t *sym = oc_malloc(n * 3 * sizeof *sym);
  heap_entry *heap = oc_malloc(3 * n * sizeof *heap);
  if (!sym || !heap) {
    free(sym), free(heap);
    return oc_fail(c->e, "encode: out of memory");
  }
  int32_t *next = sym + n, *prev = sym + 2 * n;
  size_t hn = 0;
  int32_t rank, result;
  for (size_t i = 0; i < n; i++) {
    sym[i] = t->byte_id[p[i]];
    next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    prev[i] = (int32_t)i - 1;
  }
  for (size_t i = 0; i + 1 < n; i++) {
    pair_rank(t, sym[i], sym[i + 1], &rank, &result);
    if (result >= 0) heap_push(heap, &hn, (heap_entry){rank, (int32_t)i});
  }
  while (hn) {
    heap_entry top = heap_pop(heap, &hn);
    int32_t at = top.pos, q = next[at];
    if (sym[at] < 0 || q < 0) continue;
    pair_rank(t, sym[at], sym[q], &rank, &result);
    if (rank != top.rank) continue; /* stale: the pair has changed since */
    sym[at] = result;
    sym[q] = -1;
    next[at] = next[q];
    if (next[q] >= 0) prev[next[q]] = at;
    if (prev[at] >= 0) {
      pair_rank(t, sym[prev[at]], sym[at], &rank, &result);
      if (result >= 0) heap_push(heap, &hn, (heap_entry){rank, prev[at]});
    }
    if (next[at] >= 0) {
      pair_rank(t, sym[at], sym[next[at]], &rank, &result);
      if (result >= 0) heap_push(heap, &hn, (heap_entry){rank, at});
    }
  }
  int rc = 0;
  for (int32_t i = 0; i >= 0 && rc == 0; i = next[i])
    if ((rc = reserve(c, 1)) == 0) c->ids[c->n++] = sym[i];
  free(sym), free(heap);
  return rc;
}

/* ---- pieces ---------------------------------------------------------------------- */

/* The vocabulary token whose bytes are p[0, n), or -1. */
static int32_t vocab_token(const rt_tokenizer *t, const unsigned char *p, size_t n) {
  char text[TOK_MAX_TEXT];
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    const char *ch = t->byte_char[p[i]];
    size_t k = ch[1] ? 2 : 1;
    if (len + k > sizeof text) return -1;
    memcpy(text + len, ch, k);
    len += k;
  }
  int32_t id = tok_find_text(t, text, len);
  return id >= 0 && t->tokens[id].in_vocab ? id : -1;
}

#define WORD_MAX (int)sizeof(((struct tok_word *)0)->bytes)

int tok_mark_self(rt_tokenizer *t) {
  int32_t sym[SMALL_PIECE];
  size_t count = 0;
  for (int32_t id = 0; id < t->size; id++) {
    tok_token *tk = &t->tokens[id];
    const unsigned char *b = (const unsigned char *)t->arena + tk->bytes;
    tk->self = tk->in_vocab && tk->bytes_len <= SMALL_PIECE && tk->bytes_len > 0 &&
               bpe_small(t, b, tk->bytes_len, sym) == 1 && sym[0] == id;
    count += tk->self && tk->bytes_len <= WORD_MAX;
  }
  size_t cap = 64;
  while (cap < count + count / 2) cap *= 2;
  if (!(t->words = oc_calloc(cap, sizeof *t->words))) return -1;
  t->words_mask = cap - 1;
  for (int32_t id = 0; id < t->size; id++) {
    const tok_token *tk = &t->tokens[id];
    if (!tk->self || tk->bytes_len > WORD_MAX) continue;
    const char *b = t->arena + tk->bytes;
    size_t i = tok_hash(b, tk->bytes_len) & t->words_mask;
    while (t->words[i].len) i = (i + 1) & t->words_mask;
    t->words[i].id = id;
    t->words[i].len = (uint8_t)tk->bytes_len;
    memcpy(t->words[i].bytes, b, tk->bytes_len);
  }
  return 0;
}

/* A piece that is a whole token its BPE gives back: one lookup, no merging. */
static int32_t self_token(const rt_tokenizer *t, const unsigned char *p, size_t n) {
  if (n > WORD_MAX) {
    int32_t id = vocab_token(t, p, n);
    return id >= 0 && t->tokens[id].self ? id : -1;
  }
  for (size_t i = tok_hash(p, n) & t->words_mask;; i = (i + 1) & t->words_mask) {
    const struct tok_word *w = &t->words[i];
    if (!w->len) return -1;
    if (w->len == n && memcmp(w->bytes, p, n) == 0) return w->id;
  }
}

static int encode_piece(void *ctx, const unsigned char *p, size_t n) {
  encoder *c = ctx;
  const rt_tokenizer *t = c->t;
  if (reserve(c, n) != 0) return -1; /* a piece never has more tokens than bytes */
  int32_t *out = c->ids + c->n;
  if (n == 1) {
    out[0] = t->byte_id[p[0]];
    c->n++;
    return 0;
  }
  /* A whole token: one lookup instead of merging (which would give it back,
   * or with ignore_merges is not asked). */
  int32_t whole = t->ignore_merges ? vocab_token(t, p, n) : n <= SMALL_PIECE ? self_token(t, p, n) : -1;
  if (whole >= 0) {
    out[0] = whole;
    c->n++;
    return 0;
  }
  if (n > SMALL_PIECE) return bpe_long(c, p, n);
  c->n += bpe_small(t, p, n, out);
  return 0;
}

static int encode_text(void *ctx, const unsigned char *s, size_t n) {
  encoder *c = ctx;
  return tok_pretokenize(c->t, s, n, c->md, encode_piece, c, c->e);
}

static int encode_added(void *ctx, int32_t id) {
  encoder *c = ctx;
  if (reserve(c, 1) != 0) return -1;
  c->ids[c->n++] = id;
  return 0;
}

/* Runs between the first tries' tokens: split again on the second's. */
static int encode_unmatched(void *ctx, const unsigned char *s, size_t n) {
  encoder *c = ctx;
  return tok_split_added(&c->t->tries[1], s, n, encode_text, encode_added, c);
}

int rt_tokenizer_encode(const rt_tokenizer *t, const char *text, size_t len, int32_t **ids,
                        size_t *n_ids, oc_error *e) {
  *ids = NULL;
  *n_ids = 0;
  if (!text && len) return oc_fail(e, "encode: text is NULL");
  const unsigned char *s = (const unsigned char *)text;
  unsigned char *clean = NULL;
  if (oc_utf8_valid(s, len) != len) {
    if (len > SIZE_MAX / 3 || !(clean = oc_malloc(3 * len)))
      return oc_fail(e, "encode: out of memory");
    len = oc_utf8_lossy(s, len, clean);
    s = clean;
  }
  encoder c = {.t = t, .cap = len / 3 + 16, .e = e};
  c.ids = oc_malloc(c.cap * sizeof *c.ids);
  c.md = pcre2_match_data_create(1, t->pcre);
  int rc;
  if (!c.ids || !c.md)
    rc = oc_fail(e, "encode: out of memory");
  else
    rc = tok_split_added(&t->tries[0], s, len, encode_unmatched, encode_added, &c);
  pcre2_match_data_free(c.md);
  free(clean);
  if (rc != 0) {
    free(c.ids);
    return -1;
  }
  *ids = c.ids;
  *n_ids = c.n;
  return 0;
}
