/* UTF-8 (base/utf8.c), one decoder for the tokenizer, the safetensors
 * reader and the command line's text inputs: well-formedness (Unicode's
 * rules: no overlongs, surrogates or code points past U+10FFFF) and the
 * lossy reading. */
#ifndef OLMOC_UTF8_H
#define OLMOC_UTF8_H

#include <stdbool.h>
#include <stddef.h>

extern const unsigned char oc_utf8_replacement[3]; /* U+FFFD */

/* At s[0, n),
 * n > 0: returns the length (1-4) of the well-formed character there, or 0 and
 * sets *bad to the length of the maximal ill-formed subpart (one U+FFFD) and
 * *cut to whether it ended only because the input did. */
size_t oc_utf8_char(const unsigned char *s, size_t n, size_t *bad, bool *cut);
/* Offset of the first byte of the first ill-formed sequence, or n (as
 * Rust's Utf8Error::valid_up_to). */
size_t oc_utf8_valid(const unsigned char *s, size_t n);
/* Writes s with every maximal ill-formed subpart replaced by U+FFFD into out
 * (room for 3n bytes); returns its length. */
size_t oc_utf8_lossy(const unsigned char *s, size_t n, unsigned char *out);

#endif
