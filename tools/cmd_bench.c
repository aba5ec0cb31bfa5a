/* `olmoc bench`: the model of a config.json with random weights made in
 * huge-page memory (no checkpoint), compiled by the JIT at -O2, timed on
 * prefill and decode, each speed set against a roofline probed in the same
 * process: read bandwidth for decode (weight bytes per token), FMA peak for
 * prefill (model FLOPs per token), and for q8 also the int8 dot peak for
 * prefill (the same count, as ops). Prints a table, or one JSON object. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench_profile.h"
#include "cli.h"
#include "pipeline_args.h"
#include "olmoc/alloc.h"
#include "olmoc/codegen.h"
#include "olmoc/generate.h"
#include "olmoc/olmo2.h"
#include "olmoc/passes.h"
#include "olmoc/roofline.h"

static const char usage[] =
    "usage: olmoc bench -m MODEL [options]\n"
    "\n"
    "Builds MODEL's config.json with random weights in memory, JIT-compiles it at\n"
    "-O2 and measures read bandwidth, FMA, bf16 and int8 dot peaks, compile time,\n"
    "prefill tokens/s (T=128, 512) and decode tokens/s (P=0, 512, 2048), each\n"
    "against its roofline (q8 and q4 prefill also against the int8 dot peak).\n"
    "T and P are clamped to the model's context.\n"
    "\n"
    "options:\n"
    "  -m, --model PATH     a model directory or config.json (e.g. models/olmo2-1b)\n"
    "  --dtype f32|bf16|q8|q4  weight dtype (default f32; q8, q4: int8 or 4-bit matmul\n"
    "                       weights (q4: the LM head int8) made straight into their\n"
    "                       packed form, embedding and norms bf16)\n"
    "  --compute f32|bf16   bf16: prefill matmuls on vdpbf16ps with inputs rounded to\n"
    "                       bf16 (bf16 weights, made so without --dtype; AVX512_BF16),\n"
    "                       its roofline the bf16 dot peak (default f32: the f32 FMA peak)\n"
    "  --kv-cache f32|bf16  the KV caches' dtype (default f32)\n"
    "  -t, --threads N      threads for the model and the probes (default: all cores)\n"
    "  --target T           the JIT's instruction set: native (default) or avx2\n"
    "  --pack-weights W     where the packed weights go: auto (default: memory, or a\n"
    "                       file when they do not fit), memory, or file (docs/performance.md)\n"
    "  --json               print one JSON object (keys in docs/performance.md) instead of a table\n"
    "  -q, --quiet          no progress on standard error (it shows for steps over 1 s)\n"
    "  --profile            also time each kernel family and each layer (one prefill of\n"
    "                       512 tokens or the context, decode from P=0), in the table or\n"
    "                       as \"profile\" in the JSON\n"
    "  -h, --help           show this help\n";

#define DECODE_STEPS 8
static const int64_t prefill_T[] = {128, 512};
static const int64_t decode_P[] = {0, 512, 2048};
#define N_PREFILL (int)(sizeof prefill_T / sizeof *prefill_T)
#define N_DECODE (int)(sizeof decode_P / sizeof *decode_P)

typedef struct bench_weight {
  const char *name;
  ir_tensor t;
  size_t bytes;
} bench_weight;

typedef struct bench_weights {
  bench_weight *w;
  int n;
  void *mem;
  size_t mem_bytes;
} bench_weights;

static int lookup(void *ctx, const char *name, ir_tensor *out, oc_error *e) {
  const bench_weights *ws = ctx;
  for (int i = 0; i < ws->n; i++)
    if (!strcmp(ws->w[i].name, name)) {
      *out = ws->w[i].t;
      return 0;
    }
  return oc_fail(e, "no weight '%s'", name);
}

/* A hash of (tensor, index) as a uniform value in [-1, 1). */
static float noise(uint64_t tensor, uint64_t i) {
  uint64_t z = tensor * 0x9e3779b97f4a7c15u + i * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 31)) * 0x94d049bb133111ebu;
  z ^= z >> 29;
  return (float)(z >> 40) * 0x1.0p-23f - 1.0f;
}

