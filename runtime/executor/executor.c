/* The plan executor: owns the activation arena, the KV caches, the tables and
 * the scratch pack of weights a program needs, and runs the steps in one
 * OpenMP parallel region per call.
 * Invariant: thread i of n computes the contiguous slice [w*i/n, w*(i+1)/n) of
 * each step's work (rounded to the grain), every work item is computed by the
 * same kernel code whatever the slice, and a barrier separates the steps, so
 * the output does not depend on the thread count. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "executor_internal.h"
#include "olmoc/alloc.h"
#include "olmoc/pack.h"
#include "olmoc/weights.h"

/* bytes of oc_huge_alloc memory, kept in b. */
static void *keep(rt_buffers *b, size_t bytes, oc_error *e) {
  void **mem = oc_realloc(b->mem, (size_t)(b->n + 1) * sizeof *mem);
  if (mem)
    b->mem = mem;
  size_t *sizes = oc_realloc(b->bytes, (size_t)(b->n + 1) * sizeof *sizes);
  if (sizes)
    b->bytes = sizes;
  void *m = mem && sizes ? oc_huge_alloc(bytes) : NULL;
  if (!m) {
    oc_fail(e, "out of memory for %zu bytes", bytes);
    return NULL;
  }
  b->bytes[b->n] = bytes;
  b->mem[b->n++] = m;
  return m;
}

static void free_buffers(rt_buffers *b) {
  for (int64_t i = 0; i < b->n; i++)
    free(b->mem[i]);
  free(b->mem);
  free(b->bytes);
}

int rt_program_new(int64_t arena_bytes, int64_t max_tokens, int64_t ctx, rt_program **out,
                   oc_error *e) {
  *out = NULL;
  if (arena_bytes < 0 || ctx < 1 || max_tokens < 1)
    return oc_fail(e, "a program needs an arena of >= 0 bytes, calls of >= 1 token and a context "
                   "of >= 1 position");
  rt_program *p = oc_calloc(1, sizeof *p);
  if (!p || !(p->arena = oc_huge_alloc((size_t)arena_bytes))) {
    free(p);
    return oc_fail(e, "out of memory for an activation arena of %lld bytes", (long long)arena_bytes);
  }
  p->arena_bytes = arena_bytes;
  p->max_tokens = max_tokens;
  p->ctx = ctx;
  *out = p;
  return 0;
}

void rt_program_free(rt_program *p) {
  if (!p)
    return;
  for (int64_t i = 0; i < p->n_caches; i++)
    free(p->caches[i]);
  free_buffers(&p->owned);
  free_buffers(&p->scratch);
  rt_pack_abandon(p->pack);
  free(p->caches);
  free(p->cache_row);
  free(p->cache_bf16);
  free(p->steps);
  free(p->step_seconds);
  free(p->arena);
  free(p);
}

int rt_program_add_cache(rt_program *p, int64_t row_floats, bool bf16, int64_t *index, oc_error *e) {
  size_t value = bf16 ? sizeof(uint16_t) : sizeof(float);
  if (row_floats < 1 || row_floats > INT64_MAX / 4 / p->ctx)
    return oc_fail(e, "a KV cache of %lld positions of %lld values is too large", (long long)p->ctx,
                   (long long)row_floats);
  void **caches = oc_realloc(p->caches, (size_t)(p->n_caches + 1) * sizeof *caches);
  if (caches)
    p->caches = caches;
  int64_t *rows = oc_realloc(p->cache_row, (size_t)(p->n_caches + 1) * sizeof *rows);
  if (rows)
    p->cache_row = rows;
  bool *dtypes = oc_realloc(p->cache_bf16, (size_t)(p->n_caches + 1) * sizeof *dtypes);
  if (dtypes)
    p->cache_bf16 = dtypes;
  void *c = caches && rows && dtypes ? oc_small_page_alloc((size_t)(p->ctx * row_floats) * value) : NULL;
  if (!c)
    return oc_fail(e, "out of memory for a KV cache of %lld positions of %lld %s values",
                   (long long)p->ctx, (long long)row_floats, bf16 ? "bf16" : "f32");
  p->caches[p->n_caches] = c;
  p->cache_row[p->n_caches] = row_floats;
  p->cache_bf16[p->n_caches] = bf16;
  *index = p->n_caches++;
  return 0;
}

void *rt_program_alloc(rt_program *p, size_t bytes, oc_error *e) { return keep(&p->owned, bytes, e); }
void *rt_program_scratch(rt_program *p, size_t bytes, oc_error *e) { return keep(&p->scratch, bytes, e); }
void rt_program_own_pack(rt_program *p, rt_pack_writer *w) { p->pack = w; }

