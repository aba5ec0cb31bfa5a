/* Roofline probes: a streaming read over >= 1 GiB of huge-page memory and
 * loops of independent FMAs (f32), vdpbf16ps (bf16) or int8 dots per
 * thread, in the widest vectors the CPU has, chosen at run time (the library
 * is built for the baseline x86-64, so the wide loops carry target
 * attributes; the int8 loops are inline assembly, so that no compiler hoists
 * or spills them). */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "olmoc/alloc.h"
#include "olmoc/roofline.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define X86 1
#else
#define X86 0
#endif

const char *rt_thp_mode(void) {
  static const char *const modes[] = {"always", "madvise", "never"};
  char line[256] = "";
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f)
    return "unknown";
  if (!fgets(line, sizeof line, f))
    line[0] = '\0';
  fclose(f);
  for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
    char bracketed[32];
    snprintf(bracketed, sizeof bracketed, "[%s]", modes[i]);
    if (strstr(line, bracketed))
      return modes[i];
  }
  return "unknown";
}

long rt_anon_huge_kib(void) {
  char line[256];
  long kib = 0, v;
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "AnonHugePages: %ld kB", &v) == 1)
      kib = v;
  fclose(f);
  return kib;
}

/* ---- read bandwidth ---- */

#if X86
__attribute__((target("avx512f"))) static float sum512(const float *x, size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(x + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(x + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(x + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(x + i + 48));
    a4 = _mm512_add_ps(a4, _mm512_load_ps(x + i + 64));
    a5 = _mm512_add_ps(a5, _mm512_load_ps(x + i + 80));
    a6 = _mm512_add_ps(a6, _mm512_load_ps(x + i + 96));
    a7 = _mm512_add_ps(a7, _mm512_load_ps(x + i + 112));
  }
  a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                     _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  return _mm512_reduce_add_ps(a0);
}

__attribute__((target("avx2"))) static float sum256(const float *x, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(x + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(x + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(x + i + 24));
  }
  float t[8];
  _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#endif

static float sum_scalar(const float *x, size_t n) {
  float s[8] = {0};
  for (size_t i = 0; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++)
      s[k] += x[i + k];
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static int read_width(void) {
#if X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    return 512;
  if (__builtin_cpu_supports("avx2"))
    return 256;
#endif
  return 64;
}

static float sum_floats(const float *x, size_t n, int width) {
#if X86
  if (width == 512)
    return sum512(x, n);
  if (width == 256)
    return sum256(x, n);
#endif
  (void)width;
  return sum_scalar(x, n);
}

int rt_probe_read_bandwidth(size_t bytes, int threads, int runs, double *gbps, int *width_bits,
                            oc_error *e) {
  const size_t block = 2u << 20; /* slices are whole huge pages */
  size_t blocks = (bytes + block - 1) / block;
  bytes = blocks * block;
  float *x = oc_huge_alloc(bytes);
  if (!x)
    return oc_fail(e, "cannot allocate %zu MiB for the bandwidth probe", bytes >> 20);
  if (threads < 1)
    threads = omp_get_num_procs();
  int width = read_width();
  double best = 0;
  volatile float sink = 0;
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    size_t b0 = blocks * (size_t)t / (size_t)nt, b1 = blocks * (size_t)(t + 1) / (size_t)nt;
    size_t f0 = b0 * block / sizeof(float), f1 = b1 * block / sizeof(float);
    for (size_t i = f0; i < f1; i++) /* first touch by the reading thread */
      x[i] = 1.0f;
    for (int r = 0; r < runs; r++) {
#pragma omp barrier
      double t0 = omp_get_wtime();
#pragma omp barrier
      float s = sum_floats(x + f0, f1 - f0, width);
#pragma omp barrier
#pragma omp master
      {
        double dt = omp_get_wtime() - t0;
        if (dt > 0 && (double)bytes / dt / 1e9 > best)
          best = (double)bytes / dt / 1e9;
      }
#pragma omp atomic
      sink += s;
    }
  }
  (void)sink;
  free(x);
  *gbps = best;
  *width_bits = width;
  return 0;
}

/* ---- compute peaks ---- */

#define ITERS 4000000L

#if X86
/* 12 independent chains: enough to fill two FMA pipes of latency 4-6. The
 * unrolled loop keeps every chain in its own register. */
__attribute__((target("avx512f"))) static float fma512(long iters, float seed) {
  __m512 b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f); /* fixed point 1: no denormals */
  __m512 a[12];
  for (int k = 0; k < 12; k++)
    a[k] = _mm512_set1_ps(seed + (float)k);
  for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
    for (int k = 0; k < 12; k++)
      a[k] = _mm512_fmadd_ps(a[k], b, c);
  }
  for (int k = 1; k < 12; k++)
    a[0] = _mm512_add_ps(a[0], a[k]);
  return _mm512_reduce_add_ps(a[0]);
}

