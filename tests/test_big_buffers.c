/* The big-buffer allocators: alignment, and what a first write costs. A KV
 * cache written one position per head, 2 MiB apart, must make only the pages
 * it writes (the first token of a 1B model once zeroed its whole 1 GiB cache). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "olmoc/alloc.h"

#define MIB (1u << 20)

/* Resident kilobytes of the mappings of this process that overlap [p, p + n),
 * from /proc/self/smaps; -1 when it cannot be read. */
static long resident_kib(const void *p, size_t n) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f)
    return -1;
  uintptr_t lo = (uintptr_t)p, hi = lo + n, start = 0, end = 0;
  long total = 0, kib;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    unsigned long a, b;
    if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      start = a;
      end = b;
    } else if (sscanf(line, "Rss: %ld kB", &kib) == 1 && start < hi && end > lo) {
      total += kib;
    }
  }
  fclose(f);
  return total;
}

static void test_alignment(void **state) {
  (void)state;
  unsigned char *small = oc_small_page_alloc(100), *big = oc_small_page_alloc(3 * MIB + 5);
  unsigned char *huge = oc_huge_alloc(3 * MIB + 5);
  assert_non_null(small);
  assert_non_null(big);
  assert_non_null(huge);
  assert_int_equal((uintptr_t)small % 64, 0);
  assert_int_equal((uintptr_t)big % (2 * MIB), 0);
  assert_int_equal((uintptr_t)huge % (2 * MIB), 0);
  memset(big, 1, 3 * MIB + 5);
  memset(huge, 2, 3 * MIB + 5);
  assert_int_equal(big[3 * MIB + 4] + huge[3 * MIB + 4], 3);
  free(small);
  free(big);
  free(huge);
}

/* One byte every 2 MiB of 64 MiB, as the first token writes a head-major
 * cache: 32 small pages, not 32 huge ones. */
static void test_small_pages_stay_small(void **state) {
  (void)state;
  size_t bytes = 64 * MIB;
  unsigned char *cache = oc_small_page_alloc(bytes);
  assert_non_null(cache);
  long before = resident_kib(cache, bytes);
  if (before < 0) {
    free(cache);
    skip();
  }
  for (size_t at = 0; at < bytes; at += 2 * MIB)
    cache[at] = 1;
  long after = resident_kib(cache, bytes);
  free(cache);
  print_message("64 MiB written every 2 MiB: %ld KiB resident more\n", after - before);
  assert_true(after - before < 4 * 1024);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alignment),
      cmocka_unit_test(test_small_pages_stay_small),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
