/* The plan executor: runs a program's steps in one OpenMP parallel region
 * per call (program.c builds the program it runs).
 * Invariant: thread i of n computes the contiguous slice [w*i/n, w*(i+1)/n) of
 * each step's work (rounded to the grain), every work item is computed by the
 * same kernel code whatever the slice, and a barrier separates the steps, so
 * the output does not depend on the thread count. */
#include <omp.h>
#include <string.h>

#include "executor_internal.h"
#include "olmoc/weights.h"

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

void *rt_program_arg_address(const rt_program *p, const rt_arg *a, int64_t P) {
  return a->kind == RT_ARG_TOKENS && !p->tokens ? NULL : addr(p, a, P);
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

void rt_step_invoke(const rt_step *s, void *const *a, int64_t T, int64_t P, int64_t ctx, int64_t r0,
                    int64_t r1) {
  int64_t rows = count(s->rows, T, P);
  switch (s->call) {
  case RT_CALL_MATMUL: ((matmul_fn *)s->fn)(a[0], a[1], a[2], 0, rows, r0, r1); break;
  case RT_CALL_MATMUL3: ((matmul3_fn *)s->fn)(a[0], a[1], a[2], a[3], 0, rows, r0, r1); break;
  case RT_CALL_GATHER: ((gather_fn *)s->fn)(a[0], a[1], a[2], r0, r1); break;
  case RT_CALL_ATTENTION: ((attention_fn *)s->fn)(a[0], a[1], a[2], a[3], T, P, ctx, r0, r1); break;
  case RT_CALL_SHAPED: ((shaped_fn *)s->fn)(a, T, P, r0, r1); break;
  case RT_CALL_RANGE:
    switch (s->n_args) {
    case 2: ((range2_fn *)s->fn)(a[0], a[1], r0, r1); break;
    case 3: ((range3_fn *)s->fn)(a[0], a[1], a[2], r0, r1); break;
    case 4: ((range4_fn *)s->fn)(a[0], a[1], a[2], a[3], r0, r1); break;
    default: ((range5_fn *)s->fn)(a[0], a[1], a[2], a[3], a[4], r0, r1); break;
    }
    break;
  case RT_CALL_KV_APPEND: case RT_CALL_POSITIONS: break; /* built in: call() runs them */
  }
}

/* Work items [r0, r1) of step s. */
static void call(const rt_program *p, const rt_step *s, int64_t T, int64_t P, int64_t r0, int64_t r1) {
  void *a[RT_MAX_ARGS];
  for (int i = 0; i < s->n_args; i++)
    a[i] = addr(p, &s->arg[i], P);
  if (s->call == RT_CALL_KV_APPEND)
    kv_append(p, s, a[0], s->arg[1].offset, P, r0, r1);
  else if (s->call == RT_CALL_POSITIONS)
    for (int64_t r = r0; r < r1; r++)
      ((int32_t *)a[s->n_args - 1])[r] = (int32_t)(P + r);
  else
    rt_step_invoke(s, a, T, P, p->ctx, r0, r1);
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
