#ifndef OLMOC_CHECKSUM_H
#define OLMOC_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* The checksum of packed files: FNV-1a 64 in 8 lanes.
 * Lane i takes the little-endian 64-bit words i, i+8, i+16, ... of each
 * 64-byte block (lane = (lane ^ word) * FNV prime, from the FNV offset
 * basis); the result is FNV-1a over the lanes' bytes, the bytes of the last
 * partial block and the length as 8 bytes. Eight independent multiply chains
 * run at memory speed, where one byte at a time would not. */
typedef struct rt_checksum {
  uint64_t lane[8];
  unsigned char tail[64];
  size_t n_tail;
  uint64_t length;
} rt_checksum;

void rt_checksum_init(rt_checksum *c);
void rt_checksum_update(rt_checksum *c, const void *data, size_t n);
uint64_t rt_checksum_final(const rt_checksum *c);
uint64_t rt_checksum64(const void *data, size_t n);

#endif
