/* How much more address space and data this process may take under its
 * resource limits (RLIMIT_AS: `ulimit -v`; RLIMIT_DATA: `ulimit -d`), from
 * the limits less what /proc/self/status says is in use. A library that
 * aborts when an allocation fails (LLVM does: it cannot be hooked) is only
 * called when this leaves it the room it needs. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "olmoc/machine.h"

/* VmSize and VmData of this process in bytes; false if unreadable. */
static bool in_use(uint64_t *size, uint64_t *data) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  int found = 0;
  while (f && found < 2 && fgets(line, sizeof line, f)) {
    unsigned long long kib;
    if (sscanf(line, "VmSize: %llu kB", &kib) == 1)
      *size = kib << 10, found++;
    else if (sscanf(line, "VmData: %llu kB", &kib) == 1)
      *data = kib << 10, found++;
  }
  if (f)
    fclose(f);
  return found == 2;
}

/* limit less used, or UINT64_MAX for no limit. */
static uint64_t room_under(int resource, uint64_t used) {
  struct rlimit r;
  if (getrlimit(resource, &r) || r.rlim_cur == RLIM_INFINITY)
    return UINT64_MAX;
  return (uint64_t)r.rlim_cur > used ? (uint64_t)r.rlim_cur - used : 0;
}

uint64_t rt_address_space_room(void) {
  uint64_t size = 0, data = 0;
  if (!in_use(&size, &data))
    return UINT64_MAX; /* no /proc: nothing to go by, so nothing refused */
  uint64_t as = room_under(RLIMIT_AS, size), d = room_under(RLIMIT_DATA, data);
  return as < d ? as : d;
}
