/* Does this CPU run the kernels a binary was compiled for? The target's LLVM
 * feature string lists what the code may use; each enabled feature olmoc
 * knows is looked up with cpuid (and, for AVX and AVX-512 registers, whether
 * the OS saves them, XGETBV), so a binary refuses to start with a message
 * instead of dying on an illegal instruction. Features not in the table (say
 * "+64bit" or "+cx8") are older than anything the table's features imply. */
#include <cpuid.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "olmoc/machine.h"

typedef struct feature {
  const char *name; /* LLVM's spelling */
  unsigned leaf, sub, reg, bit; /* reg: 0 eax, 1 ebx, 2 ecx, 3 edx */
  int state;        /* OS state needed: 0 none, 1 AVX (YMM), 2 AVX-512 (ZMM, opmask) */
} feature;

static const feature table[] = {
    {"sse3", 1, 0, 2, 0, 0},        {"ssse3", 1, 0, 2, 9, 0},       {"fma", 1, 0, 2, 12, 1},
    {"sse4.1", 1, 0, 2, 19, 0},     {"sse4.2", 1, 0, 2, 20, 0},     {"movbe", 1, 0, 2, 22, 0},
    {"popcnt", 1, 0, 2, 23, 0},     {"aes", 1, 0, 2, 25, 0},        {"avx", 1, 0, 2, 28, 1},
    {"f16c", 1, 0, 2, 29, 1},       {"bmi", 7, 0, 1, 3, 0},         {"avx2", 7, 0, 1, 5, 1},
    {"bmi2", 7, 0, 1, 8, 0},        {"avx512f", 7, 0, 1, 16, 2},    {"avx512dq", 7, 0, 1, 17, 2},
    {"avx512ifma", 7, 0, 1, 21, 2}, {"avx512cd", 7, 0, 1, 28, 2},   {"avx512bw", 7, 0, 1, 30, 2},
    {"avx512vl", 7, 0, 1, 31, 2},   {"avx512vbmi", 7, 0, 2, 1, 2},  {"avx512vbmi2", 7, 0, 2, 6, 2},
    {"gfni", 7, 0, 2, 8, 0},        {"vaes", 7, 0, 2, 9, 1},        {"vpclmulqdq", 7, 0, 2, 10, 1},
    {"avx512vnni", 7, 0, 2, 11, 2}, {"avx512bitalg", 7, 0, 2, 12, 2}, {"avx512vpopcntdq", 7, 0, 2, 14, 2},
    {"avx512vp2intersect", 7, 0, 3, 8, 2}, {"avx512fp16", 7, 0, 3, 23, 2}, {"amx-bf16", 7, 0, 3, 22, 0},
    {"amx-tile", 7, 0, 3, 24, 0},   {"amx-int8", 7, 0, 3, 25, 0},   {"avxvnni", 7, 1, 0, 4, 1},
    {"avx512bf16", 7, 1, 0, 5, 2},  {"avxifma", 7, 1, 0, 23, 1},    {"avxvnniint8", 7, 1, 3, 4, 1},
    {"lzcnt", 0x80000001u, 0, 2, 5, 0},
};

static bool has(const feature *f) {
  unsigned r[4] = {0};
  if (!__get_cpuid_count(f->leaf, f->sub, &r[0], &r[1], &r[2], &r[3]) || !(r[f->reg] >> f->bit & 1))
    return false;
  if (!f->state)
    return true;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c >> 27 & 1)) /* OSXSAVE: XGETBV is there */
    return false;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  unsigned need = f->state == 1 ? 0x6 : 0xe6; /* XMM|YMM; and opmask|ZMM_Hi256|Hi16_ZMM */
  return (lo & need) == need;
}

int rt_cpu_check(const char *cpu, const char *features, oc_error *e) {
  for (const char *p = features; p && *p;) {
    size_t n = strcspn(p, ",");
    if (*p == '+')
      for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strlen(table[i].name) == n - 1 && !strncmp(table[i].name, p + 1, n - 1) && !has(&table[i]))
          return oc_fail(e, "this binary was compiled for %s and needs the CPU feature %s, which "
                         "this CPU lacks: compile the model again with --target avx2, or with "
                         "--target native on this machine", cpu, table[i].name);
    p += n + (p[n] == ',');
  }
  return 0;
}
