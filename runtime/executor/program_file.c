/* An executor program to and from its packed section (olmoc/aot.h). The
 * record, all little-endian (bytes.h):
 *
 *   u32 n_kernels, then each kernel's symbol (str)
 *   i64 arena_bytes, max_tokens, ctx
 *   u32 n_caches, then per cache: i64 values per row, u32 1 when they are bf16 (else f32)
 *   u32 n_scratch, then each scratch buffer's bytes (i64)
 *   u32 n_steps, then per step: u32 call, u32 kernel (~0: built in), u32 n_args, str what,
 *       n_args x arg, work and rows (3 x i64 each: c, t, p), i64 grain, i64 row_floats, i64 kv_heads,
 *       i64 layer
 *   arg output, i64 out_cols, i64 vocab
 *
 * where an arg is u32 kind, u32 section (buffer pointers; a scratch buffer's
 * number), i64 offset (into the arena, the section or the scratch buffer;
 * the cache's number), i64 p_stride. The kind is an rt_arg_kind, or
 * ARG_SCRATCH for a pointer into a scratch buffer (rt_program_scratch):
 * memory the steps write, so it is recorded by size only and allocated again
 * by unpacking, as lowering allocated it. Invariant of unpacking: every
 * kernel is the binary's own, and the program passes rt_program_check
 * against the contracts the binary carries for them: no step touches memory
 * outside its buffers for any call the program accepts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "olmoc/bytes.h"
#include "executor_internal.h"
#include "olmoc/alloc.h"
#include "olmoc/aot.h"

#define NO_KERNEL UINT32_MAX
#define ARG_SCRATCH 16u /* in the file only: becomes an RT_ARG_PTR into the scratch buffer */

/* ---- packing ---- */

typedef struct packer {
  const rt_program *p;
  rt_pack_writer *w;
  const rt_kernel_symbol *kernels;
  int n_kernels;
  int *used;   /* [n_kernels]: index in the program's list, or -1 */
  int n_used;
} packer;

/* Whether ptr lies in one of p's scratch buffers: which, and where in it. */
static bool in_scratch(const rt_program *p, const void *ptr, int *index, uint64_t *offset) {
  for (int64_t i = 0; i < p->scratch.n; i++) {
    const unsigned char *base = p->scratch.mem[i], *at = ptr;
    if (at >= base && at < base + p->scratch.bytes[i]) {
      *index = (int)i;
      *offset = (uint64_t)(at - base);
      return true;
    }
  }
  return false;
}

static int put_arg(const packer *k, rt_bytes *b, const rt_arg *a, const char *what, oc_error *e) {
  int section = 0;
  uint32_t kind = (uint32_t)a->kind;
  uint64_t offset = (uint64_t)a->offset;
  if (a->kind == RT_ARG_PTR && in_scratch(k->p, a->ptr, &section, &offset))
    kind = ARG_SCRATCH;
  else if (a->kind == RT_ARG_PTR && rt_pack_resolve(k->w, a->ptr, what, &section, &offset, e))
    return oc_wrap(e, "step %s", what);
  rt_bytes_u32(b, kind);
  rt_bytes_u32(b, (uint32_t)section);
  rt_bytes_i64(b, (int64_t)offset);
  rt_bytes_i64(b, a->p_stride);
  return 0;
}

static void put_count(rt_bytes *b, rt_count c) {
  rt_bytes_i64(b, c.c);
  rt_bytes_i64(b, c.t);
  rt_bytes_i64(b, c.p);
}

/* The program's own index of the kernel at fn, adding it on first use. */
static int kernel_of(packer *k, const rt_step *s, uint32_t *index, oc_error *e) {
  *index = NO_KERNEL;
  if (!s->fn)
    return 0;
  for (int i = 0; i < k->n_kernels; i++)
    if (k->kernels[i].fn == s->fn) {
      if (k->used[i] < 0)
        k->used[i] = k->n_used++;
      *index = (uint32_t)k->used[i];
      return 0;
    }
  return oc_fail(e, "step %s: its kernel is not among the %d compiled ones", s->what, k->n_kernels);
}