/* Fills the packed q8 or q4 matrix w ([N,K] logically) with the values the
 * other dtypes get, quantized a chunk of rows at a time (whole panels: each
 * chunk packs into its own bytes), so no f32 copy of the matrix ever exists. */
static int make_quantized(const cg_jit *j, bench_weight *w, uint64_t tensor, float scale, int threads, oc_error *e) {
  int64_t N = w->t.dims[0], K = w->t.dims[1], chunk = cg_matmul_panel(j) * 64;
  float *rows = malloc((size_t)(chunk * K) * sizeof *rows);
  if (!rows)
    return oc_fail(e, "out of memory");
  for (int64_t r0 = 0; r0 < N; r0 += chunk) {
    int64_t n = N - r0 < chunk ? N - r0 : chunk;
    long long count = (long long)(n * K);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long long i = 0; i < count; i++)
      rows[i] = scale * noise(tensor, (uint64_t)(r0 * K + i));
    cg_pack_quantized(j, w->t.dtype, IR_F32, n, K, rows,
                      (unsigned char *)(uintptr_t)w->t.data + cg_packed_bytes(j, w->t.dtype, r0, K));
  }
  free(rows);
  return 0;
}

static bool is_matrix(const bench_weight *w) { return w->t.rank == 2 && !strstr(w->name, "embed_tokens"); }

/* Every weight node of g, random, in one huge-page mapping: norms near 1,
 * matrices with standard deviation 1/sqrt(fan_in), as `olmoc checkpoint`;
 * with a q8 jit, the matmul matrices already quantized and packed for it. */
static int make_weights(const ir_graph *g, const cg_jit *q8, bench_weights *ws, int threads,
                        const oc_progress *progress, oc_error *e) {
  *ws = (bench_weights){0};
  ws->w = calloc((size_t)g->n, sizeof *ws->w);
  if (!ws->w)
    return oc_fail(e, "out of memory");
  for (int i = 0; i < g->n; i++) {
    const ir_node *node = &g->nodes[i];
    if (node->op != IR_WEIGHT)
      continue;
    bench_weight *w = &ws->w[ws->n++];
    w->name = node->name;
    w->t.dtype = node->type.dtype;
    w->t.rank = node->type.shape.rank;
    size_t count = 1;
    for (int d = 0; d < w->t.rank; d++)
      count *= (size_t)(w->t.dims[d] = node->type.shape.dim[d].c);
    w->bytes = count * ir_dtype_size(w->t.dtype);
    if (q8 && is_matrix(w)) {
      w->t.dtype = cg_quantized_dtype(q8, w->name);
      w->bytes = cg_packed_bytes(q8, w->t.dtype, w->t.dims[0], w->t.dims[1]);
    }
    ws->mem_bytes += (w->bytes + 4095) / 4096 * 4096;
  }
  unsigned char *mem = ws->mem = oc_huge_alloc(ws->mem_bytes);
  if (!mem)
    return oc_fail(e, "cannot map %.2f GB for the weights", (double)ws->mem_bytes / 1e9);
  oc_step made;
  oc_step_begin(&made, progress, "making weights", ws->n, "tensors", "B");
  int rc = 0;
  for (int k = 0; k < ws->n && !rc; k++) {
    bench_weight *w = &ws->w[k];
    w->t.data = mem;
    bool norm = w->t.rank == 1, bf16 = w->t.dtype == IR_BF16;
    float scale = norm ? 0.1f : 1.7320508f / sqrtf((float)w->t.dims[w->t.rank - 1]);
    if (w->t.dtype == IR_I8 || w->t.dtype == IR_Q4) {
      rc = make_quantized(q8, w, (uint64_t)k + 1, scale, threads, e);
    } else {
      long long count = (long long)(w->bytes / ir_dtype_size(w->t.dtype));
#pragma omp parallel for num_threads(threads) schedule(static)
      for (long long i = 0; i < count; i++) {
        float x = (norm ? 1.0f : 0.0f) + scale * noise((uint64_t)k + 1, (uint64_t)i);
        if (bf16)
          ((uint16_t *)(void *)mem)[i] = rt_bf16_round(x);
        else
          ((float *)(void *)mem)[i] = x;
      }
    }
    mem += (w->bytes + 4095) / 4096 * 4096;
    if (!rc)
      oc_step_add(&made, 1, (double)w->bytes);
  }
  oc_step_end(&made);
  return rc;
}

