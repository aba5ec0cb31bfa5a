/* What the machine running this process offers: memory the kernel could
 * give now, and the CPU features compiled kernels need. Both are read fresh
 * at every call (/proc/meminfo, cpuid), never cached. */
#ifndef OLMOC_MACHINE_H
#define OLMOC_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

#include "olmoc/error.h"

/* Bytes the kernel could give this process without swapping: the least of
 * MemAvailable (/proc/meminfo) and the room left under each memory cgroup
 * limit it is in (v2 or v1, up to the root), or 0 when unknown.
 * rt_memory_available_under reads the same files under root ("" for the
 * real ones; tests give a directory of fake ones). */
uint64_t rt_memory_available(void);
uint64_t rt_memory_available_under(const char *root);

/* Bytes this process may still map under RLIMIT_AS and allocate under
 * RLIMIT_DATA (the smaller), UINT64_MAX when neither is limited. */
uint64_t rt_address_space_room(void);

/* Fails, naming the first missing one, unless this CPU (and the OS, for AVX
 * state) has every feature that `features` ("+avx2,+fma,-sse4a,...", LLVM's
 * spelling) enables and olmoc knows how to test; cpu names the target in
 * the message. */
int rt_cpu_check(const char *cpu, const char *features, oc_error *e);

#endif