int rt_program_add_step(rt_program *p, const rt_step *s, oc_error *e) {
  if (s->n_args < 1 || s->n_args > RT_MAX_ARGS || (!s->fn && s->call != RT_CALL_KV_APPEND &&
                                                     s->call != RT_CALL_POSITIONS))
    return oc_fail(e, "step %s: %d arguments, kernel %p", s->what ? s->what : "?", s->n_args, s->fn);
  for (int i = 0; i < s->n_args; i++)
    if (s->arg[i].kind == RT_ARG_CACHE && (s->arg[i].offset < 0 || s->arg[i].offset >= p->n_caches))
      return oc_fail(e, "step %s: argument %d names KV cache %lld of %lld", s->what, i,
                     (long long)s->arg[i].offset, (long long)p->n_caches);
  if (s->call == RT_CALL_KV_APPEND && (s->n_args != 2 || s->arg[1].kind != RT_ARG_CACHE))
    return oc_fail(e, "step %s: kv_append writes to a KV cache, its second argument", s->what);
  if (s->call == RT_CALL_KV_APPEND &&
      (s->row_floats != p->cache_row[s->arg[1].offset] || s->kv_heads < 0 ||
       (s->kv_heads && s->row_floats % s->kv_heads)))
    return oc_fail(e, "step %s: rows of %lld values in %lld heads do not fit KV cache %lld (rows of %lld)",
                   s->what, (long long)s->row_floats, (long long)s->kv_heads, (long long)s->arg[1].offset,
                   (long long)p->cache_row[s->arg[1].offset]);
  if (p->n_steps == p->cap_steps) {
    int64_t cap = p->cap_steps ? 2 * p->cap_steps : 64;
    rt_step *grown = oc_realloc(p->steps, (size_t)cap * sizeof *grown);
    if (!grown)
      return oc_fail(e, "out of memory for the program's steps");
    p->steps = grown;
    p->cap_steps = cap;
  }
  p->steps[p->n_steps] = *s;
  if (p->steps[p->n_steps].grain < 1)
    p->steps[p->n_steps].grain = 1;
  p->n_steps++;
  return 0;
}

void rt_program_set_output(rt_program *p, rt_arg logits, int64_t cols, int64_t vocab) {
  p->output = logits;
  p->out_cols = cols;
  p->vocab = vocab;
}

int64_t rt_program_position(const rt_program *p) { return p->P; }
int64_t rt_program_steps(const rt_program *p) { return p->n_steps; }
const rt_step *rt_program_step(const rt_program *p, int64_t i) { return &p->steps[i]; }
void rt_program_set_kernel(rt_program *p, int64_t i, void *fn) { p->steps[i].fn = fn; }
const double *rt_program_step_seconds(const rt_program *p) { return p->step_seconds; }

int rt_program_set_profiling(rt_program *p, bool on, oc_error *e) {
  free(p->step_seconds);
  p->step_seconds = on ? oc_calloc((size_t)p->n_steps + 1, sizeof *p->step_seconds) : NULL;
  return on && !p->step_seconds ? oc_fail(e, "out of memory for the profile") : 0;
}

void rt_program_rewind(rt_program *p, int64_t P) {
  if (P >= 0 && P < p->P)
    p->P = P;
}

int rt_default_threads(void) { return omp_get_num_procs(); }

static int64_t count(rt_count c, int64_t T, int64_t P) { return c.c + c.t * T + c.p * P; }

static void *addr(const rt_program *p, const rt_arg *a, int64_t P) {
  unsigned char *base = NULL;
  switch (a->kind) {
  case RT_ARG_ARENA: base = p->arena + a->offset; break;
  case RT_ARG_PTR: base = (unsigned char *)a->ptr; break;
  case RT_ARG_CACHE: base = (unsigned char *)p->caches[a->offset]; break;
  case RT_ARG_TOKENS: base = (unsigned char *)p->tokens; break;
  }
  return base + P * a->p_stride;
}

typedef void range2_fn(const float *, float *, int64_t, int64_t);
typedef void range3_fn(const float *, const float *, float *, int64_t, int64_t);
typedef void range4_fn(const float *, const float *, const float *, float *, int64_t, int64_t);
typedef void range5_fn(const float *, const float *, const float *, const float *, float *, int64_t,
                       int64_t);
typedef void matmul_fn(const float *, const void *, float *, int64_t, int64_t, int64_t, int64_t);
typedef void matmul3_fn(const float *, const void *, const void *, float *, int64_t, int64_t,
                        int64_t, int64_t);
typedef void gather_fn(const void *, const int32_t *, float *, int64_t, int64_t);
typedef void attention_fn(const float *, const float *, const float *, float *, int64_t, int64_t,
                          int64_t, int64_t, int64_t);
typedef void shaped_fn(void *const *, int64_t, int64_t, int64_t, int64_t);

/* n values of src into a cache at element `at`: copied, or rounded to bf16
 * (nearest even; NaN stays NaN). */
static void store(void *cache, bool bf16, int64_t at, const float *src, int64_t n) {
  if (!bf16) {
    memcpy((float *)cache + at, src, (size_t)n * sizeof(float));
    return;
  }
  uint16_t *to = (uint16_t *)cache + at;
  for (int64_t i = 0; i < n; i++)
    to[i] = rt_bf16_round(src[i]);
}