static void free_weights(bench_weights *ws) {
  free(ws->mem);
  free(ws->w);
}

typedef struct figures {
  const char *target; /* the JIT's: "native" or "avx2" */
  bool bf16_compute;  /* --compute bf16: prefill against the bf16 dot peak */
  bool kv_bf16;       /* --kv-cache bf16 */
  bool q8;            /* q8 weights: prefill is also set against the int8 dot peak */
  double bandwidth_gbs, fma_gflops, bf16_gflops, int8_gops;
  int read_width;
  double passes_s, compile_s, pack_s, weights_s;
  double matmul_params, weight_bytes_token;
  int64_t prefill_tokens[N_PREFILL], decode_position[N_DECODE];
  double prefill_tok_s[N_PREFILL], prefill_flops_token[N_PREFILL];
  double decode_tok_s[N_DECODE];
} figures;

/* The program's position moved to P: rewound, or filled by prefill chunks. */
static int fill_to(rt_program *p, int64_t P, int64_t chunk, const int32_t *tokens, int threads,
                   oc_error *e) {
  if (rt_program_position(p) > P)
    rt_program_rewind(p, P);
  while (rt_program_position(p) < P) {
    int64_t T = P - rt_program_position(p) < chunk ? P - rt_program_position(p) : chunk;
    if (!rt_program_run(p, tokens, T, threads, e))
      return -1;
  }
  return 0;
}

/* tokens: max_tokens ids */
static int measure(rt_program *p, int64_t ctx, int64_t max_tokens, const int32_t *tokens, int threads,
                   figures *f, oc_error *e) {
  if (!rt_program_run(p, tokens, 1, threads, e)) /* warm-up: pages of the arena and cache */
    return -1;
  for (int k = 0; k < N_DECODE + N_PREFILL; k++) {
    /* decode P=0, prefill 128, prefill 512, decode 512 (after it), decode 2048 */
    static const int order[] = {0, -1, -2, 1, 2};
    int i = order[k];
    if (i < 0) {
      int j = -i - 1;
      int64_t T = prefill_T[j] < max_tokens ? prefill_T[j] : max_tokens;
      if (fill_to(p, 0, max_tokens, tokens, threads, e))
        return -1;
      double t0 = rt_seconds();
      if (!rt_program_run(p, tokens, T, threads, e))
        return -1;
      f->prefill_tok_s[j] = (double)T / (rt_seconds() - t0);
      f->prefill_tokens[j] = T;
    } else {
      int64_t P = decode_P[i] < ctx - DECODE_STEPS ? decode_P[i] : ctx - DECODE_STEPS;
      if (fill_to(p, P, max_tokens, tokens, threads, e))
        return -1;
      double t0 = rt_seconds();
      for (int s = 0; s < DECODE_STEPS; s++)
        if (!rt_program_run(p, tokens + s, 1, threads, e))
          return -1;
      f->decode_tok_s[i] = DECODE_STEPS / (rt_seconds() - t0);
      f->decode_position[i] = P;
    }
  }
  return 0;
}

/* The machine's limits, probed before the timed runs and again after them,
 * each the higher of the two: the host's neighbours come and go, and a probe
 * run while they were busy would let the model beat its roofline. */
static int probe(int threads, figures *f, oc_error *e) {
  double gbps;
  if (rt_probe_read_bandwidth((size_t)1 << 30, threads, 5, &gbps, &f->read_width, e))
    return -1;
  f->bandwidth_gbs = fmax(f->bandwidth_gbs, gbps);
  f->fma_gflops = fmax(f->fma_gflops, rt_probe_fma_peak(threads, 3));
  f->bf16_gflops = fmax(f->bf16_gflops, rt_probe_bf16_peak(threads, 3));
  f->int8_gops = fmax(f->int8_gops, rt_probe_int8_peak(threads, 3));
  return 0;
}

