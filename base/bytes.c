/* rt_bytes and rt_reader (bytes.h): growable writer, bounds-checked reader. */
#include <stdlib.h>
#include <string.h>

#include "olmoc/bytes.h"
#include "olmoc/alloc.h"

void rt_bytes_put(rt_bytes *b, const void *data, size_t n) {
  if (b->oom)
    return;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n)
      cap *= 2;
    unsigned char *p = oc_realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p, b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->n, data, n);
  b->n += n;
}

void rt_bytes_u32(rt_bytes *b, uint32_t v) { rt_bytes_put(b, &v, sizeof v); }
void rt_bytes_i64(rt_bytes *b, int64_t v) { rt_bytes_put(b, &v, sizeof v); }
void rt_bytes_f32(rt_bytes *b, float v) { rt_bytes_put(b, &v, sizeof v); }

void rt_bytes_str(rt_bytes *b, const char *s) {
  size_t n = s ? strlen(s) : 0;
  rt_bytes_u32(b, (uint32_t)n);
  rt_bytes_put(b, s, n);
  rt_bytes_put(b, "", 1);
}

void rt_bytes_free(rt_bytes *b) {
  free(b->p);
  *b = (rt_bytes){0};
}

const void *rt_read(rt_reader *r, size_t n) {
  if (r->bad || n > r->n - r->at) {
    r->bad = true;
    return NULL;
  }
  const void *p = r->p + r->at;
  r->at += n;
  return p;
}

#define READ_AS(name, type)                                                                        \
  type name(rt_reader *r) {                                                                        \
    type v = 0;                                                                                    \
    const void *p = rt_read(r, sizeof v);                                                          \
    if (p)                                                                                         \
      memcpy(&v, p, sizeof v);                                                                     \
    return v;                                                                                      \
  }
READ_AS(rt_read_u32, uint32_t)
READ_AS(rt_read_i64, int64_t)
READ_AS(rt_read_f32, float)

const char *rt_read_str(rt_reader *r) {
  uint32_t n = rt_read_u32(r);
  const char *s = rt_read(r, (size_t)n + 1);
  if (!s || s[n] != '\0' || memchr(s, '\0', n)) {
    r->bad = true;
    return "";
  }
  return s;
}

uint32_t rt_read_count(rt_reader *r, size_t size) {
  uint32_t n = rt_read_u32(r);
  if (r->bad || (size && n > (r->n - r->at) / size)) {
    r->bad = true;
    return 0;
  }
  return n;
}
