/* oc_huge_alloc: the one allocator for big buffers (weights read from a pack,
 * activation arenas, KV caches, probe buffers). Invariant: from 2 MiB on a
 * buffer is 2 MiB aligned and advised to the kernel as huge-page memory over
 * every whole huge page it spans; it comes from oc_aligned_alloc, so the
 * failure hook counts it and plain free() releases it. */
#include <sys/mman.h>

#include "olmoc/alloc.h"

#define HUGE_PAGE (2u << 20)

void *oc_huge_alloc(size_t bytes) {
  size_t align = bytes >= HUGE_PAGE ? HUGE_PAGE : 64;
  size_t size = (bytes + 63) / 64 * 64;
  void *p = oc_aligned_alloc(align, size ? size : 64);
  if (!p)
    return NULL;
  if (bytes >= HUGE_PAGE)
    (void)madvise(p, size / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE); /* a hint: failure is fine */
  return p;
}
