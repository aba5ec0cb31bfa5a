/* Binary records for the packed file's metadata sections (program, tokenizer,
 * generation defaults): a growable little-endian writer and a bounds-checked
 * reader. Invariant: a reader never reads past its end; the first short read
 * sets `bad`, after which every read returns zeros, so a decoder checks once
 * at the end (and before using any count to allocate). */
#ifndef OLMOC_BYTES_H
#define OLMOC_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_bytes {
  unsigned char *p;
  size_t n, cap;
  bool oom; /* a write failed for lack of memory; p holds what came before */
} rt_bytes;

void rt_bytes_put(rt_bytes *b, const void *data, size_t n);
void rt_bytes_u32(rt_bytes *b, uint32_t v);
void rt_bytes_i64(rt_bytes *b, int64_t v);
void rt_bytes_f32(rt_bytes *b, float v);
/* A u32 length, the bytes, then a NUL (so a reader can hand out the bytes as a C string). */
void rt_bytes_str(rt_bytes *b, const char *s);
void rt_bytes_free(rt_bytes *b);

typedef struct rt_reader {
  const unsigned char *p;
  size_t n, at;
  bool bad;
} rt_reader;

const void *rt_read(rt_reader *r, size_t n); /* NULL when fewer than n bytes remain */
uint32_t rt_read_u32(rt_reader *r);
int64_t rt_read_i64(rt_reader *r);
float rt_read_f32(rt_reader *r);
/* A string written by rt_bytes_str, pointing into the data; "" when bad. */
const char *rt_read_str(rt_reader *r);
/* A count of items of `size` bytes each that the rest of the data can hold,
 * or sets bad (so a damaged count never drives a huge allocation). */
uint32_t rt_read_count(rt_reader *r, size_t size);

#endif
