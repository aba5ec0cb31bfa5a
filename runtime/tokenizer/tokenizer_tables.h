/* Shared by the tokenizer files, whose calls run one way: tokenizer.c
 * (tokenizer.json -> rt_tokenizer) and tokenizer_pack.c (packed <-> loaded)
 * over bpe.c (merging, encode) over pretokenizer.c (added tokens and regex
 * splits) over hash_maps.c and utf8.c; detokenizer.c (decode) beside them. Invariant after a successful load: every id
 * in [0, size) is unused or has its text and bytes in the arena; every merge's
 * parts and result are vocabulary ids; byte_id[b] is the token of byte b. The
 * tokenizer is read-only from then on: calls may share it across threads. */
#ifndef OLMOC_RUNTIME_TOKENIZER_TABLES_H
#define OLMOC_RUNTIME_TOKENIZER_TABLES_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "olmoc/tokenizer.h"

#define TOK_MAX_IDS (1 << 24)  /* ids lie in [0, 2^24); so do vocab and merge counts */
#define TOK_MAX_TEXT 4096      /* bytes of one token's text (vocabulary key or added content) */
#define TOK_MAX_STEPS 16       /* regex steps of a pre-tokenizer */
#define TOK_MAX_NESTING 4      /* Sequences inside Sequences (pre-tokenizer, post-processor) */

/* ---- hash maps (open addressing, linear probing, power-of-two sizes) ---- */

/* 64-bit key -> two int32 values: merges ((left << 32 | right) -> rank, result)
 * and added-token tries ((node << 8 | byte) -> child, token id or -1). */
typedef struct tok_pairmap {
  struct tok_pair_slot {
    uint64_t key; /* UINT64_MAX: empty */
    int32_t a, b;
  } *slots;       /* [mask + 1] */
  size_t mask, count;
} tok_pairmap;

/* Token text -> id; a slot holds the id and the text's hash, the text itself
 * is the token's (t->tokens[id].text). */
typedef struct tok_strmap {
  struct tok_str_slot {
    uint32_t hash;
    int32_t id; /* -1: empty */
  } *slots;     /* [mask + 1] */
  size_t mask, count;
} tok_strmap;

static inline uint64_t tok_hash(const void *data, size_t n) {
  const unsigned char *p = data;
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
    p += 8, n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, p, n);
  h = (h ^ w) * 0x94d049bb133111ebull;
  return h ^ (h >> 29);
}

static inline uint64_t tok_mix64(uint64_t k) {
  k = (k ^ (k >> 33)) * 0xff51afd7ed558ccdull;
  k = (k ^ (k >> 33)) * 0xc4ceb9fe1a85ec53ull;
  return k ^ (k >> 33);
}

/* hash_maps.c */
int tok_pairmap_init(tok_pairmap *m, size_t expected);
void tok_pairmap_free(tok_pairmap *m);
/* Inserts or overwrites (a later merge of the same pair wins, as in the
 * reference); returns -1 when out of memory. */
int tok_pairmap_put(tok_pairmap *m, uint64_t key, int32_t a, int32_t b);

static inline const struct tok_pair_slot *tok_pairmap_get(const tok_pairmap *m, uint64_t key) {
  for (size_t i = tok_mix64(key) & m->mask;; i = (i + 1) & m->mask) {
    const struct tok_pair_slot *s = &m->slots[i];
    if (s->key == key) return s;
    if (s->key == UINT64_MAX) return NULL;
  }
}

/* ---- the tokenizer ---- */

typedef struct tok_token {
  uint32_t text;      /* offset in arena: the vocabulary key or added content, NUL-ended */
  uint32_t bytes;     /* offset in arena: what it decodes to (byte-level mapped back) */
  uint16_t text_len, bytes_len;
  uint8_t used : 1, in_vocab : 1, added : 1, special : 1;
  uint8_t self : 1;   /* BPE of its bytes gives this token alone */
} tok_token;

/* Which pieces of a split survive (Hugging Face's Split behaviours). */
typedef enum { TOK_KEEP_ALL, TOK_KEEP_GAPS, TOK_KEEP_MATCHES } tok_keep;