/* The steps, then the output: what follows the header in the record. */
static int put_steps(packer *k, const rt_program *p, rt_bytes *b, oc_error *e) {
  rt_bytes_u32(b, (uint32_t)p->n_steps);
  for (int64_t i = 0; i < p->n_steps; i++) {
    const rt_step *s = &p->steps[i];
    uint32_t kernel;
    if (kernel_of(k, s, &kernel, e))
      return -1;
    rt_bytes_u32(b, (uint32_t)s->call);
    rt_bytes_u32(b, kernel);
    rt_bytes_u32(b, (uint32_t)s->n_args);
    rt_bytes_str(b, s->what);
    for (int a = 0; a < s->n_args; a++)
      if (put_arg(k, b, &s->arg[a], s->what, e))
        return -1;
    put_count(b, s->work);
    put_count(b, s->rows);
    rt_bytes_i64(b, s->grain);
    rt_bytes_i64(b, s->row_floats);
    rt_bytes_i64(b, s->kv_heads);
    rt_bytes_i64(b, s->layer);
  }
  if (put_arg(k, b, &p->output, "output", e))
    return -1;
  rt_bytes_i64(b, p->out_cols);
  rt_bytes_i64(b, p->vocab);
  return 0;
}

int rt_program_pack(const rt_program *p, rt_pack_writer *w, const rt_kernel_symbol *kernels,
                    int n_kernels, oc_error *e) {
  for (int64_t i = 0; i < p->owned.n; i++) {
    char name[64];
    int index;
    snprintf(name, sizeof name, "program table %lld", (long long)i);
    if (rt_pack_add(w, RT_PACK_BUFFER, name, p->owned.mem[i], p->owned.bytes[i], &index, e) ||
        rt_pack_note(w, p->owned.mem[i], p->owned.bytes[i], index, e))
      return -1;
  }
  packer k = {.p = p, .w = w, .kernels = kernels, .n_kernels = n_kernels};
  if (!(k.used = oc_malloc((size_t)(n_kernels + 1) * sizeof *k.used)))
    return oc_fail(e, "out of memory packing the program");
  for (int i = 0; i < n_kernels; i++)
    k.used[i] = -1;
  rt_bytes steps = {0}, head = {0};
  int rc = put_steps(&k, p, &steps, e);
  /* the kernels lead the record, in the order put_steps numbered them */
  rt_bytes_u32(&head, (uint32_t)k.n_used);
  for (int u = 0; u < k.n_used; u++)
    for (int i = 0; i < n_kernels; i++)
      if (k.used[i] == u)
        rt_bytes_str(&head, kernels[i].name);
  rt_bytes_i64(&head, p->arena_bytes);
  rt_bytes_i64(&head, p->max_tokens);
  rt_bytes_i64(&head, p->ctx);
  rt_bytes_u32(&head, (uint32_t)p->n_caches);
  for (int64_t i = 0; i < p->n_caches; i++) {
    rt_bytes_i64(&head, p->cache_row[i]);
    rt_bytes_u32(&head, p->cache_bf16[i]);
  }
  rt_bytes_u32(&head, (uint32_t)p->scratch.n);
  for (int64_t i = 0; i < p->scratch.n; i++)
    rt_bytes_i64(&head, (int64_t)p->scratch.bytes[i]);
  rt_bytes_put(&head, steps.p, steps.n);
  if (!rc && (head.oom || steps.oom))
    rc = oc_fail(e, "out of memory packing the program");
  if (!rc)
    rc = rt_pack_add(w, RT_PACK_PROGRAM, "program", head.p, head.n, NULL, e);
  rt_bytes_free(&head);
  rt_bytes_free(&steps);
  free(k.used);
  return rc ? -1 : 0;
}

/* ---- unpacking ---- */

typedef struct unpacker {
  rt_reader r;
  const rt_program *p; /* the program being rebuilt: its scratch buffers */
  const rt_pack *pack;
  const char *source;
  int64_t ctx, arena_bytes;
} unpacker;

