/* How much memory the machine can give this process now: the least of
 * MemAvailable (the kernel's own estimate of free memory plus the page cache
 * and reclaimable slabs it could drop without swapping) and, for each
 * cgroup this process is in and each above it, its memory limit less its
 * usage, its inactive file pages counted free (the kernel drops those
 * first). A container of 700 MiB on a 24 GiB host has 700 MiB, whatever
 * MemAvailable says. Loaders compare it with what they are about to place in
 * anonymous memory, which only swap could evict. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "olmoc/machine.h"

/* The first number after `key` in the file at path (one "key N" a line),
 * or false when the file or key is absent or the value is "max". */
static bool read_number(const char *path, const char *key, uint64_t *out) {
  FILE *f = fopen(path, "r");
  char line[256];
  bool found = false;
  size_t n = strlen(key);
  while (f && !found && fgets(line, sizeof line, f)) {
    unsigned long long v;
    if (!strncmp(line, key, n) && sscanf(line + n, " %llu", &v) == 1)
      *out = v, found = true;
  }
  if (f)
    fclose(f);
  return found;
}

/* For the cgroup directory dir and each above it down to top (all v2, or
 * all v1's memory controller), the least of limit - usage + inactive file
 * pages, into *least. */
static void cgroup_room(char *dir, size_t top, bool v2, uint64_t *least) {
  for (;;) {
    char path[4300]; /* dir is under 4200 */
    uint64_t limit, usage, inactive = 0;
    snprintf(path, sizeof path, "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
    bool limited = read_number(path, "", &limit);
    snprintf(path, sizeof path, "%s/%s", dir, v2 ? "memory.current" : "memory.usage_in_bytes");
    if (limited && read_number(path, "", &usage)) {
      snprintf(path, sizeof path, "%s/memory.stat", dir);
      read_number(path, v2 ? "inactive_file" : "total_inactive_file", &inactive);
      uint64_t room = limit > usage ? limit - usage : 0;
      room = room + inactive < room ? UINT64_MAX : room + inactive;
      *least = room < *least ? room : *least;
    }
    char *slash = strrchr(dir, '/');
    if (!slash || (size_t)(slash - dir) < top)
      return;
    *slash = '\0';
  }
}

uint64_t rt_memory_available_under(const char *root) {
  char path[4200], line[4096];
  uint64_t kb = 0, least = UINT64_MAX;
  snprintf(path, sizeof path, "%s/proc/meminfo", root);
  if (read_number(path, "MemAvailable:", &kb))
    least = kb * 1024;
  snprintf(path, sizeof path, "%s/proc/self/cgroup", root);
  FILE *f = fopen(path, "r");
  while (f && fgets(line, sizeof line, f)) { /* "0::/a/b" (v2), "7:memory:/a/b" (v1) */
    line[strcspn(line, "\n")] = '\0';
    char *first = strchr(line, ':'), *second = first ? strchr(first + 1, ':') : NULL;
    if (!second)
      continue;
    *second = '\0';
    bool v2 = !strcmp(first + 1, "") && line[0] == '0';
    bool v1 = strstr(first + 1, "memory") != NULL;
    if (!v2 && !v1)
      continue;
    int top = snprintf(path, sizeof path, "%s/sys/fs/cgroup%s", root, v2 ? "" : "/memory");
    if (top > 0 && (size_t)top < sizeof path) {
      snprintf(path + top, sizeof path - (size_t)top, "%s", strcmp(second + 1, "/") ? second + 1 : "");
      cgroup_room(path, (size_t)top, v2, &least);
    }
  }
  if (f)
    fclose(f);
  return least == UINT64_MAX ? 0 : least;
}

uint64_t rt_memory_available(void) { return rt_memory_available_under(""); }
