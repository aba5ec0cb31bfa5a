/* The LLVM backend. So far: what the host CPU is, as LLVM sees it, which
 * decides the kernels the backend will emit. */
#ifndef OLMOC_CODEGEN_H
#define OLMOC_CODEGEN_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cg_host {
  char cpu[64];      /* LLVM's name for the host CPU, e.g. "skylake-avx512" */
  bool avx2, fma, avx512f, avx512bf16, avx512vnni;
  char llvm_version[32];
} cg_host;

void cg_host_detect(cg_host *h);

#endif
