/* rt_memory_available_under on fake /proc and /sys trees: MemAvailable
 * alone, then the room under cgroup v2 and v1 memory limits (a limit of
 * the process's cgroup or of one above it, inactive file pages counted
 * free, "max" as no limit) taken when it is less. A container's 700 MiB
 * once read as the host's 24 GiB, and the OOM killer came instead of the
 * file-backed path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "olmoc/machine.h"

#define MIB (UINT64_C(1) << 20)

static char root[] = "/tmp/olmoc_memory_XXXXXX";

/* root/path holding text, its directories made. */
static void put(const char *path, const char *text) {
  char cmd[512], file[256];
  snprintf(file, sizeof file, "%s/%s", root, path);
  snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname %s)\"", file);
  assert_int_equal(system(cmd), 0);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void clear(void) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s/proc %s/sys", root, root);
  assert_int_equal(system(cmd), 0);
}

static void test_meminfo_alone(void **state) {
  (void)state;
  clear();
  assert_int_equal(rt_memory_available_under(root), 0); /* nothing known */
  put("proc/meminfo", "MemTotal: 25165824 kB\nMemFree: 1000 kB\nMemAvailable: 24117248 kB\n");
  assert_int_equal(rt_memory_available_under(root), 24117248 * UINT64_C(1024));
  put("proc/self/cgroup", "0::/\n");
  put("sys/fs/cgroup/memory.max", "max\n"); /* no limit */
  put("sys/fs/cgroup/memory.current", "1000000\n");
  assert_int_equal(rt_memory_available_under(root), 24117248 * UINT64_C(1024));
}

static void test_cgroup_v2(void **state) {
  (void)state;
  clear();
  put("proc/meminfo", "MemAvailable: 24117248 kB\n");
  put("proc/self/cgroup", "0::/box/job\n");
  put("sys/fs/cgroup/box/job/memory.max", "734003200\n"); /* 700 MiB */
  put("sys/fs/cgroup/box/job/memory.current", "104857600\n");
  put("sys/fs/cgroup/box/job/memory.stat", "anon 1\nfile 2\ninactive_file 52428800\nactive_file 3\n");
  assert_int_equal(rt_memory_available_under(root), 650 * MIB);
  put("sys/fs/cgroup/box/memory.max", "524288000\n"); /* the parent's 500 MiB, 400 used */
  put("sys/fs/cgroup/box/memory.current", "419430400\n");
  assert_int_equal(rt_memory_available_under(root), 100 * MIB);
  put("sys/fs/cgroup/box/memory.current", "600000000\n"); /* over its limit: nothing left */
  assert_int_equal(rt_memory_available_under(root), 0);
}

static void test_cgroup_v1(void **state) {
  (void)state;
  clear();
  put("proc/meminfo", "MemAvailable: 24117248 kB\n");
  put("proc/self/cgroup", "9:name=systemd:/\n4:memory:/docker/abc\n1:cpu:/\n");
  put("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "4294967296\n");
  put("sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", "1073741824\n");
  put("sys/fs/cgroup/memory/docker/abc/memory.stat", "cache 5\ntotal_inactive_file 1048576\n");
  assert_int_equal(rt_memory_available_under(root), 3073 * MIB);
  put("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n"); /* v1's "no limit" */
  assert_int_equal(rt_memory_available_under(root), 24117248 * UINT64_C(1024));
}

static int setup(void **state) {
  (void)state;
  return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", root);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_meminfo_alone),
      cmocka_unit_test(test_cgroup_v2),
      cmocka_unit_test(test_cgroup_v1),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
