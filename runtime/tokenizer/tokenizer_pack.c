/* A loaded tokenizer as a packed section, and back, so a model binary starts
 * without tokenizer.json (and without a JSON parser): the arena, the token
 * table and the hash tables are written as they are in memory, the
 * pre-tokenizer's regexes as their PCRE2 patterns and options, compiled again
 * on load. The record (bytes.h, little-endian):
 *
 *   u32 size, n_vocab, ignore_merges; i32 byte_id[256]; byte_char[256][3]
 *   u32 arena_len, arena bytes
 *   u32 n, n x token (u32 text, u32 bytes, u32 text_len | bytes_len << 16, u32 flags)
 *   by_text, merges: u32 slots (0 or a power of two), u32 count, slots as in memory
 *   u32 word slots, words as in memory
 *   2 x trie: its edges (as merges), i32 nodes, first[32], i32 count
 *   u32 n_steps, n x (u32 keep, u32 options, str pattern)
 *
 * Invariant of unpacking: whatever the bytes, the result satisfies the
 * tokenizer's invariants (tokenizer_tables.h) for memory safety: every
 * offset inside the arena, every id in range, every hash table with an
 * empty slot (probing ends), or the section is refused. */
#include <stdlib.h>

#include "olmoc/bytes.h"
#include "olmoc/alloc.h"
#include "olmoc/aot.h"
#include "tokenizer_tables.h"

_Static_assert(sizeof(struct tok_pair_slot) == 16, "pair slots are written as they are");
_Static_assert(sizeof(struct tok_str_slot) == 8, "text slots are written as they are");
_Static_assert(sizeof(struct tok_word) == 16, "word slots are written as they are");

enum { F_USED = 1, F_IN_VOCAB = 2, F_ADDED = 4, F_SPECIAL = 8, F_SELF = 16 };

static void put_slots(rt_bytes *b, const void *slots, size_t mask, size_t count, size_t size) {
  size_t n = slots ? mask + 1 : 0;
  rt_bytes_u32(b, (uint32_t)n);
  rt_bytes_u32(b, (uint32_t)count);
  rt_bytes_put(b, slots, n * size);
}

int rt_tokenizer_pack(const rt_tokenizer *t, rt_pack_writer *w, oc_error *e) {
  rt_bytes b = {0};
  rt_bytes_u32(&b, (uint32_t)t->size);
  rt_bytes_u32(&b, (uint32_t)t->n_vocab);
  rt_bytes_u32(&b, t->ignore_merges);
  rt_bytes_put(&b, t->byte_id, sizeof t->byte_id);
  rt_bytes_put(&b, t->byte_char, sizeof t->byte_char);
  rt_bytes_u32(&b, (uint32_t)t->arena_len);
  rt_bytes_put(&b, t->arena, t->arena_len);
  rt_bytes_u32(&b, (uint32_t)t->size);
  for (int32_t i = 0; i < t->size; i++) {
    const tok_token *k = &t->tokens[i];
    rt_bytes_u32(&b, k->text);
    rt_bytes_u32(&b, k->bytes);
    rt_bytes_u32(&b, (uint32_t)k->text_len | (uint32_t)k->bytes_len << 16);
    rt_bytes_u32(&b, (k->used ? F_USED : 0) | (k->in_vocab ? F_IN_VOCAB : 0) | (k->added ? F_ADDED : 0) |
                         (k->special ? F_SPECIAL : 0) | (k->self ? F_SELF : 0));
  }
  put_slots(&b, t->by_text.slots, t->by_text.mask, t->by_text.count, sizeof *t->by_text.slots);
  put_slots(&b, t->merges.slots, t->merges.mask, t->merges.count, sizeof *t->merges.slots);
  put_slots(&b, t->words, t->words_mask, 0, sizeof *t->words);
  for (int k = 0; k < 2; k++) {
    const tok_trie *tr = &t->tries[k];
    put_slots(&b, tr->edges.slots, tr->edges.mask, tr->edges.count, sizeof *tr->edges.slots);
    rt_bytes_u32(&b, (uint32_t)tr->nodes);
    rt_bytes_put(&b, tr->first, sizeof tr->first);
    rt_bytes_u32(&b, (uint32_t)tr->count);
  }
  rt_bytes_u32(&b, (uint32_t)t->n_steps);
  for (int i = 0; i < t->n_steps; i++) {
    rt_bytes_u32(&b, (uint32_t)t->steps[i].keep);
    rt_bytes_u32(&b, t->steps[i].options);
    rt_bytes_str(&b, t->steps[i].pattern);
  }
  int rc = b.oom ? oc_fail(e, "out of memory packing the tokenizer")
                 : rt_pack_add(w, RT_PACK_TOKENIZER, "tokenizer", b.p, b.n, NULL, e);
  rt_bytes_free(&b);
  return rc;
}

