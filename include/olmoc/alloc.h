/* Every heap allocation of the library goes through here (cJSON's and PCRE2's
 * too, through their allocator hooks), so that a test can make the N-th
 * allocation from now fail and check that the failure becomes an error with a
 * message, never a crash or a leak. Memory from these functions is released
 * with plain free(). The hook costs one predictable branch per allocation.
 * LLVM allocates with its own operator new: those allocations are not hooked
 * (LLVM reports a failed one and aborts, which olmoc cannot change). */
#ifndef OLMOC_ALLOC_H
#define OLMOC_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

void *oc_malloc(size_t n);
void *oc_calloc(size_t count, size_t size);
void *oc_realloc(void *p, size_t n); /* on failure p is left as it was */
char *oc_strdup(const char *s);
char *oc_strndup(const char *s, size_t n);
/* align a power of two, a multiple of sizeof(void *). */
void *oc_aligned_alloc(size_t align, size_t n);
/* Memory for big buffers (weights, arenas): 64-byte aligned; from
 * 2 MiB on, 2 MiB aligned and madvise(MADV_HUGEPAGE)'d. Not zeroed: pages
 * appear as they are first written. Released with free(). */
void *oc_huge_alloc(size_t bytes);
/* The same for buffers written a little at a time far apart (KV caches): 4 KiB
 * pages, so that a first write makes 4 KiB of memory, not 2 MiB. */
void *oc_small_page_alloc(size_t bytes);

/* How many allocations have failed in this thread so far (injected or real):
 * lets a caller tell "out of memory" from other failures of a library that
 * returns NULL for both (cJSON's parser). */
unsigned long oc_alloc_failures(void);

/* ---- the test hook (global state, for tests only) ---- */

/* From now on, counts allocations; the n-th one fails, and only that one
 * (n >= 1). n <= 0 switches the hook off. */
void oc_alloc_fail_after(long n);
/* Allocations counted since oc_alloc_fail_after, the failed one included. */
long oc_alloc_count(void);
/* Whether the failure asked for has happened. */
bool oc_alloc_failed(void);

#endif
