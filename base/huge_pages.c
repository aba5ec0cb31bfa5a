/* oc_huge_alloc and oc_small_page_alloc: the allocators for big buffers
 * (weights read from a pack, activation arenas, probe buffers; KV caches).
 * Invariant: from 2 MiB on a buffer is 2 MiB aligned and advised to the
 * kernel as huge-page memory (or, from oc_small_page_alloc, as never
 * huge-page memory) over every whole huge page it spans; it comes from
 * oc_aligned_alloc, so the failure hook counts it and plain free() releases
 * it. */
#include <sys/mman.h>

#include "olmoc/alloc.h"

#define HUGE_PAGE (2u << 20)

static void *advised(size_t bytes, int advice) {
  size_t align = bytes >= HUGE_PAGE ? HUGE_PAGE : 64;
  size_t size = (bytes + 63) / 64 * 64;
  void *p = oc_aligned_alloc(align, size ? size : 64);
  if (!p)
    return NULL;
  if (bytes >= HUGE_PAGE)
    (void)madvise(p, size / HUGE_PAGE * HUGE_PAGE, advice); /* a hint: failure is fine */
  return p;
}

void *oc_huge_alloc(size_t bytes) { return advised(bytes, MADV_HUGEPAGE); }

/* The first write to a huge page zeroes all 2 MiB of it: in a head-major KV
 * cache the first position of every head is 2 MiB from the next, so the first
 * token would zero the whole cache (1 GiB for OLMo 2 1B: 2.3 s of the first
 * token here). Advised, not left alone, so that THP set to "always" keeps it
 * small. */
void *oc_small_page_alloc(size_t bytes) { return advised(bytes, MADV_NOHUGEPAGE); }