/* ---- unpacking ---- */

/* A copy of a hash table's slots; *mask and *count set. NULL with n == 0 is
 * a table that was never made; otherwise n is a power of two above count.
 * Out of memory sets *oom (and bad, to stop reading). */
static void *get_slots(rt_reader *r, size_t size, size_t *mask, size_t *count, bool *oom) {
  uint32_t n = rt_read_u32(r), c = rt_read_u32(r);
  const void *src = rt_read(r, (size_t)n * size);
  if (!src || (n & (n - 1)) || (n && c >= n)) {
    r->bad = true;
    return NULL;
  }
  *mask = n ? n - 1 : 0;
  *count = c;
  void *copy = n ? oc_malloc((size_t)n * size) : NULL;
  if (n && !copy)
    r->bad = *oom = true;
  else if (n)
    memcpy(copy, src, (size_t)n * size);
  return copy;
}

static bool id_ok(const rt_tokenizer *t, int64_t id) { return id >= 0 && id < t->size; }

/* A pair table whose probing ends (an empty slot) and whose values pass ok(). */
static bool pairs_ok(const tok_pairmap *m, const rt_tokenizer *t, int32_t nodes) {
  size_t empty = 0;
  for (size_t i = 0; m->slots && i <= m->mask; i++) {
    const struct tok_pair_slot *s = &m->slots[i];
    if (s->key == UINT64_MAX) {
      empty++;
      continue;
    }
    bool ok = nodes ? s->a >= 0 && s->a < nodes && (s->b == -1 || id_ok(t, s->b))
                    : id_ok(t, (int64_t)(s->key >> 32)) && id_ok(t, (int64_t)(s->key & 0xffffffffu)) &&
                          id_ok(t, s->b);
    if (!ok)
      return false;
  }
  return !m->slots || empty > 0;
}

static bool tables_ok(const rt_tokenizer *t) {
  for (int b = 0; b < 256; b++)
    if (!id_ok(t, t->byte_id[b]) || t->byte_char[b][2] != '\0')
      return false;
  for (int32_t i = 0; i < t->size; i++) {
    const tok_token *k = &t->tokens[i];
    if (k->used && ((size_t)k->text + k->text_len >= t->arena_len ||
                    (size_t)k->bytes + k->bytes_len >= t->arena_len))
      return false;
  }
  size_t empty = 0;
  for (size_t i = 0; t->by_text.slots && i <= t->by_text.mask; i++) {
    int32_t id = t->by_text.slots[i].id;
    empty += id < 0;
    if (id < -1 || (id >= 0 && (!id_ok(t, id) || !t->tokens[id].used)))
      return false;
  }
  if (t->by_text.slots && !empty)
    return false;
  empty = 0;
  for (size_t i = 0; t->words && i <= t->words_mask; i++) {
    const struct tok_word *w = &t->words[i];
    empty += !w->len;
    if (w->len > sizeof w->bytes || (w->len && !id_ok(t, w->id)))
      return false;
  }
  if ((t->words && !empty) || !pairs_ok(&t->merges, t, 0))
    return false;
  for (int k = 0; k < 2; k++)
    if (t->tries[k].nodes < 1 || !pairs_ok(&t->tries[k].edges, t, t->tries[k].nodes))
      return false;
  return true;
}