typedef struct tok_split {
  pcre2_code *re;
  tok_keep keep;
  char *pattern;    /* what re was compiled from, with */
  uint32_t options; /* these PCRE2 options (kept for packing) */
} tok_split;

/* Added tokens are matched with a byte trie, longest match at the leftmost
 * position; tries[0] holds the tokens matched first (normalized false),
 * tries[1] those matched in what remains (normalized true). */
typedef struct tok_trie {
  tok_pairmap edges;     /* (node << 8 | byte) -> (child node, token id ending there or -1) */
  int32_t nodes;         /* node 0 is the root */
  uint8_t first[32];     /* bitmap of the bytes that start a token */
  int32_t count;
} tok_trie;

struct rt_tokenizer {
  char *arena;           /* token texts and bytes, [arena_len] of arena_cap */
  size_t arena_len, arena_cap;
  tok_token *tokens;     /* [size] */
  int32_t size;          /* one more than the largest id */
  int32_t n_vocab;       /* model.vocab entries */
  tok_strmap by_text;    /* token text -> id (vocabulary and added tokens) */
  tok_pairmap merges;    /* (left << 32 | right) -> (rank, result) */
  int32_t byte_id[256];  /* the vocabulary token of each byte */
  char byte_char[256][3]; /* byte -> its byte-level character, UTF-8, NUL-ended */
  bool ignore_merges;    /* a piece found whole in the vocabulary is one token */
  struct tok_word {      /* bytes -> id of the short tokens whose BPE is themselves */
    int32_t id;
    uint8_t len;         /* 0: empty */
    char bytes[11];
  } *words;              /* [words_mask + 1] */
  size_t words_mask;
  tok_trie tries[2];
  tok_split steps[TOK_MAX_STEPS]; /* pre-tokenizer regexes, applied in order */
  int n_steps;
  pcre2_general_context *pcre; /* PCRE2 allocates through oc_malloc with it */
};

/* hash_maps.c: the id of a token by its text (vocabulary key or added
 * content), or -1; adding id under its text (the caller has checked that the
 * text is new and by_text has room). */
int32_t tok_find_text(const rt_tokenizer *t, const char *text, size_t n);
void tok_strmap_put(rt_tokenizer *t, int32_t id);

/* bpe.c: sets tokens[].self for every vocabulary token and fills words
 * (after the merges); -1 when out of memory. */
int tok_mark_self(rt_tokenizer *t);

/* pretokenizer.c: a PCRE2 context that allocates through oc_malloc (t->pcre). */
pcre2_general_context *tok_pcre_context(void);

/* pretokenizer.c: reading the "pre_tokenizer" object (msgs start at the key) */
struct cJSON;
int tok_parse_pretokenizer(rt_tokenizer *t, const struct cJSON *pt, oc_error *e);
void tok_free_pretokenizer(rt_tokenizer *t);
/* Compiles a step's final pattern (PCRE2 syntax, newline LF) and appends it;
 * where names it in messages. */
int tok_add_regex(rt_tokenizer *t, const char *pattern, uint32_t opts, tok_keep keep,
                  const char *where, oc_error *e);
int tok_trie_add(tok_trie *tr, const char *text, size_t n, int32_t id);

/* Calls piece() for every piece the pre-tokenizer steps make of s[0, n)
 * (valid UTF-8). md has room for one match. */
typedef int (*tok_piece_fn)(void *ctx, const unsigned char *s, size_t n);
int tok_pretokenize(const rt_tokenizer *t, const unsigned char *s, size_t n,
                    pcre2_match_data *md, tok_piece_fn piece, void *ctx, oc_error *e);
/* Splits s[0, n) on the added tokens of trie: text() for the runs between
 * them, token() for each token matched. */
typedef int (*tok_text_fn)(void *ctx, const unsigned char *s, size_t n);
typedef int (*tok_added_fn)(void *ctx, int32_t id);
int tok_split_added(const tok_trie *tr, const unsigned char *s, size_t n, tok_text_fn text,
                    tok_added_fn token, void *ctx);

#endif
