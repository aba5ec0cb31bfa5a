/* The allocation layer (alloc.h) and its failure hook. Invariant: with the
 * hook off (left == 0) an allocation is the libc call plus one load and
 * branch; armed, exactly the left-th allocation from arming fails. cJSON is
 * pointed at these functions before main, so its nodes count too. */
#include "olmoc/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef OLMOC_NO_CJSON
#include <cjson/cJSON.h>
#endif

static atomic_long left;  /* allocations until the one that fails; 0: hook off */
static atomic_long made;  /* allocations since arming */
static atomic_bool fired; /* the armed failure happened */
static _Thread_local unsigned long failures;

static bool inject(void) {
  if (atomic_load_explicit(&left, memory_order_relaxed) == 0)
    return false;
  long l = atomic_load(&left);
  while (l > 0 && !atomic_compare_exchange_weak(&left, &l, l - 1))
    ;
  if (l <= 0)
    return false;
  atomic_fetch_add(&made, 1);
  if (l > 1)
    return false;
  atomic_store(&fired, true);
  return true;
}

static void *counted(void *p) {
  if (!p)
    failures++;
  return p;
}

void *oc_malloc(size_t n) { return counted(inject() ? NULL : malloc(n)); }
void *oc_calloc(size_t count, size_t size) { return counted(inject() ? NULL : calloc(count, size)); }
/* n = 0 asks for one byte: glibc's realloc(p, 0) frees p and returns NULL,
 * which a caller would take for a failure with p still live. */
void *oc_realloc(void *p, size_t n) { return counted(inject() ? NULL : realloc(p, n ? n : 1)); }
char *oc_strdup(const char *s) { return counted(inject() ? NULL : strdup(s)); }
char *oc_strndup(const char *s, size_t n) { return counted(inject() ? NULL : strndup(s, n)); }

void *oc_aligned_alloc(size_t align, size_t n) {
  void *p = NULL;
  if (!inject() && posix_memalign(&p, align, n ? n : 1) != 0)
    p = NULL;
  return counted(p);
}

unsigned long oc_alloc_failures(void) { return failures; }

void oc_alloc_fail_after(long n) {
  atomic_store(&left, 0);
  atomic_store(&made, 0);
  atomic_store(&fired, false);
  if (n > 0)
    atomic_store(&left, n);
}

long oc_alloc_count(void) { return atomic_load(&made); }
bool oc_alloc_failed(void) { return atomic_load(&fired); }

/* cJSON keeps its allocator in a global of its own: set it once, before any
 * thread could parse. (Its parser then copies with malloc and free instead of
 * realloc, which is all the hooks change.) Compiled model binaries, which
 * read no JSON and link no cJSON, build this file with OLMOC_NO_CJSON. */
#ifndef OLMOC_NO_CJSON
__attribute__((constructor)) static void hook_cjson(void) {
  cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = oc_malloc, .free_fn = free});
}
#endif