static int get_arg(unpacker *u, rt_arg *a, const char *what, oc_error *e) {
  uint32_t kind = rt_read_u32(&u->r), section = rt_read_u32(&u->r);
  int64_t offset = rt_read_i64(&u->r), stride = rt_read_i64(&u->r);
  *a = (rt_arg){.kind = (rt_arg_kind)kind, .offset = offset, .p_stride = stride};
  bool ok = !u->r.bad && stride >= 0 && offset >= 0;
  switch (kind) {
  case RT_ARG_ARENA: ok &= offset <= u->arena_bytes && !stride; break;
  case RT_ARG_CACHE: case RT_ARG_TOKENS: ok &= !stride; break; /* the cache number: add_step checks it */
  case RT_ARG_PTR: {
    ok &= section < (uint32_t)rt_pack_count(u->pack);
    const rt_pack_section *s = ok ? rt_pack_section_at(u->pack, (int)section) : NULL;
    ok &= s && s->kind == RT_PACK_BUFFER && (uint64_t)offset <= s->bytes;
    if (ok) {
      a->ptr = (const unsigned char *)rt_pack_data(u->pack, (int)section) + offset;
      a->room = s->bytes - (uint64_t)offset;
    }
    break;
  }
  case ARG_SCRATCH: /* a pointer into a scratch buffer unpacking allocated */
    ok &= !stride && section < (uint64_t)u->p->scratch.n && (uint64_t)offset <= u->p->scratch.bytes[section];
    if (ok)
      *a = (rt_arg){.kind = RT_ARG_PTR, .ptr = (unsigned char *)u->p->scratch.mem[section] + offset,
                    .room = u->p->scratch.bytes[section] - (uint64_t)offset, .writable = true};
    break;
  default: ok = false;
  }
  return ok ? 0 : oc_fail(e, "%s: program step %s: an argument lies outside its memory: the file "
                          "is damaged", u->source, what);
}

static rt_count get_count(rt_reader *r) {
  rt_count c;
  c.c = rt_read_i64(r), c.t = rt_read_i64(r), c.p = rt_read_i64(r);
  return c;
}

static int get_step(unpacker *u, const rt_kernel_symbol *const *fns, uint32_t n_fns, rt_step *s, oc_error *e) {
  uint32_t call = rt_read_u32(&u->r), kernel = rt_read_u32(&u->r), n_args = rt_read_u32(&u->r);
  *s = (rt_step){.call = (rt_call)call, .n_args = (int)n_args, .what = "?"};
  if (u->r.bad || call > RT_CALL_SHAPED || n_args < 1 || n_args > RT_MAX_ARGS ||
      (kernel != NO_KERNEL && kernel >= n_fns) ||
      ((kernel == NO_KERNEL) != (call == RT_CALL_KV_APPEND || call == RT_CALL_POSITIONS)))
    return oc_fail(e, "%s: a program step is malformed: the file is damaged", u->source);
  if (kernel != NO_KERNEL) {
    s->fn = fns[kernel]->fn;
    s->contract = &fns[kernel]->contract;
  }
  s->what = rt_read_str(&u->r);
  for (uint32_t a = 0; a < n_args; a++)
    if (get_arg(u, &s->arg[a], s->what, e))
      return -1;
  s->work = get_count(&u->r);
  s->rows = get_count(&u->r);
  s->grain = rt_read_i64(&u->r);
  s->row_floats = rt_read_i64(&u->r);
  s->kv_heads = rt_read_i64(&u->r);
  s->layer = (int)rt_read_i64(&u->r);
  if (s->call == RT_CALL_KV_APPEND && s->row_floats < 1)
    u->r.bad = true;
  return u->r.bad ? oc_fail(e, "%s: a program step is malformed: the file is damaged", u->source) : 0;
}

/* The binary's kernel for each symbol the program names. */
static int bind_kernels(unpacker *u, const rt_kernel_symbol *kernels, int n_kernels,
                        const rt_kernel_symbol ***fns, uint32_t *n_fns, oc_error *e) {
  *n_fns = rt_read_count(&u->r, 5);
  if (!(*fns = oc_calloc((size_t)*n_fns + 1, sizeof **fns)))
    return oc_fail(e, "%s: out of memory", u->source);
  for (uint32_t i = 0; i < *n_fns; i++) {
    const char *name = rt_read_str(&u->r);
    for (int k = 0; k < n_kernels && !(*fns)[i]; k++)
      if (!strcmp(kernels[k].name, name))
        (*fns)[i] = &kernels[k];
    if (!(*fns)[i] && !u->r.bad)
      return oc_fail(e, "%s: the program calls kernel %s, which this binary does not have: the "
                     "file was compiled with another binary", u->source, name);
  }
  return u->r.bad ? oc_fail(e, "%s: the program's kernel list is malformed", u->source) : 0;
}

