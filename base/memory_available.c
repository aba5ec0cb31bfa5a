/* How much memory the machine can give this process now: MemAvailable, the
 * kernel's own estimate of free memory plus the page cache and reclaimable
 * slabs it could drop without swapping. Loaders compare it with what they
 * are about to place in anonymous memory, which only swap could evict. */
#include <stdio.h>

#include "olmoc/machine.h"

uint64_t rt_memory_available(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  char line[256];
  unsigned long long kb = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
      break;
  if (f)
    fclose(f);
  return (uint64_t)kb * 1024;
}