/* The peak prefill is set against: the f32 FMA's, or vdpbf16ps's for --compute bf16. */
static double prefill_peak(const figures *f) { return f->bf16_compute ? f->bf16_gflops : f->fma_gflops; }

/* Model FLOPs per token of a prefill of T from P=0: 2 per matmul weight,
 * plus QK^T and AV over the causal context (T+1)/2 on average. */
static double flops_per_token(const olmo2_config *c, double matmul_params, int64_t T) {
  double attn = 4.0 * (double)c->num_attention_heads * (double)c->head_dim * (double)(T + 1) / 2;
  return 2 * matmul_params + (double)c->num_hidden_layers * attn;
}

static void print_table(const char *model, const char *dtype, int threads, const figures *f,
                        long huge_kib) {
  printf("olmoc bench: %s, %s weights (random, in memory), %s compute, %s KV cache, %d threads, %s kernels\n",
         model, dtype, f->bf16_compute ? "bf16" : "f32", f->kv_bf16 ? "bf16" : "f32", threads, f->target);
  printf("pages: anonymous memory with madvise(MADV_HUGEPAGE), THP mode '%s', %.2f GiB on huge pages\n",
         rt_thp_mode(), (double)huge_kib / (1 << 20));
  printf("read bandwidth   %8.1f GB/s   (%d-bit loads, 1 GiB, best of 5 before and after)\n", f->bandwidth_gbs,
         f->read_width);
  printf("f32 FMA peak     %8.1f GFLOP/s\n", f->fma_gflops);
  if (f->bf16_gflops > 0)
    printf("bf16 dot peak    %8.1f GFLOP/s (vdpbf16ps)\n", f->bf16_gflops);
  else
    printf("bf16 dot peak    not measured (no AVX512_BF16)\n");
  if (f->int8_gops > 0)
    printf("int8 dot peak    %8.1f GOP/s   (%s, 2 ops per u8 x s8 multiply-add)\n", f->int8_gops,
           rt_int8_dot_name());
  else
    printf("int8 dot peak    not measured (no AVX2)\n");
  printf("weights          %8.3f s to generate; %.0f matmul params, %.1f MB read per decoded token\n",
         f->weights_s, f->matmul_params, f->weight_bytes_token / 1e6);
  printf("passes (-O2)     %8.3f s\nJIT compile      %8.3f s\nweight packing   %8.3f s\n", f->passes_s,
         f->compile_s, f->pack_s);
  bool int8 = f->q8 && f->int8_gops > 0;
  printf("\n%-16s %10s %12s %10s%s\n", "", "tok/s", "roofline", "fraction",
         int8 ? "   int8 roofline   int8 fraction" : "");
  for (int j = 0; j < N_PREFILL; j++) {
    double roof = prefill_peak(f) * 1e9 / f->prefill_flops_token[j];
    char name[32];
    snprintf(name, sizeof name, "prefill T=%lld", (long long)f->prefill_tokens[j]);
    printf("%-16s %10.2f %12.2f %9.1f%%", name, f->prefill_tok_s[j], roof, 100 * f->prefill_tok_s[j] / roof);
    if (int8) {
      double roof8 = f->int8_gops * 1e9 / f->prefill_flops_token[j];
      printf(" %15.2f %14.1f%%", roof8, 100 * f->prefill_tok_s[j] / roof8);
    }
    printf("\n");
  }
  for (int i = 0; i < N_DECODE; i++) {
    double roof = f->bandwidth_gbs * 1e9 / f->weight_bytes_token;
    char name[32];
    snprintf(name, sizeof name, "decode P=%lld", (long long)f->decode_position[i]);
    printf("%-16s %10.2f %12.2f %9.1f%%\n", name, f->decode_tok_s[i], roof,
           100 * f->decode_tok_s[i] / roof);
  }
  printf("\nprefill roofline: %s peak / model FLOPs per token (2 x matmul params + "
         "causal attention);\n%sdecode roofline: read bandwidth / weight bytes per token "
         "(KV cache reads not counted).\n", f->bf16_compute ? "bf16 dot" : "f32 FMA",
         int8 ? "int8 roofline (q8, q4 prefill): int8 dot peak / the same count, as ops;\n" : "");
}