/* Rows r0..r1 of src to cache `index` at positions P+r0.. (rt_step's kv_heads). */
static void kv_append(const rt_program *p, const rt_step *s, const float *src, int64_t index, int64_t P,
                      int64_t r0, int64_t r1) {
  int64_t row = s->row_floats;
  void *cache = p->caches[index];
  bool bf16 = p->cache_bf16[index];
  if (!s->kv_heads) {
    store(cache, bf16, (P + r0) * row, src + r0 * row, (r1 - r0) * row);
    return;
  }
  int64_t D = row / s->kv_heads;
  for (int64_t r = r0; r < r1; r++)
    for (int64_t g = 0; g < s->kv_heads; g++)
      store(cache, bf16, (g * p->ctx + P + r) * D, src + r * row + g * D, D);
}

/* Work items [r0, r1) of step s. */
static void call(const rt_program *p, const rt_step *s, int64_t T, int64_t P, int64_t r0, int64_t r1) {
  void *a[RT_MAX_ARGS];
  for (int i = 0; i < s->n_args; i++)
    a[i] = addr(p, &s->arg[i], P);
  int64_t rows = count(s->rows, T, P);
  switch (s->call) {
  case RT_CALL_MATMUL: ((matmul_fn *)s->fn)(a[0], a[1], a[2], 0, rows, r0, r1); break;
  case RT_CALL_MATMUL3: ((matmul3_fn *)s->fn)(a[0], a[1], a[2], a[3], 0, rows, r0, r1); break;
  case RT_CALL_GATHER: ((gather_fn *)s->fn)(a[0], a[1], a[2], r0, r1); break;
  case RT_CALL_ATTENTION: ((attention_fn *)s->fn)(a[0], a[1], a[2], a[3], T, P, p->ctx, r0, r1); break;
  case RT_CALL_SHAPED: ((shaped_fn *)s->fn)(a, T, P, r0, r1); break;
  case RT_CALL_RANGE:
    switch (s->n_args) {
    case 2: ((range2_fn *)s->fn)(a[0], a[1], r0, r1); break;
    case 3: ((range3_fn *)s->fn)(a[0], a[1], a[2], r0, r1); break;
    case 4: ((range4_fn *)s->fn)(a[0], a[1], a[2], a[3], r0, r1); break;
    default: ((range5_fn *)s->fn)(a[0], a[1], a[2], a[3], a[4], r0, r1); break;
    }
    break;
  case RT_CALL_KV_APPEND: kv_append(p, s, a[0], s->arg[1].offset, P, r0, r1); break;
  case RT_CALL_POSITIONS:
    for (int64_t r = r0; r < r1; r++)
      ((int32_t *)a[s->n_args - 1])[r] = (int32_t)(P + r);
    break;
  }
}

/* Thread `id` of n's slice of [0, w), its bounds multiples of grain (but w). */
static void slice(int64_t w, int64_t grain, int id, int n, int64_t *r0, int64_t *r1) {
  int64_t chunks = (w + grain - 1) / grain;
  *r0 = chunks * id / n * grain;
  *r1 = chunks * (id + 1) / n * grain;
  *r0 = *r0 < w ? *r0 : w;
  *r1 = *r1 < w ? *r1 : w;
}

const float *rt_program_run(rt_program *p, const int32_t *tokens, int64_t T, int threads,
                            oc_error *e) {
  if (T < 1) {
    oc_fail(e, "a call needs at least one token, found T = %lld", (long long)T);
    return NULL;
  }
  if (T > p->ctx - p->P) {
    oc_fail(e, "context full: P + T = %lld + %lld = %lld exceeds the %lld positions of the KV "
            "cache (reset to start over)", (long long)p->P, (long long)T, (long long)(p->P + T),
            (long long)p->ctx);
    return NULL;
  }
  if (T > p->max_tokens) {
    oc_fail(e, "%lld tokens in one call exceed the %lld the memory plan allows", (long long)T,
            (long long)p->max_tokens);
    return NULL;
  }
  for (int64_t i = 0; i < T; i++)
    if (tokens[i] < 0 || tokens[i] >= p->vocab) {
      oc_fail(e, "token id %d is outside the model's vocabulary of %lld", tokens[i],
              (long long)p->vocab);
      return NULL;
    }
  p->tokens = tokens;
  int64_t P = p->P;
  const rt_program *prog = p;
#pragma omp parallel num_threads(threads > 0 ? threads : rt_default_threads())
  {
    int id = omp_get_thread_num(), n = omp_get_num_threads();
    double *seconds = id == 0 ? prog->step_seconds : NULL, t = seconds ? omp_get_wtime() : 0;
    for (int64_t i = 0; i < prog->n_steps; i++) {
      const rt_step *s = &prog->steps[i];
      int64_t r0, r1;
      slice(count(s->work, T, P), s->grain, id, n, &r0, &r1);
      if (r0 < r1)
        call(prog, s, T, P, r0, r1);
#pragma omp barrier
      if (seconds) {
        double now = omp_get_wtime();
        seconds[i] += now - t;
        t = now;
      }
    }
  }
  p->tokens = NULL;
  p->P += T;
  return addr(p, &p->output, P);
}
