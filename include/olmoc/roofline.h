/* What this machine can do, measured in the calling process: the read
 * bandwidth of a streaming sum over huge-page memory and the f32 FMA, bf16
 * dot and int8 dot peaks of independent vector instructions, with a given
 * thread count. `olmoc bench` takes every speed as a fraction of these. No LLVM. */
#ifndef OLMOC_ROOFLINE_H
#define OLMOC_ROOFLINE_H

#include <stdbool.h>
#include <stddef.h>

#include "olmoc/error.h"

/* The transparent huge page mode ("always", "madvise", "never", "unknown")
 * and the KiB of this process's anonymous memory on huge pages now. */
const char *rt_thp_mode(void);
long rt_anon_huge_kib(void);

/* Best of `runs` full reads of a `bytes` huge-page buffer, split over
 * `threads` threads, in GB/s (1e9 bytes/s); vector width of the loop in
 * *width_bits (512, 256 or 64). */
int rt_probe_read_bandwidth(size_t bytes, int threads, int runs, double *gbps, int *width_bits,
                            oc_error *e);

/* f32 FMA peak in GFLOP/s (2 flops per lane per FMA), best of `runs`. */
double rt_probe_fma_peak(int threads, int runs);

/* bf16 dot peak (vdpbf16ps: 4 flops per f32 lane) in GFLOP/s, or 0 when the
 * CPU lacks AVX512_BF16. */
double rt_probe_bf16_peak(int threads, int runs);

/* int8 dot peak in GOP/s: u8 x s8 multiply-adds into int32, each counted as
 * 2 ops (as llama.cpp and the vendors' TOPS count them), best of `runs`; 0
 * without AVX2. rt_int8_dot_name says which instructions it ran: vpdpbusd
 * (AVX512_VNNI on zmm, else AVX-VNNI on ymm), else vpmaddubsw + vpmaddwd +
 * vpaddd (AVX-512BW zmm, AVX2 ymm), or "none". */
double rt_probe_int8_peak(int threads, int runs);
const char *rt_int8_dot_name(void);

#endif