static cJSON *figures_json(const char *model, const char *dtype, int threads, const figures *f,
                           long huge_kib) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "model", model);
  cJSON_AddStringToObject(o, "dtype", dtype);
  cJSON_AddStringToObject(o, "compute", f->bf16_compute ? "bf16" : "f32");
  cJSON_AddStringToObject(o, "kv_cache", f->kv_bf16 ? "bf16" : "f32");
  cJSON_AddNumberToObject(o, "threads", threads);
  cJSON_AddStringToObject(o, "target", f->target);
  cJSON_AddStringToObject(o, "page_mode", "madvise_hugepage");
  cJSON_AddStringToObject(o, "thp", rt_thp_mode());
  cJSON_AddNumberToObject(o, "huge_page_bytes", (double)huge_kib * 1024);
  cJSON_AddNumberToObject(o, "read_bandwidth_gbs", f->bandwidth_gbs);
  cJSON_AddNumberToObject(o, "fma_peak_gflops", f->fma_gflops);
  if (f->bf16_gflops > 0)
    cJSON_AddNumberToObject(o, "bf16_dot_peak_gflops", f->bf16_gflops);
  else
    cJSON_AddNullToObject(o, "bf16_dot_peak_gflops");
  if (f->int8_gops > 0)
    cJSON_AddNumberToObject(o, "int8_dot_peak_gops", f->int8_gops);
  else
    cJSON_AddNullToObject(o, "int8_dot_peak_gops");
  cJSON_AddStringToObject(o, "int8_dot", rt_int8_dot_name());
  cJSON_AddNumberToObject(o, "weights_s", f->weights_s);
  cJSON_AddNumberToObject(o, "passes_s", f->passes_s);
  cJSON_AddNumberToObject(o, "jit_compile_s", f->compile_s);
  cJSON_AddNumberToObject(o, "pack_weights_s", f->pack_s);
  cJSON_AddNumberToObject(o, "matmul_params", f->matmul_params);
  cJSON_AddNumberToObject(o, "weight_bytes_per_token", f->weight_bytes_token);
  cJSON *pre = cJSON_AddArrayToObject(o, "prefill"), *dec = cJSON_AddArrayToObject(o, "decode");
  for (int j = 0; j < N_PREFILL; j++) {
    cJSON *r = cJSON_CreateObject();
    double roof = prefill_peak(f) * 1e9 / f->prefill_flops_token[j];
    cJSON_AddNumberToObject(r, "tokens", (double)f->prefill_tokens[j]);
    cJSON_AddNumberToObject(r, "tok_s", f->prefill_tok_s[j]);
    cJSON_AddNumberToObject(r, "flops_per_token", f->prefill_flops_token[j]);
    cJSON_AddNumberToObject(r, "roofline_tok_s", roof);
    cJSON_AddNumberToObject(r, "fraction", f->prefill_tok_s[j] / roof);
    if (f->q8 && f->int8_gops > 0) {
      double roof8 = f->int8_gops * 1e9 / f->prefill_flops_token[j];
      cJSON_AddNumberToObject(r, "int8_roofline_tok_s", roof8);
      cJSON_AddNumberToObject(r, "int8_fraction", f->prefill_tok_s[j] / roof8);
    } else if (f->q8) {
      cJSON_AddNullToObject(r, "int8_roofline_tok_s");
      cJSON_AddNullToObject(r, "int8_fraction");
    }
    cJSON_AddItemToArray(pre, r);
  }
  for (int i = 0; i < N_DECODE; i++) {
    cJSON *r = cJSON_CreateObject();
    double roof = f->bandwidth_gbs * 1e9 / f->weight_bytes_token;
    cJSON_AddNumberToObject(r, "position", (double)f->decode_position[i]);
    cJSON_AddNumberToObject(r, "tok_s", f->decode_tok_s[i]);
    cJSON_AddNumberToObject(r, "roofline_tok_s", roof);
    cJSON_AddNumberToObject(r, "fraction", f->decode_tok_s[i] / roof);
    cJSON_AddItemToArray(dec, r);
  }
  return o;
}