static void get_tokens(rt_reader *r, rt_tokenizer *t, bool *oom) {
  uint32_t n = rt_read_count(r, 16);
  if (n != (uint32_t)t->size) {
    r->bad = true;
    return;
  }
  if (!(t->tokens = oc_calloc((size_t)n + 1, sizeof *t->tokens))) {
    r->bad = *oom = true;
    return;
  }
  for (uint32_t i = 0; i < n; i++) {
    tok_token *k = &t->tokens[i];
    k->text = rt_read_u32(r);
    k->bytes = rt_read_u32(r);
    uint32_t lens = rt_read_u32(r), flags = rt_read_u32(r);
    k->text_len = (uint16_t)lens, k->bytes_len = (uint16_t)(lens >> 16);
    k->used = !!(flags & F_USED), k->in_vocab = !!(flags & F_IN_VOCAB), k->added = !!(flags & F_ADDED);
    k->special = !!(flags & F_SPECIAL), k->self = !!(flags & F_SELF);
  }
}

static int get_steps(rt_reader *r, rt_tokenizer *t, const char *source, oc_error *e) {
  uint32_t n = rt_read_u32(r);
  if (n > TOK_MAX_STEPS)
    r->bad = true;
  for (uint32_t i = 0; !r->bad && i < n; i++) {
    uint32_t keep = rt_read_u32(r), options = rt_read_u32(r);
    const char *pattern = rt_read_str(r);
    if (r->bad || keep > TOK_KEEP_MATCHES)
      break;
    if (tok_add_regex(t, pattern, options, (tok_keep)keep, source, e))
      return -1;
  }
  return 0;
}

int rt_tokenizer_unpack(const void *data, size_t n, const char *source, rt_tokenizer **out,
                        oc_error *e) {
  *out = NULL;
  rt_reader r = {data, n, 0, false};
  rt_tokenizer *t = oc_calloc(1, sizeof *t);
  if (!t || !(t->pcre = tok_pcre_context())) {
    free(t);
    return oc_fail(e, "%s: out of memory for the tokenizer", source);
  }
  t->size = (int32_t)rt_read_u32(&r);
  t->n_vocab = (int32_t)rt_read_u32(&r);
  t->ignore_merges = rt_read_u32(&r) != 0;
  const void *p = rt_read(&r, sizeof t->byte_id + sizeof t->byte_char);
  if (p) {
    memcpy(t->byte_id, p, sizeof t->byte_id);
    memcpy(t->byte_char, (const char *)p + sizeof t->byte_id, sizeof t->byte_char);
  }
  if (t->size < 1 || t->size > TOK_MAX_IDS || t->n_vocab < 0 || t->n_vocab > t->size)
    r.bad = true;
  uint32_t arena = rt_read_u32(&r);
  const void *bytes = rt_read(&r, arena);
  bool oom = false;
  if (bytes && (t->arena = oc_malloc((size_t)arena + 1))) {
    memcpy(t->arena, bytes, arena);
    t->arena_len = t->arena_cap = arena;
  } else {
    r.bad = true, oom = bytes != NULL;
  }
  if (!r.bad)
    get_tokens(&r, t, &oom);
  size_t unused;
  t->by_text.slots = r.bad ? NULL : get_slots(&r, sizeof *t->by_text.slots, &t->by_text.mask, &t->by_text.count, &oom);
  t->merges.slots = r.bad ? NULL : get_slots(&r, sizeof *t->merges.slots, &t->merges.mask, &t->merges.count, &oom);
  t->words = r.bad ? NULL : get_slots(&r, sizeof *t->words, &t->words_mask, &unused, &oom);
  for (int k = 0; k < 2 && !r.bad; k++) {
    tok_trie *tr = &t->tries[k];
    tr->edges.slots = get_slots(&r, sizeof *tr->edges.slots, &tr->edges.mask, &tr->edges.count, &oom);
    tr->nodes = (int32_t)rt_read_u32(&r);
    const void *first = rt_read(&r, sizeof tr->first);
    if (first)
      memcpy(tr->first, first, sizeof tr->first);
    tr->count = (int32_t)rt_read_u32(&r);
  }
  if (!r.bad && !tables_ok(t)) /* malformed too, and said so (it once failed without a message) */
    r.bad = true;
  int rc = r.bad ? -1 : get_steps(&r, t, source, e);
  if (!rc && (r.bad || r.at != r.n))
    rc = -1, r.bad = true;
  if (rc) {
    rt_tokenizer_free(t);
    if (oom)
      return oc_fail(e, "%s: out of memory for the tokenizer", source);
    return r.bad ? oc_fail(e, "%s: the tokenizer section is malformed: the file is damaged", source) : -1;
  }
  *out = t;
  return 0;
}
