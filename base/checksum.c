/* rt_checksum: FNV-1a 64 in 8 lanes over 64-bit words (olmoc/checksum.h has the
 * definition). Invariant: lanes only ever see whole 64-byte blocks; a partial
 * block waits in tail until it fills or the checksum ends. */
#include <string.h>

#include "olmoc/checksum.h"

#define FNV_BASIS 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

void rt_checksum_init(rt_checksum *c) {
  memset(c, 0, sizeof *c);
  for (int i = 0; i < 8; i++)
    c->lane[i] = FNV_BASIS;
}

static inline uint64_t word(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

/* The lanes written out as eight variables, so that they stay in registers
 * and the eight multiplies of a block run side by side. */
static void blocks(uint64_t lane[8], const unsigned char *p, size_t n_blocks) {
  uint64_t l0 = lane[0], l1 = lane[1], l2 = lane[2], l3 = lane[3];
  uint64_t l4 = lane[4], l5 = lane[5], l6 = lane[6], l7 = lane[7];
  for (size_t b = 0; b < n_blocks; b++, p += 64) {
    l0 = (l0 ^ word(p)) * FNV_PRIME, l1 = (l1 ^ word(p + 8)) * FNV_PRIME;
    l2 = (l2 ^ word(p + 16)) * FNV_PRIME, l3 = (l3 ^ word(p + 24)) * FNV_PRIME;
    l4 = (l4 ^ word(p + 32)) * FNV_PRIME, l5 = (l5 ^ word(p + 40)) * FNV_PRIME;
    l6 = (l6 ^ word(p + 48)) * FNV_PRIME, l7 = (l7 ^ word(p + 56)) * FNV_PRIME;
  }
  lane[0] = l0, lane[1] = l1, lane[2] = l2, lane[3] = l3;
  lane[4] = l4, lane[5] = l5, lane[6] = l6, lane[7] = l7;
}

void rt_checksum_update(rt_checksum *c, const void *data, size_t n) {
  const unsigned char *p = data;
  c->length += n;
  if (c->n_tail) {
    size_t take = 64 - c->n_tail < n ? 64 - c->n_tail : n;
    memcpy(c->tail + c->n_tail, p, take);
    c->n_tail += take, p += take, n -= take;
    if (c->n_tail < 64)
      return;
    blocks(c->lane, c->tail, 1);
    c->n_tail = 0;
  }
  blocks(c->lane, p, n / 64);
  memcpy(c->tail, p + n / 64 * 64, n % 64);
  c->n_tail = n % 64;
}

static uint64_t fnv_bytes(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * FNV_PRIME;
  return h;
}

uint64_t rt_checksum_final(const rt_checksum *c) {
  uint64_t h = fnv_bytes(FNV_BASIS, c->lane, sizeof c->lane);
  h = fnv_bytes(h, c->tail, c->n_tail);
  return fnv_bytes(h, &c->length, sizeof c->length);
}

uint64_t rt_checksum64(const void *data, size_t n) {
  rt_checksum c;
  rt_checksum_init(&c);
  rt_checksum_update(&c, data, n);
  return rt_checksum_final(&c);
}
