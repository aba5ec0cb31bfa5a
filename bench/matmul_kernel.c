/* Throughput of the JIT's matmul kernel on one thread or several (each
 * computing its share of the panels, as the executor splits them), y[M,N] = x[M,K] W[N,K]^T
 * for W in f32 and bf16, in the kernels' packed layout, and with AVX512_BF16
 * bf16 under --compute bf16 ("bf16dot": k-pair panels, vdpbf16ps for M > 1).
 *   M = 1 (GEMV, decode): GB/s of weight read, the figure decode speed is
 *   bounded by; W sits in MADV_HUGEPAGE memory in enough copies (>= 1 GiB)
 *   that each call reads it from DRAM, not the L3.
 *   M > 1 (GEMM, prefill): GFLOP/s, beside the f32 FMA peak measured in the
 *   same run (bench/probes/roofline.c).
 * Usage: matmul_kernel_bench [N K [sweeps [M [threads]]]] */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "olmoc/alloc.h"
#include "olmoc/codegen.h"
#include "olmoc/roofline.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define FOOTPRINT (1024.0 * 1024 * 1024) /* bytes of weights cycled through, > any L3 here */

/* Normal values in [0.5, 1): which weight sits where does not change the speed. */
static void fill(ir_dtype dt, void *w, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float f = 0.5f + (float)(i * 2654435761u % 1000) * 5e-4f;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if (dt == IR_BF16)
      ((uint16_t *)w)[i] = (uint16_t)(bits >> 16);
    else
      ((float *)w)[i] = f;
  }
}

/* peak: the probe M > 1 is set against, named peak_name */
static int threads = 1;

/* y = x W^T, the panels split over the threads. */
static void call(cg_jit *j, void *fn, const float *x, const void *w, float *y, int64_t M, int64_t N) {
  int64_t panels = (N + cg_matmul_panel(j) - 1) / cg_matmul_panel(j);
#pragma omp parallel num_threads(threads)
  {
    int id = omp_get_thread_num(), n = omp_get_num_threads();
    int64_t n0 = panels * id / n * cg_matmul_panel(j), n1 = panels * (id + 1) / n * cg_matmul_panel(j);
    if (n0 < N)
      ((cg_matmul_fn *)fn)(x, w, y, 0, M, n0, n1 < N ? n1 : N);
  }
}

static int run(cg_jit *j, ir_dtype dt, int64_t M, int64_t N, int64_t K, int sweeps, double peak,
               const char *peak_name) {
  const char *name = dt == IR_BF16 && cg_jit_bf16_compute(j) ? "bf16dot" : ir_dtype_name(dt);
  size_t bytes = cg_packed_bytes(j, dt, N, K);
  int copies = M == 1 ? (int)(FOOTPRINT / (double)bytes) + 1 : 1;
  unsigned char *w = oc_huge_alloc(bytes * (size_t)copies);
  float *x = malloc((size_t)(M * K) * sizeof *x), *y = malloc((size_t)(M * N) * sizeof *y);
  if (!w || !x || !y) {
    fprintf(stderr, "out of memory for %d copies of a %lldx%lld matrix\n", copies, (long long)N, (long long)K);
    return 1;
  }
  fill(dt, w, bytes * (size_t)copies / (dt == IR_BF16 ? 2 : 4));
  for (int64_t k = 0; k < M * K; k++)
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
      call(j, fn, x, w + (size_t)c * bytes, y, M, N);
    double t = (now() - t0) / copies;
    best = t < best ? t : best;
  }
  if (M == 1)
    printf("GEMV %-7s W[%lld,%lld] %5.1f MiB x %2d copies: %7.3f ms/call  %6.2f GB/s  (compile %.1f ms)\n",
           name, (long long)N, (long long)K, (double)bytes / (1 << 20), copies, best * 1e3,
           (double)bytes / best / 1e9, compile * 1e3);
  else
    printf("GEMM %-7s M=%lld W[%lld,%lld]: %8.3f ms/call  %6.1f GFLOP/s = %4.1f%% of the %s peak  (compile %.1f ms)\n",
           name, (long long)M, (long long)N, (long long)K, best * 1e3,
           2.0 * (double)(M * N * K) / best / 1e9, 100 * 2.0 * (double)(M * N * K) / best / 1e9 / peak,
           peak_name, compile * 1e3);
  free(w);
  free(x);
  free(y);
  return 0;
}

int main(int argc, char **argv) {
  int64_t N = argc > 2 ? atoll(argv[1]) : 2048, K = argc > 2 ? atoll(argv[2]) : 8192;
  int sweeps = argc > 3 ? atoi(argv[3]) : 5;
  int64_t M = argc > 4 ? atoll(argv[4]) : 1;
  threads = argc > 5 ? atoi(argv[5]) : 1;
  if (N < 1 || K < 1 || sweeps < 1 || M < 1 || threads < 1) {
    fprintf(stderr, "usage: %s [N K [sweeps [M [threads]]]]\n", argv[0]);
    return 2;
  }
  cg_host h;
  cg_host_detect(&h);
  double peak = M > 1 ? rt_probe_fma_peak(threads, 5) : 0, bf16_peak = M > 1 ? rt_probe_bf16_peak(threads, 5) : 0;
  printf("matmul_kernel_bench: %d thread%s, host %s, best of %d sweeps", threads, threads > 1 ? "s" : "", h.cpu,
         sweeps);
  if (M > 1)
    printf(", f32 FMA peak %.1f, bf16 dot peak %.1f GFLOP/s\n", peak, bf16_peak);
  else
    printf(" over >= 1 GiB of MADV_HUGEPAGE weights\n");
  cg_jit *j, *dot = NULL;
  oc_error e;
  if (cg_jit_new(&j, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  int rc = run(j, IR_F32, M, N, K, sweeps, peak, "f32 FMA") || run(j, IR_BF16, M, N, K, sweeps, peak, "f32 FMA");
  if (!rc && h.avx512bf16) { /* --compute bf16, in a session of its own */
    rc = cg_jit_new(&dot, &e) || cg_jit_set_bf16_compute(dot, true, &e);
    if (rc)
      fprintf(stderr, "%s\n", e.msg);
    else
      rc = run(dot, IR_BF16, M, N, K, sweeps, bf16_peak, "bf16 dot");
  }
  cg_jit_free(dot);
  cg_jit_free(j);
  return rc;
}
