/* Hugging Face byte-level BPE tokenizers (tokenizer.json): the kind OLMo 2,
 * GPT-2 and cl100k-style models use. Anything else (WordPiece, Unigram,
 * normalizers, other pre-tokenizers) is refused when loading, never
 * mis-tokenized silently. */
#ifndef OLMOC_TOKENIZER_H
#define OLMOC_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "olmoc/error.h"

typedef struct rt_tokenizer rt_tokenizer;

/* path: a model directory (its tokenizer.json) or the file itself. */
int rt_tokenizer_load(const char *path, rt_tokenizer **out, oc_error *e);
/* json: the file's text, len bytes; source names it in messages. */
int rt_tokenizer_parse(const char *json, size_t len, const char *source, rt_tokenizer **out,
                       oc_error *e);
void rt_tokenizer_free(rt_tokenizer *t);

/* One more than the largest token id (vocabulary and added tokens). */
int32_t rt_tokenizer_size(const rt_tokenizer *t);

/* Encodes len bytes of text (any bytes: ill-formed UTF-8 is first read as a
 * lossy decoder reads it, each maximal ill-formed subpart as one U+FFFD, which
 * is the text the reference gets from those bytes). Added tokens are matched
 * whole first, as the reference does. *ids is malloc'ed (caller frees), *n_ids
 * its length. */
int rt_tokenizer_encode(const rt_tokenizer *t, const char *text, size_t len, int32_t **ids,
                        size_t *n_ids, oc_error *e);

/* The bytes token `id` stands for (byte-level decoded; an added token's own
 * text), or NULL for an unknown id. */
const char *rt_tokenizer_bytes(const rt_tokenizer *t, int32_t id, size_t *len);

/* The id of a token given by its text (an added token such as
 * "<|endoftext|>", or a vocabulary entry in byte-level form), or -1. */
int32_t rt_tokenizer_find(const rt_tokenizer *t, const char *token);

/* Whether id is an added token marked special (skipped by decode when asked). */
bool rt_tokenizer_is_special(const rt_tokenizer *t, int32_t id);

/* Streaming decoder: feed ids one at a time and get text that is always whole
 * UTF-8; a partial sequence is held back until the bytes that complete it
 * arrive (or flushed at the end as one U+FFFD, like the reference's lossy
 * decoding). Unknown ids add nothing. */
typedef struct rt_detokenizer {
  const rt_tokenizer *t;
  unsigned char pending[8];
  size_t n_pending;
} rt_detokenizer;

void rt_detokenizer_init(rt_detokenizer *d, const rt_tokenizer *t);
/* Appends the text now complete to out (capacity cap; needs at most 3 x the
 * token's byte length + 3, as a stray byte becomes the 3-byte U+FFFD) and
 * returns its length. */
size_t rt_detokenizer_push(rt_detokenizer *d, int32_t id, char *out, size_t cap);
size_t rt_detokenizer_flush(rt_detokenizer *d, char *out, size_t cap);

/* Whole-sequence decode into a malloc'ed NUL-terminated string (lossy like
 * the reference: ill-formed UTF-8 becomes U+FFFD). An unknown id is an error. */
int rt_tokenizer_decode(const rt_tokenizer *t, const int32_t *ids, size_t n, char **text,
                        size_t *len, oc_error *e);

#endif