/* Prints and frees o; lost: a node was lost to memory (its key dropped). */
static int print_json(cJSON *o, bool lost, oc_error *e) {
  char *text = o && !lost ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!text)
    return oc_fail(e, "out of memory");
  printf("%s\n", text);
  cJSON_free(text);
  return 0;
}

/* The weights bench makes: f32 unless bf16 is asked for (--dtype bf16, or
 * --compute bf16 alone), and for q8 bf16 where they are not quantized
 * (embedding, norms). */
static int bench_dtype(const drv_config *cfg, ir_dtype *dtype, bool *q8, oc_error *e) {
  ir_dtype made = cfg->weights == DRV_AS_STORED || cfg->weights == DRV_F32 ? IR_F32 : IR_BF16;
  return drv_weights_dtype(cfg, made, true, dtype, q8, e);
}

static int bench(const char *model, const char *dtype_name, const drv_config *cfg, bool json, bool profile,
                 bool quiet, oc_error *e) {
  olmo2_config c;
  ir_dtype dtype;
  bool q8;
  int threads = cfg->threads;
  if (bench_dtype(cfg, &dtype, &q8, e) || olmo2_config_load(model, &c, e))
    return -1;
  dtype_name = q8 ? dtype_name : ir_dtype_name(dtype); /* --compute bf16 alone makes bf16 */
  int64_t ctx = c.max_position_embeddings < 2048 + DECODE_STEPS ? c.max_position_embeddings
                                                                 : 2048 + DECODE_STEPS;
  int64_t max_tokens = ctx < 512 ? ctx : 512;
  if (ctx <= DECODE_STEPS)
    return oc_fail(e, "%s: a context of %lld positions is too short to bench", model,
                   (long long)ctx);
  figures f = {.target = cfg->target, .bf16_compute = cfg->bf16_compute, .kv_bf16 = cfg->kv_bf16, .q8 = q8};
  ir_graph *g = NULL;
  cg_jit *jit = NULL;
  rt_program *prog = NULL;
  bench_weights ws = {0};
  int32_t *tokens = NULL;
  pass_result r = {0};
  bool have_r = false;
  int rc = -1;
  if (olmo2_build_graph(&c, dtype, &g, e) || drv_jit_new(cfg, q8, &jit, e)) /* refused before minutes of probing */
    goto done;
  if (!json && !quiet)
    fprintf(stderr, "probing the machine...\n");
  if (probe(threads, &f, e))
    goto done;
  double t0 = rt_seconds();
  if (make_weights(g, q8 ? jit : NULL, &ws, threads, cfg->progress, e))
    goto done;
  f.weights_s = rt_seconds() - t0;
  for (int i = 0; i < ws.n; i++) {
    const bench_weight *w = &ws.w[i];
    bool embed = strstr(w->name, "embed_tokens") != NULL;
    if (w->t.rank == 2 && !embed)
      f.matmul_params += (double)(w->t.dims[0] * w->t.dims[1]);
    /* a decoded token reads every weight once, but only its row of the embedding */
    f.weight_bytes_token += embed ? (double)w->bytes / (double)w->t.dims[0] : (double)w->bytes;
  }
  if (c.tie_word_embeddings) {
    f.matmul_params += (double)(c.vocab_size * c.hidden_size);
    f.weight_bytes_token += q8 ? (double)cg_packed_bytes(jit, IR_I8, c.vocab_size, c.hidden_size)
                               : (double)(c.vocab_size * c.hidden_size) * (double)ir_dtype_size(dtype);
  }
  for (int j = 0; j < N_PREFILL; j++) {
    f.prefill_tokens[j] = prefill_T[j] < max_tokens ? prefill_T[j] : max_tokens;
    f.prefill_flops_token[j] = flops_per_token(&c, f.matmul_params, f.prefill_tokens[j]);
  }
  if (!json && !quiet)
    fprintf(stderr, "compiling...\n");
  t0 = rt_seconds();
  if (drv_run_passes(cfg, g, max_tokens, ctx, true, &r, e))
    goto done;
  have_r = true;
  f.passes_s = rt_seconds() - t0;
  if (!r.planned) {
    oc_fail(e, "the -O2 pipeline did not plan memory");
    goto done;
  }
  t0 = rt_seconds();
  /* quantized matrices are made packed (make_weights): there is nothing to place */
  if ((!q8 && drv_place_weights(cfg, jit, g, &r.plan, ctx, lookup, &ws, e)) ||
      cg_lower(jit, g, &r.plan, ctx, lookup, &ws, &prog, e))
    goto done;
  f.compile_s = cg_jit_compile_seconds(jit);
  f.pack_s = rt_seconds() - t0 - f.compile_s;
  if (!json && !quiet)
    fprintf(stderr, "running...\n");
  if (!(tokens = malloc((size_t)max_tokens * sizeof *tokens))) {
    oc_fail(e, "out of memory");
    goto done;
  }
  for (int64_t i = 0; i < max_tokens; i++)
    tokens[i] = (int32_t)((i * 7919 + 11) % c.vocab_size);
  if (measure(prog, ctx, max_tokens, tokens, threads, &f, e) || probe(threads, &f, e))
    goto done;
  long huge_kib = rt_anon_huge_kib();
  if (json) {
    unsigned long failures = oc_alloc_failures(); /* a node lost to memory drops its key */
    cJSON *o = figures_json(model, dtype_name, threads, &f, huge_kib);
    rc = profile && o ? bench_profile(prog, tokens, max_tokens, DECODE_STEPS, threads, o, e) : 0;
    rc = rc ? (cJSON_Delete(o), -1) : print_json(o, oc_alloc_failures() != failures, e);
  } else {
    print_table(model, dtype_name, threads, &f, huge_kib);
    rc = profile ? bench_profile(prog, tokens, max_tokens, DECODE_STEPS, threads, NULL, e) : 0;
  }
done:
  free(tokens);
  if (have_r)
    pass_result_free(&r);
  rt_program_free(prog);
  cg_jit_free(jit);
  free_weights(&ws);
  ir_graph_free(g);
  return rc;
}