__attribute__((target("avx2,fma"))) static float fma256(long iters, float seed) {
  __m256 b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
  __m256 a[12];
  for (int k = 0; k < 12; k++)
    a[k] = _mm256_set1_ps(seed + (float)k);
  for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
    for (int k = 0; k < 12; k++)
      a[k] = _mm256_fmadd_ps(a[k], b, c);
  }
  float t[8];
  for (int k = 1; k < 12; k++)
    a[0] = _mm256_add_ps(a[0], a[k]);
  _mm256_storeu_ps(t, a[0]);
  return t[0] + t[7];
}

/* 12 chains here too, though vdpbf16ps is not latency-bound: on Sapphire
 * Rapids it issues at half the rate of an FMA (0.5 a cycle) whether 6, 12,
 * 16 or 24 chains run, i.e. at its throughput (measured with this loop). */
__attribute__((target("avx512f,avx512bf16"))) static float dpbf16(long iters, float seed) {
  __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80); /* bf16 1.0 */
  __m512bh x = (__m512bh)_mm512_set1_epi16((short)0x3c00);
  __m512 a[12];
  for (int k = 0; k < 12; k++)
    a[k] = _mm512_set1_ps(seed + (float)k);
  for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
    for (int k = 0; k < 12; k++)
      a[k] = _mm512_dpbf16_ps(a[k], x, b);
  }
  for (int k = 1; k < 12; k++)
    a[0] = _mm512_add_ps(a[0], a[k]);
  return _mm512_reduce_add_ps(a[0]);
}

/* int8 dots: u8 x s8 multiply-adds into int32 lanes. vpdpbusd (latency 5,
 * up to 2 a cycle) gets 12 independent accumulators; the vpmaddubsw +
 * vpmaddwd (by 1s) + vpaddd sequence of CPUs without VNNI has only the adds
 * in its chains (the products do not depend on them), 4 chains. Each loop
 * iteration runs 12 dot instructions or 12 sequences. The accumulators are
 * scalars, not an array, so that they live in registers across iterations
 * (an array element goes through memory around the asm, a store-to-load
 * chain that would make the loop latency-bound). */
/* Unsigned weight bytes 3 against signed activation bytes +1, -1, +1, -1,
 * ... (AT&T order: the signed operand first): every product pair cancels, so
 * the accumulators keep their start values (no overflow in the sums at the
 * end), and no CPU skips a multiply for it. */
#define PLUS_MINUS_1 (-255) /* the int16 0xff01: bytes 0x01, 0xff */
#define DP(i) "vpdpbusd %[x], %[w], %[a" #i "]\n\t"
#define DP12 DP(0) DP(1) DP(2) DP(3) DP(4) DP(5) DP(6) DP(7) DP(8) DP(9) DP(10) DP(11)
#define VDP(i) "%{vex%} vpdpbusd %[x], %[w], %[a" #i "]\n\t"
#define VDP12 VDP(0) VDP(1) VDP(2) VDP(3) VDP(4) VDP(5) VDP(6) VDP(7) VDP(8) VDP(9) VDP(10) VDP(11)
#define ACC12(c) [a0] "+" c(a0), [a1] "+" c(a1), [a2] "+" c(a2), [a3] "+" c(a3), [a4] "+" c(a4), \
                 [a5] "+" c(a5), [a6] "+" c(a6), [a7] "+" c(a7), [a8] "+" c(a8), [a9] "+" c(a9), \
                 [a10] "+" c(a10), [a11] "+" c(a11)
