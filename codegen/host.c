/* Host CPU detection through LLVM: the CPU name and the vector features the
 * kernel emitters choose between (AVX-512 when present, AVX2 otherwise). */
#include <stdio.h>
#include <string.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "session.h"

/* LLVM lists features as "+avx2,-avx512f,...". */
bool cg_has_feature(const char *features, const char *name) {
  size_t n = strlen(name);
  for (const char *p = features; (p = strstr(p, name)) != NULL; p += n)
    if (p > features && p[-1] == '+' && (p[n] == ',' || p[n] == '\0'))
      return true;
  return false;
}

void cg_host_detect(cg_host *h) {
  memset(h, 0, sizeof *h);
  char *cpu = LLVMGetHostCPUName();
  char *features = LLVMGetHostCPUFeatures();
  snprintf(h->cpu, sizeof h->cpu, "%s", cpu);
  h->avx2 = cg_has_feature(features, "avx2");
  h->fma = cg_has_feature(features, "fma");
  h->avx512f = cg_has_feature(features, "avx512f");
  h->avx512bf16 = cg_has_feature(features, "avx512bf16");
  h->avx512vnni = cg_has_feature(features, "avx512vnni");
  unsigned major, minor, patch;
  LLVMGetVersion(&major, &minor, &patch);
  snprintf(h->llvm_version, sizeof h->llvm_version, "%u.%u.%u", major, minor, patch);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
}