int rt_program_unpack(const rt_pack *pack, const rt_kernel_symbol *kernels, int n_kernels,
                      int64_t ctx, rt_program **out, oc_error *e) {
  *out = NULL;
  int at = rt_pack_find(pack, RT_PACK_PROGRAM);
  unpacker u = {.pack = pack, .source = rt_pack_path(pack)};
  if (at < 0)
    return oc_fail(e, "%s: no program section", u.source);
  u.r = (rt_reader){rt_pack_data(pack, at), (size_t)rt_pack_section_at(pack, at)->bytes, 0, false};
  const rt_kernel_symbol **fns = NULL;
  uint32_t n_fns = 0;
  rt_program *p = NULL;
  int rc = bind_kernels(&u, kernels, n_kernels, &fns, &n_fns, e);
  u.arena_bytes = rt_read_i64(&u.r);
  int64_t max_tokens = rt_read_i64(&u.r), compiled = rt_read_i64(&u.r);
  if (!rc && (u.r.bad || compiled < 1 || max_tokens < 1))
    rc = oc_fail(e, "%s: the program's header is malformed: the file is damaged", u.source);
  if (!rc && ctx > compiled)
    rc = oc_fail(e, "%s: a context of %lld positions exceeds the %lld the model was compiled for "
                 "(olmoc compile --ctx)", u.source, (long long)ctx, (long long)compiled);
  u.ctx = ctx > 0 ? ctx : compiled;
  if (!rc)
    rc = rt_program_new(u.arena_bytes, max_tokens < u.ctx ? max_tokens : u.ctx, u.ctx, &p, e);
  uint32_t n_caches = rt_read_count(&u.r, 12);
  for (uint32_t i = 0; !rc && i < n_caches; i++) {
    int64_t index, row = rt_read_i64(&u.r);
    uint32_t bf16 = rt_read_u32(&u.r);
    rc = u.r.bad || bf16 > 1 ? oc_fail(e, "%s: the program's caches are malformed: the file is damaged", u.source)
                             : rt_program_add_cache(p, row, bf16, &index, e);
  }
  uint32_t n_scratch = rc ? 0 : rt_read_count(&u.r, 8);
  for (uint32_t i = 0; !rc && i < n_scratch; i++) {
    int64_t bytes = rt_read_i64(&u.r);
    if (u.r.bad || bytes < 1)
      rc = oc_fail(e, "%s: the program's scratch buffers are malformed: the file is damaged", u.source);
    else
      rc = rt_program_scratch(p, (size_t)bytes, e) ? 0 : -1;
  }
  u.p = p;
  uint32_t n_steps = rc ? 0 : rt_read_count(&u.r, 12);
  for (uint32_t i = 0; !rc && i < n_steps; i++) {
    rt_step s;
    rc = get_step(&u, fns, n_fns, &s, e) || (rt_program_add_step(p, &s, e) ? oc_wrap(e, "%s", u.source) : 0);
  }
  rt_arg output;
  if (!rc && !(rc = get_arg(&u, &output, "output", e))) {
    int64_t cols = rt_read_i64(&u.r), vocab = rt_read_i64(&u.r);
    if (u.r.bad || cols < 1 || vocab < 1 || vocab > cols || u.r.at != u.r.n)
      rc = oc_fail(e, "%s: the program's output is malformed: the file is damaged", u.source);
    else
      rt_program_set_output(p, output, cols, vocab);
  }
  if (!rc && rt_program_check(p, e))
    rc = oc_wrap(e, "%s: the program does not keep to its kernels' bounds: the file is damaged or was "
                 "not made by olmoc compile", u.source);
  free(fns);
  if (rc) {
    rt_program_free(p);
    return -1;
  }
  *out = p;
  return 0;
}
