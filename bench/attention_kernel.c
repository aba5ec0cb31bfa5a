/* Throughput of the JIT's attention kernel alone, as decode and prefill run
 * it: head-major KV caches (the layout the JIT gives caches only attention
 * reads) in f32 and in bf16, `layers` copies of them cycled through so that
 * a call reads its cache from beyond L2 as a model's layers do, the pairs
 * split over the threads as the executor splits them. Prints ms per layer,
 * ns per (pair, key), GB/s of cache read, beside the read bandwidth
 * probed in the same run with the same threads (decode's limit), and
 * GFLOP/s (prefill's).
 * Usage: attention_kernel_bench [P [T [H KV D [threads [layers]]]]]
 * (default: P=2048, T=1, the 1B's H=16, KV=16, D=64, 1 thread, 16 layers) */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "olmoc/alloc.h"
#include "olmoc/codegen.h"
#include "olmoc/roofline.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct shape {
  int64_t P, T, H, KV, D, ctx;
  int threads, layers;
} shape;

/* One layer's call, pairs [0, T*H) split over the threads. */
static void call(const shape *s, cg_attention_fn *fn, const float *q, const void *k, const void *v, float *y) {
  int64_t pairs = s->T * s->H;
#pragma omp parallel num_threads(s->threads)
  {
    int id = omp_get_thread_num(), n = omp_get_num_threads();
    fn(q, k, v, y, s->T, s->P, s->ctx, pairs * id / n, pairs * (id + 1) / n);
  }
}

static int run(cg_jit *j, const shape *s, bool bf16, double bandwidth) {
  cg_kernel_key key = {.op = IR_ATTENTION, .k = s->D, .n = s->H, .kv = s->KV, .scale = 0.125f,
                       .kv_head_major = true, .kv_bf16 = bf16};
  void *fn;
  oc_error e;
  if (cg_kernel_get(j, &key, &fn, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  size_t value = bf16 ? 2 : 4, cache = (size_t)(s->ctx * s->KV * s->D) * value, layer = 2 * cache;
  unsigned char *kv = oc_small_page_alloc(layer * (size_t)s->layers);
  float *q = malloc((size_t)(s->T * s->H * s->D) * sizeof *q), *y = malloc((size_t)(s->T * s->H * s->D) * sizeof *y);
  if (!kv || !q || !y) {
    fprintf(stderr, "out of memory for %d layers of %zu bytes of cache\n", s->layers, layer);
    return 1;
  }
  for (size_t i = 0; i < layer * (size_t)s->layers / 2; i++) /* bf16 0x3c00 (1.0), f32 pairs of them: finite */
    ((uint16_t *)(void *)kv)[i] = 0x3c00;
  for (int64_t i = 0; i < s->T * s->H * s->D; i++)
    q[i] = 0.01f * (float)(i % 17);
  double best = 1e30;
  for (int sweep = 0; sweep < 5; sweep++) {
    double t0 = now();
    for (int l = 0; l < s->layers; l++)
      call(s, fn, q, kv + (size_t)l * layer, kv + (size_t)l * layer + cache, y);
    double t = (now() - t0) / s->layers;
    best = t < best ? t : best;
  }
  /* each pair reads the keys and values of P + t + 1 positions */
  double keys = (double)s->H * (double)s->T * ((double)s->P + ((double)s->T + 1) / 2);
  double bytes = (double)s->KV * (double)(s->P + s->T) * (double)s->D * 2 * (double)value; /* each once */
  printf("%s cache: %8.3f ms/layer  %6.1f ns/key  %6.1f GB/s of cache (%.0f%% of the probe)  %6.1f GFLOP/s\n",
         bf16 ? "bf16" : "f32 ", best * 1e3, best * 1e9 / keys, bytes / best / 1e9, 100 * bytes / best / 1e9 / bandwidth,
         4.0 * (double)s->D * keys / best / 1e9); /* q.k and p.v: 2 flops per element each */
  free(kv);
  free(q);
  free(y);
  return 0;
}

int main(int argc, char **argv) {
  shape s = {.P = argc > 1 ? atoll(argv[1]) : 2048, .T = argc > 2 ? atoll(argv[2]) : 1,
             .H = argc > 5 ? atoll(argv[3]) : 16, .KV = argc > 5 ? atoll(argv[4]) : 16,
             .D = argc > 5 ? atoll(argv[5]) : 64, .threads = argc > 6 ? atoi(argv[6]) : 1,
             .layers = argc > 7 ? atoi(argv[7]) : 16};
  s.ctx = s.P + s.T;
  if (s.P < 0 || s.T < 1 || s.H < 1 || s.KV < 1 || s.H % s.KV || s.D < 1 || s.threads < 1 || s.layers < 1) {
    fprintf(stderr, "usage: %s [P [T [H KV D [threads [layers]]]]]\n", argv[0]);
    return 2;
  }
  double bandwidth;
  int width;
  oc_error e;
  cg_jit *j;
  if (rt_probe_read_bandwidth((size_t)1 << 30, s.threads, 5, &bandwidth, &width, &e) || cg_jit_new(&j, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  printf("attention_kernel_bench: P=%lld T=%lld H=%lld KV=%lld D=%lld, %d thread%s, %d layers of head-major "
         "caches; read bandwidth %.1f GB/s\n", (long long)s.P, (long long)s.T, (long long)s.H, (long long)s.KV,
         (long long)s.D, s.threads, s.threads > 1 ? "s" : "", s.layers, bandwidth);
  int rc = run(j, &s, false, bandwidth) || run(j, &s, true, bandwidth);
  cg_jit_free(j);
  return rc;
}
