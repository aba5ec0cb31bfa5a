/* The tokenizer's two hash maps (open addressing, linear probing, power-of-two
 * sizes): the pair map of merges and added-token tries, and token text -> id.
 * Invariant: a map is never more than two thirds full, so every probe ends
 * at an empty slot; the pair map grows, the text map is sized up front. */
#include <stdlib.h>

#include "olmoc/alloc.h"
#include "tokenizer_tables.h"

int tok_pairmap_init(tok_pairmap *m, size_t expected) {
  size_t cap = 16;
  while (cap < expected + expected / 2 + 1) cap <<= 1;
  m->slots = oc_malloc(cap * sizeof *m->slots);
  if (!m->slots) return -1;
  for (size_t i = 0; i < cap; i++) m->slots[i].key = UINT64_MAX;
  m->mask = cap - 1;
  m->count = 0;
  return 0;
}

void tok_pairmap_free(tok_pairmap *m) {
  free(m->slots);
  m->slots = NULL;
}

static int pairmap_grow(tok_pairmap *m) {
  tok_pairmap bigger;
  if (tok_pairmap_init(&bigger, (m->mask + 1) * 2) != 0) return -1;
  for (size_t i = 0; i <= m->mask; i++)
    if (m->slots[i].key != UINT64_MAX)
      tok_pairmap_put(&bigger, m->slots[i].key, m->slots[i].a, m->slots[i].b);
  free(m->slots);
  *m = bigger;
  return 0;
}

int tok_pairmap_put(tok_pairmap *m, uint64_t key, int32_t a, int32_t b) {
  if ((m->count + 1) * 3 > (m->mask + 1) * 2 && pairmap_grow(m) != 0) return -1;
  size_t i = tok_mix64(key) & m->mask;
  while (m->slots[i].key != UINT64_MAX && m->slots[i].key != key) i = (i + 1) & m->mask;
  if (m->slots[i].key == UINT64_MAX) m->count++;
  m->slots[i] = (struct tok_pair_slot){key, a, b};
  return 0;
}

int32_t tok_find_text(const rt_tokenizer *t, const char *text, size_t n) {
  if (!t->by_text.slots) return -1;
  uint32_t h = (uint32_t)tok_hash(text, n);
  for (size_t i = h & t->by_text.mask;; i = (i + 1) & t->by_text.mask) {
    const struct tok_str_slot *s = &t->by_text.slots[i];
    if (s->id < 0) return -1;
    const tok_token *tk = &t->tokens[s->id];
    if (s->hash == h && tk->text_len == n && memcmp(t->arena + tk->text, text, n) == 0)
      return s->id;
  }
}

void tok_strmap_put(rt_tokenizer *t, int32_t id) {
  const tok_token *tk = &t->tokens[id];
  uint32_t h = (uint32_t)tok_hash(t->arena + tk->text, tk->text_len);
  size_t i = h & t->by_text.mask;
  while (t->by_text.slots[i].id >= 0) i = (i + 1) & t->by_text.mask;
  t->by_text.slots[i] = (struct tok_str_slot){h, id};
  t->by_text.count++;
}