int cmd_bench(int argc, char **argv) {
  const char *model = NULL;
  drv_request r = {0};
  bool json = false, profile = false, quiet = false;
  const cli_option opts[] = {
      CLI_OPT_STRING("-m", "--model", &model),
      CLI_OPT_STRING(NULL, "--dtype", &r.dtype),
      CLI_OPT_INT("-t", "--threads", &r.threads, 1, 1024, NULL),
      CLI_OPT_FLAG(NULL, "--json", &json),
      CLI_OPT_FLAG(NULL, "--profile", &profile),
      CLI_OPT_STRING(NULL, "--target", &r.target),
      CLI_OPT_STRING(NULL, "--pack-weights", &r.pack_weights),
      CLI_OPT_STRING(NULL, "--compute", &r.compute),
      CLI_OPT_STRING(NULL, "--kv-cache", &r.kv_cache),
      CLI_OPT_FLAG("-q", "--quiet", &quiet),
      {0},
  };
  oc_error e = {{0}};
  drv_config c;
  oc_progress_bar bar;
  int parsed = cli_parse(argc, argv, opts, NULL, &e);
  r.progress = oc_progress_stderr(&bar, quiet); /* after parsing: -q decides */
  if (!parsed && !model)
    parsed = oc_fail(&e, "-m MODEL is required");
  if (!parsed) /* usage errors, before minutes of probing */
    parsed = cli_configure("bench", &r, DRV_JIT, &c, &e);
  return cli_exit("bench", usage, parsed,
                  !parsed && bench(model, r.dtype, &c, json, profile, quiet, &e), &e);
}
