/* UTF-8 for the tokenizer (utf8.c): well-formedness and the lossy reading. */
#ifndef OLMOC_RUNTIME_TOKENIZER_UTF8_H
#define OLMOC_RUNTIME_TOKENIZER_UTF8_H

#include <stdbool.h>
#include <stddef.h>

extern const unsigned char tok_utf8_replacement[3]; /* U+FFFD */

/* At s[0, n),
 * n > 0: returns the length (1-4) of the well-formed character there, or 0 and
 * sets *bad to the length of the maximal ill-formed subpart (one U+FFFD) and
 * *cut to whether it ended only because the input did. */
size_t tok_utf8_char(const unsigned char *s, size_t n, size_t *bad, bool *cut);
/* Offset of the first ill-formed byte, or n. */
size_t tok_utf8_valid(const unsigned char *s, size_t n);
/* Writes s with every maximal ill-formed subpart replaced by U+FFFD into out
 * (room for 3n bytes); returns its length. */
size_t tok_utf8_lossy(const unsigned char *s, size_t n, unsigned char *out);

#endif
