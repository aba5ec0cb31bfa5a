/* A program as lowering or unpacking builds it: the activation arena, the KV
 * caches, the tables and scratch buffers it owns, its steps and output, and
 * what the executor and its readers ask of it. No OpenMP here (executor.c
 * runs it), so that the fuzzed program reader links without it.
 * Invariant: everything a program points at that it allocated, it frees. */
#include <stdlib.h>
#include <string.h>

#include "executor_internal.h"
#include "olmoc/alloc.h"
#include "olmoc/pack.h"

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
int64_t rt_program_ctx(const rt_program *p) { return p->ctx; }
int64_t rt_program_max_tokens(const rt_program *p) { return p->max_tokens; }
int64_t rt_program_steps(const rt_program *p) { return p->n_steps; }
const rt_step *rt_program_step(const rt_program *p, int64_t i) { return &p->steps[i]; }
void rt_program_set_kernel(rt_program *p, int64_t i, void *fn, const rt_kernel_contract *contract) {
  p->steps[i].fn = fn;
  p->steps[i].contract = contract;
}
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