#define MB(i) "vpmaddubsw %[x], %[w], %[t" #i "]\n\tvpmaddwd %[one], %[t" #i "], %[t" #i "]\n\t" \
              "vpaddd %[t" #i "], %[a" #i "], %[a" #i "]\n\t"
#define MB12 MB(0) MB(1) MB(2) MB(3) MB(0) MB(1) MB(2) MB(3) MB(0) MB(1) MB(2) MB(3)
#define ACC4(c) [a0] "+" c(a0), [a1] "+" c(a1), [a2] "+" c(a2), [a3] "+" c(a3), \
                [t0] "=&" c(t0), [t1] "=&" c(t1), [t2] "=&" c(t2), [t3] "=&" c(t3)

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static float dot512_vnni(long iters, int seed) {
  __m512i w = _mm512_set1_epi8(3), x = _mm512_set1_epi16(PLUS_MINUS_1), a0 = _mm512_set1_epi32(seed);
  __m512i a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
  for (long i = 0; i < iters; i++)
    __asm__ volatile(DP12 : ACC12("v") : [w] "v"(w), [x] "v"(x));
  a0 = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                        _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
  a0 = _mm512_add_epi32(a0, _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)));
  return (float)_mm512_reduce_add_epi32(a0);
}

__attribute__((target("avx512f,avx512bw"))) static float dot512_maddubs(long iters, int seed) {
  __m512i w = _mm512_set1_epi8(3), x = _mm512_set1_epi16(PLUS_MINUS_1), one = _mm512_set1_epi16(1);
  __m512i a0 = _mm512_set1_epi32(seed), a1 = a0, a2 = a0, a3 = a0, t0, t1, t2, t3;
  for (long i = 0; i < iters; i++)
    __asm__ volatile(MB12 : ACC4("v") : [w] "v"(w), [x] "v"(x), [one] "v"(one));
  a0 = _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
  return (float)_mm512_reduce_add_epi32(a0);
}

static float sum8(const int *t) { return (float)(t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7]); }

__attribute__((target("avx2,avxvnni"))) static float dot256_vnni(long iters, int seed) {
  __m256i w = _mm256_set1_epi8(3), x = _mm256_set1_epi16(PLUS_MINUS_1), a0 = _mm256_set1_epi32(seed);
  __m256i a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
  for (long i = 0; i < iters; i++)
    __asm__ volatile(VDP12 : ACC12("x") : [w] "x"(w), [x] "x"(x));
  a0 = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                        _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
  a0 = _mm256_add_epi32(a0, _mm256_add_epi32(_mm256_add_epi32(a8, a9), _mm256_add_epi32(a10, a11)));
  int t[8];
  _mm256_storeu_si256((__m256i *)(void *)t, a0);
  return sum8(t);
}

__attribute__((target("avx2"))) static float dot256_maddubs(long iters, int seed) {
  __m256i w = _mm256_set1_epi8(3), x = _mm256_set1_epi16(PLUS_MINUS_1), one = _mm256_set1_epi16(1);
  __m256i a0 = _mm256_set1_epi32(seed), a1 = a0, a2 = a0, a3 = a0, t0, t1, t2, t3;
  for (long i = 0; i < iters; i++)
    __asm__ volatile(MB12 : ACC4("x") : [w] "x"(w), [x] "x"(x), [one] "x"(one));
  a0 = _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
  int t[8];
  _mm256_storeu_si256((__m256i *)(void *)t, a0);
  return sum8(t);
}
#endif

