/* GEMV throughput of the JIT's matmul kernel, one thread: y[N] = W[N,K] x[K]
 * for W 2048x8192 in f32 and bf16, in GB/s of weight read (the figure decode
 * speed is bounded by). W sits in anonymous memory with MADV_HUGEPAGE, in
 * enough copies (>= 1 GiB) that each call reads it from DRAM, not the L3.
 * Usage: matmul_kernel_bench [N K [sweeps]] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "olmoc/codegen.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *huge_alloc(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

#define FOOTPRINT (1024.0 * 1024 * 1024) /* bytes of weights cycled through, > any L3 here */

static int run(cg_jit *j, ir_dtype dt, int64_t N, int64_t K, int sweeps) {
  size_t es = dt == IR_BF16 ? 2 : 4, bytes = (size_t)(N * K) * es;
  int copies = (int)(FOOTPRINT / (double)bytes) + 1;
  unsigned char *w = huge_alloc(bytes * (size_t)copies);
  float *x = malloc((size_t)K * sizeof *x), *y = malloc((size_t)N * sizeof *y);
  if (!w || !x || !y) {
    fprintf(stderr, "out of memory for %d copies of a %lldx%lld matrix\n", copies, (long long)N, (long long)K);
    return 1;
  }
  for (size_t i = 0; i < (size_t)(N * K) * (size_t)copies; i++) { /* normal values in [0.5, 1) */
    float f = 0.5f + (float)(i * 2654435761u % 1000) * 5e-4f;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if (dt == IR_BF16)
      ((uint16_t *)w)[i] = (uint16_t)(bits >> 16);
    else
      ((float *)w)[i] = f;
  }
  for (int64_t k = 0; k < K; k++)
    x[k] = (float)(k % 7) * 0.25f;
  oc_error e;
  void *fn;
  double t0 = now();
  if (cg_kernel_get(j, &(cg_kernel_key){.op = IR_MATMUL, .wtype = dt, .k = K, .n = N}, &fn, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  double compile = now() - t0, best = 1e30;
  for (int s = 0; s < sweeps; s++) {
    t0 = now();
    for (int c = 0; c < copies; c++)
      ((cg_matmul_fn *)fn)(x, w + (size_t)c * bytes, y, 0, 1, 0, N);
    double t = (now() - t0) / copies;
    best = t < best ? t : best;
  }
  printf("%-4s W[%lld,%lld] %5.1f MiB x %2d copies: %7.3f ms/call  %6.2f GB/s  (compile %.1f ms)\n",
         ir_dtype_name(dt), (long long)N, (long long)K, (double)bytes / (1 << 20), copies, best * 1e3,
         (double)bytes / best / 1e9, compile * 1e3);
  munmap(w, bytes * (size_t)copies);
  free(x);
  free(y);
  return 0;
}

int main(int argc, char **argv) {
  int64_t N = argc > 2 ? atoll(argv[1]) : 2048, K = argc > 2 ? atoll(argv[2]) : 8192;
  int sweeps = argc > 3 ? atoi(argv[3]) : 5;
  if (N < 1 || K < 1 || sweeps < 1) {
    fprintf(stderr, "usage: %s [N K [sweeps]]\n", argv[0]);
    return 2;
  }
  cg_host h;
  cg_host_detect(&h);
  printf("matmul_kernel_bench: GEMV, 1 thread, host %s, best of %d sweeps over >= 1 GiB of MADV_HUGEPAGE weights\n", h.cpu, sweeps);
  cg_jit *j;
  oc_error e;
  if (cg_jit_new(&j, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  int rc = run(j, IR_F32, N, K, sweeps) || run(j, IR_BF16, N, K, sweeps);
  cg_jit_free(j);
  return rc;
}