/* The int8 dot loop this CPU runs best, by the instructions it has. */
typedef enum int8_dot { INT8_NONE, INT8_VNNI512, INT8_MADDUBS512, INT8_VNNI256, INT8_MADDUBS256 } int8_dot;

static int8_dot int8_kind(void) {
#if X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"))
    return INT8_VNNI512;
  if (__builtin_cpu_supports("avx512bw"))
    return INT8_MADDUBS512;
  if (__builtin_cpu_supports("avxvnni"))
    return INT8_VNNI256;
  if (__builtin_cpu_supports("avx2"))
    return INT8_MADDUBS256;
#endif
  return INT8_NONE;
}

const char *rt_int8_dot_name(void) {
  static const char *const names[] = {"none", "vpdpbusd zmm", "vpmaddubsw+vpmaddwd zmm", "vpdpbusd ymm (AVX-VNNI)",
                                      "vpmaddubsw+vpmaddwd ymm"};
  return names[int8_kind()];
}

static float fma_scalar(long iters, float seed) {
  float a[12];
  for (int k = 0; k < 12; k++)
    a[k] = seed + (float)k;
  for (long i = 0; i < iters; i++)
    for (int k = 0; k < 12; k++)
      a[k] = a[k] * 0.999f + 1e-3f;
  return a[0] + a[11];
}

/* kind 0: f32 FMA, 1: bf16 dot, 2: int8 dot. Flops (int8: ops, 2 per
 * multiply-add) per iteration per thread in *flops. */
static float run_kernel(int kind, long iters, float seed, double *flops) {
#if X86
  if (kind == 1) {
    *flops = 12.0 * 16 * 4;
    return dpbf16(iters, seed);
  }
  if (kind == 2) {
    int8_dot d = int8_kind();
    *flops = d == INT8_VNNI512 || d == INT8_MADDUBS512 ? 12.0 * 64 * 2 : 12.0 * 32 * 2;
    return d == INT8_VNNI512     ? dot512_vnni(iters, (int)seed)
           : d == INT8_MADDUBS512 ? dot512_maddubs(iters, (int)seed)
           : d == INT8_VNNI256    ? dot256_vnni(iters, (int)seed)
                                  : dot256_maddubs(iters, (int)seed);
  }
  if (__builtin_cpu_supports("avx512f")) {
    *flops = 12.0 * 16 * 2;
    return fma512(iters, seed);
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    *flops = 12.0 * 8 * 2;
    return fma256(iters, seed);
  }
#endif
  (void)kind;
  *flops = 12.0 * 2;
  return fma_scalar(iters, seed);
}

static double peak(int kind, int threads, int runs) {
  if (threads < 1)
    threads = omp_get_num_procs();
  double best = 0;
  volatile float sink = 0;
#pragma omp parallel num_threads(threads)
  {
    for (int r = 0; r < runs; r++) {
      double flops = 0;
#pragma omp barrier
      double t0 = omp_get_wtime();
#pragma omp barrier
      float s = run_kernel(kind, ITERS, (float)omp_get_thread_num(), &flops);
#pragma omp barrier
#pragma omp master
      {
        double dt = omp_get_wtime() - t0, g = flops * (double)ITERS * omp_get_num_threads() / dt / 1e9;
        if (dt > 0 && g > best)
          best = g;
      }
#pragma omp atomic
      sink += s;
    }
  }
  (void)sink;
  return best;
}

double rt_probe_fma_peak(int threads, int runs) {
#if X86
  __builtin_cpu_init();
#endif
  return peak(0, threads, runs);
}

double rt_probe_bf16_peak(int threads, int runs) {
#if X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16"))
    return peak(1, threads, runs);
#endif
  (void)threads, (void)runs;
  return 0;
}

double rt_probe_int8_peak(int threads, int runs) {
  if (int8_kind() != INT8_NONE)
    return peak(2, threads, runs);
  (void)threads, (void)runs;
  return 0;
}
