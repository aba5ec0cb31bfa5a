/* fuzz_program: a compiled model's program section, as a model binary reads
 * it (runtime/executor/program_file.c, program_check.c). A program shaped
 * like the ones lowering makes (positions, gather, rmsnorm, matmul, rope on a
 * table indexed by P, kv_append to an f32 and a head-major bf16 cache,
 * attention, a kernel writing a scratch buffer, a matmul3 into the logits)
 * is built once with the executor's API against stand-in kernels and their
 * contracts, and packed. The input's first byte picks the context to open it
 * with (0: as compiled); the rest are edits of its program section (each: a
 * u16 position, an op byte, then the value: a byte, a u32, an i64 set there,
 * or a signed byte added to the i64 there), written back with its buffer
 * sections into a pack whose checksums pass, and unpacked against the stand-
 * ins. Checks: a refused program has a message; an accepted one has, for
 * every call it accepts (all (T, P) when there are at most 4096, else the
 * corners and a stride through them), each step's kernel one of the binary's
 * with its contract, its call, argument count and grain the contract's, its
 * work within the limit, and every argument's bytes, evaluated here from the
 * contract in 128-bit arithmetic, inside the one buffer its address lies in
 * (the arena, a KV cache, a scratch buffer, a buffer section, the ids), a
 * written one never a buffer section; kv_append's rows inside their cache.
 * Inputs whose header asks for more than 64 MiB are skipped (they would only
 * test the allocator). */
#include "fuzz.h"

#include "../runtime/executor/executor_internal.h"
#include "olmoc/aot.h"
#include "olmoc/bytes.h"
#include "olmoc/pack.h"

#include <unistd.h>

enum { H = 16, V = 16, CTX = 32, MAX_T = 8, HEADS = 2, HD = 8 };

static char dir[64], path[128];
static int32_t *ids; /* the call's token ids: [max_tokens] while an accepted program is checked */
static unsigned char stand_in[8]; /* the kernels' addresses: never called */

#define F(c, t, p, k) {c, t, p, k}
#define BYTES(s, ...) {.scale = s, __VA_ARGS__}
#define ARENA RT_KIND(RT_ARG_ARENA)
#define PTR RT_KIND(RT_ARG_PTR)
#define UP_TO_T {.scale = 1, .n_factors = 1, .factor = {F(0, 1, 0, 0)}}

static const rt_kernel_symbol kernels[] = {
    {"k_gather", stand_in + 0,
     {RT_CALL_GATHER, 3, 1, 1, UP_TO_T,
      {{PTR, 0, 0, 0, BYTES(4 * H, .v = 1)},
       {RT_KIND(RT_ARG_TOKENS), 0, 0, 0, BYTES(4, .w = 1)},
       {ARENA, 1, 0, 0, BYTES(4 * H, .w = 1)}}}},
    {"k_rmsnorm", stand_in + 1,
     {RT_CALL_RANGE, 3, 1, 1, UP_TO_T,
      {{ARENA, 0, 0, 0, BYTES(4 * H, .w = 1)}, {PTR, 0, 0, 0, BYTES(4 * H)}, {ARENA, 1, 0, 0, BYTES(4 * H, .w = 1)}}}},
    {"k_matmul", stand_in + 2,
     {RT_CALL_MATMUL, 3, 16, 1, {.scale = H},
      {{ARENA, 0, 0, 0, BYTES(4 * H, .r = 1)}, {PTR, 0, 0, 0, BYTES(4 * H, .w = 1)}, {ARENA, 1, 0, 0, BYTES(4 * H, .r = 1)}}}},
    {"k_rope", stand_in + 3,
     {RT_CALL_RANGE, 3, 1, 1, {.scale = HEADS, .n_factors = 1, .factor = {F(0, 1, 0, 0)}},
      {{ARENA, 0, 0, 0, BYTES(4 * HD, .w = 1)},
       {PTR, 0, 0, 0, BYTES(4 * HD, .n_factors = 1, .factor = {F(0, 1, 0, 0)})},
       {ARENA, 1, 0, 0, BYTES(4 * HD, .w = 1)}}}},
    {"k_attention", stand_in + 4,
     {RT_CALL_ATTENTION, 4, 1, 1, {.scale = HEADS, .n_factors = 1, .factor = {F(0, 1, 0, 0)}},
      {{ARENA, 0, 0, 0, BYTES(4 * HD, .w = 1)},
       {RT_KIND(RT_ARG_CACHE), 0, H, 0, BYTES(4 * H, .n_factors = 1, .factor = {F(0, 0, 0, 1)})},
       {RT_KIND(RT_ARG_CACHE), 0, H, 1, BYTES(2 * H, .n_factors = 1, .factor = {F(0, 0, 0, 1)})},
       {ARENA, 1, 0, 0, BYTES(4 * HD, .w = 1)}}}},
    {"k_shaped", stand_in + 5,
     {RT_CALL_SHAPED, 2, 1, 1, UP_TO_T,
      {{ARENA, 0, 0, 0, BYTES(4 * H, .n_factors = 1, .factor = {F(0, 1, 0, 0)})},
       {PTR, 1, 0, 0, BYTES(4 * H, .n_factors = 1, .factor = {F(0, 1, 0, 0)})}}}},
    {"k_logits", stand_in + 6,
     {RT_CALL_MATMUL3, 4, 16, 1, {.scale = V},
      {{ARENA, 0, 0, 0, BYTES(4 * H, .r = 1)},
       {PTR, 0, 0, 0, BYTES(4 * H, .w = 1)},
       {PTR, 0, 0, 0, BYTES(4, .w = 1)},
       {ARENA, 1, 0, 0, BYTES(4 * V, .r = 1)}}}},
};
enum { N_KERNELS = sizeof kernels / sizeof *kernels };

/* The arena's values, planned by hand for calls of up to MAX_T tokens. */
enum { POS = 0, X = 64, Y = X + MAX_T * H * 4, Q = Y + MAX_T * H * 4, Q2 = Q + MAX_T * H * 4,
       ATT = Q2 + MAX_T * H * 4, LOGITS = ATT + MAX_T * H * 4, ARENA_BYTES = LOGITS + MAX_T * V * 4 };

static rt_arg arena(int64_t offset) { return (rt_arg){.kind = RT_ARG_ARENA, .offset = offset}; }
static rt_arg buffer(const void *p, size_t n) { return (rt_arg){.kind = RT_ARG_PTR, .ptr = p, .room = n}; }

static void add(rt_program *p, rt_step s, int kernel) {
  oc_error e = {{0}};
  if (kernel >= 0)
    s.fn = kernels[kernel].fn, s.contract = &kernels[kernel].contract;
  FUZZ_CHECK(!rt_program_add_step(p, &s, &e), "%s", e.msg);
}

static void *owned(rt_program *p, size_t n) {
  oc_error e = {{0}};
  void *m = rt_program_alloc(p, n, &e);
  FUZZ_CHECK(m, "%s", e.msg);
  memset(m, 0, n);
  return m;
}

/* The program every input edits. */
static rt_program *base_program(void) {
  rt_program *p;
  oc_error e = {{0}};
  int64_t k, v;
  FUZZ_CHECK(!rt_program_new(ARENA_BYTES, MAX_T, CTX, &p, &e) && !rt_program_add_cache(p, H, false, &k, &e) &&
                 !rt_program_add_cache(p, H, true, &v, &e), "%s", e.msg);
  void *table = owned(p, V * H * 4), *norm = owned(p, H * 4), *wq = owned(p, H * H * 4);
  void *rope = owned(p, CTX * HD * 4), *wo = owned(p, V * H * 4), *bias = owned(p, V * 4);
  void *scratch = rt_program_scratch(p, MAX_T * H * 4, &e);
  FUZZ_CHECK(scratch, "%s", e.msg);
  rt_count T = {0, 1, 0}, HT = {0, HEADS, 0};
  add(p, (rt_step){.call = RT_CALL_POSITIONS, .what = "positions", .n_args = 1, .arg = {arena(POS)}, .work = T}, -1);
  add(p, (rt_step){.call = RT_CALL_GATHER, .what = "embed", .n_args = 3,
                   .arg = {buffer(table, V * H * 4), {.kind = RT_ARG_TOKENS}, arena(X)}, .work = T}, 0);
  add(p, (rt_step){.call = RT_CALL_RANGE, .what = "rmsnorm", .n_args = 3,
                   .arg = {arena(X), buffer(norm, H * 4), arena(Y)}, .work = T}, 1);
  add(p, (rt_step){.call = RT_CALL_MATMUL, .what = "q_proj", .n_args = 3,
                   .arg = {arena(Y), buffer(wq, H * H * 4), arena(Q)}, .work = {H, 0, 0}, .rows = T, .grain = 16}, 2);
  rt_arg table_at_p = buffer(rope, CTX * HD * 4);
  table_at_p.p_stride = HD * 4;
  add(p, (rt_step){.call = RT_CALL_RANGE, .what = "rope", .n_args = 3, .arg = {arena(Q), table_at_p, arena(Q2)},
                   .work = HT}, 3);
  add(p, (rt_step){.call = RT_CALL_KV_APPEND, .what = "kv_append", .n_args = 2,
                   .arg = {arena(Q2), {.kind = RT_ARG_CACHE, .offset = k}}, .work = T, .row_floats = H}, -1);
  add(p, (rt_step){.call = RT_CALL_KV_APPEND, .what = "kv_append", .n_args = 2,
                   .arg = {arena(Q2), {.kind = RT_ARG_CACHE, .offset = v}}, .work = T, .row_floats = H,
                   .kv_heads = HEADS}, -1);
  add(p, (rt_step){.call = RT_CALL_ATTENTION, .what = "attention", .n_args = 4,
                   .arg = {arena(Q2), {.kind = RT_ARG_CACHE, .offset = k}, {.kind = RT_ARG_CACHE, .offset = v},
                           arena(ATT)}, .work = HT}, 4);
  rt_arg written = buffer(scratch, MAX_T * H * 4);
  written.writable = true;
  add(p, (rt_step){.call = RT_CALL_SHAPED, .what = "quantize", .n_args = 2, .arg = {arena(ATT), written},
                   .work = T}, 5);
  add(p, (rt_step){.call = RT_CALL_MATMUL3, .what = "lm_head", .n_args = 4,
                   .arg = {arena(ATT), buffer(wo, V * H * 4), buffer(bias, V * 4), arena(LOGITS)},
                   .work = {V, 0, 0}, .rows = T, .grain = 16}, 6);
  rt_program_set_output(p, arena(LOGITS), V, V);
  FUZZ_CHECK(!rt_program_check(p, &e), "the base program is refused: %s", e.msg);
  return p;
}

/* The packed base program's sections, kept to write every input's pack. */
typedef struct section {
  rt_pack_kind kind;
  char name[96];
  unsigned char *data;
  size_t bytes;
} section;

static section sections[16];
static int n_sections, program_section;

static void remove_dir(void) {
  unlink(path);
  rmdir(dir);
  for (int i = 0; i < n_sections; i++)
    free(sections[i].data);
}

static const rt_pack_target target = {"", "", 0, RT_PACK_F32};

static void keep_base(void) {
  rt_program *p = base_program();
  rt_pack_writer *w;
  rt_pack *pack;
  oc_error e = {{0}};
  FUZZ_CHECK(!rt_pack_create(path, &target, &w, &e) && !rt_program_pack(p, w, kernels, N_KERNELS, &e) &&
                 !rt_pack_finish(w, &e), "%s", e.msg);
  rt_program_free(p);
  FUZZ_CHECK(!rt_pack_open(path, 0, NULL, RT_PACK_READ, NULL, &pack, &e), "%s", e.msg);
  n_sections = rt_pack_count(pack);
  FUZZ_CHECK(n_sections <= 16, "%d sections", n_sections);
  for (int i = 0; i < n_sections; i++) {
    const rt_pack_section *s = rt_pack_section_at(pack, i);
    section *k = &sections[i];
    k->kind = (rt_pack_kind)s->kind;
    snprintf(k->name, sizeof k->name, "%s", s->name);
    k->bytes = s->bytes;
    k->data = malloc(s->bytes + 16);
    FUZZ_CHECK(k->data, "out of memory");
    memcpy(k->data, rt_pack_data(pack, i), s->bytes);
    if (s->kind == RT_PACK_PROGRAM)
      program_section = i;
  }
  rt_pack_close(pack);
}

/* The edits in data[0, size) applied to program[0, n). */
static void apply_edits(unsigned char *program, size_t n, const uint8_t *data, size_t size) {
  for (size_t at = 0; at + 3 <= size && n;) {
    size_t pos = (size_t)(data[at] | data[at + 1] << 8) % n;
    int op = data[at + 2] % 4, width = op == 0 ? 1 : op == 1 ? 4 : op == 2 ? 8 : 1;
    at += 3;
    if (at + (size_t)width > size)
      break;
    if (op == 3) { /* nudge the i64 at pos */
      uint64_t x = 0; /* wrapping, as the file's bits would */
      if (pos + 8 <= n) {
        memcpy(&x, program + pos, 8);
        x += (uint64_t)(int64_t)(int8_t)data[at];
        memcpy(program + pos, &x, 8);
      }
    } else if (pos + (size_t)width <= n) {
      memcpy(program + pos, data + at, (size_t)width);
    }
    at += (size_t)width;
  }
}

/* Whether the program's header asks for at most 64 MiB (arena, caches,
 * scratch): read as unpacking reads it, up to the steps. */
static bool modest(const unsigned char *program, size_t n, int64_t ctx) {
  rt_reader r = {program, n, 0, false};
  for (uint32_t i = 0, k = rt_read_count(&r, 5); i < k; i++)
    rt_read_str(&r);
  int64_t arena = rt_read_i64(&r);
  rt_read_i64(&r); /* max_tokens: what it costs is in the arena and the caches */
  int64_t compiled = rt_read_i64(&r);
  __int128 total = arena > 0 ? arena : 0;
  ctx = ctx > 0 && ctx < compiled ? ctx : compiled;
  for (uint32_t i = 0, k = rt_read_count(&r, 12); i < k && total <= 64 << 20; i++) {
    int64_t row = rt_read_i64(&r);
    rt_read_u32(&r);
    total += (__int128)(row > 0 ? row : 0) * (ctx > 0 ? ctx : 0) * 4;
  }
  for (uint32_t i = 0, k = rt_read_count(&r, 8); i < k && total <= 64 << 20; i++) {
    int64_t bytes = rt_read_i64(&r);
    total += bytes > 0 ? bytes : 0;
  }
  return total <= 64 << 20;
}

/* The buffer argument a names, [lo, lo + n), the byte its address starts
 * at before P moves it (as the executor computes addresses), and whether a
 * kernel may write there; false when a names none. */
static bool buffer_of(const rt_program *p, const rt_pack *pack, const rt_arg *a, int64_t T,
                      const unsigned char **lo, __int128 *n, __int128 *at, bool *writable) {
  *writable = true;
  *at = 0;
  switch (a->kind) {
  case RT_ARG_ARENA:
    *lo = p->arena, *n = p->arena_bytes, *at = a->offset;
    return true;
  case RT_ARG_CACHE:
    if (a->offset < 0 || a->offset >= p->n_caches)
      return false;
    *lo = p->caches[a->offset], *n = (__int128)p->ctx * p->cache_row[a->offset] * (p->cache_bf16[a->offset] ? 2 : 4);
    return true;
  case RT_ARG_TOKENS:
    *lo = (const unsigned char *)ids, *n = (__int128)T * 4;
    return true;
  case RT_ARG_PTR:
    break;
  }
  const unsigned char *ptr = a->ptr;
  for (int64_t i = 0; i < p->scratch.n; i++)
    if (ptr >= (unsigned char *)p->scratch.mem[i] && ptr < (unsigned char *)p->scratch.mem[i] + p->scratch.bytes[i]) {
      *lo = p->scratch.mem[i], *n = p->scratch.bytes[i], *at = ptr - *lo;
      return true;
    }
  *writable = false;
  for (int i = 0; i < rt_pack_count(pack); i++) {
    const unsigned char *base = rt_pack_data(pack, i);
    uint64_t bytes = rt_pack_section_at(pack, i)->bytes;
    if (ptr >= base && ptr < base + bytes) {
      *lo = base, *n = bytes, *at = ptr - base;
      return true;
    }
  }
  return false;
}

static __int128 count(rt_count c, int64_t T, int64_t P) { return (__int128)c.c + (__int128)c.t * T + (__int128)c.p * P; }

/* The contract's extent x for step s at (T, P), in 128 bits (a product of at
 * most 7 factors each far below 2^62 in an accepted program: none overflows
 * unless the check let a huge one through, which the bound then catches). */
static __int128 evaluate(const rt_program *p, const rt_step *s, const rt_extent *x, int64_t T, int64_t P) {
  __int128 y = x->scale, cap = (__int128)1 << 100;
  if (x->w) y *= count(s->work, T, P);
  if (y > cap || y < -cap) return cap;
  if (x->r) y *= count(s->rows, T, P);
  if (y > cap || y < -cap) return cap;
  if (x->v) y *= p->vocab;
  for (int64_t f = 0; f < x->n_factors && f < RT_EXTENT_FACTORS; f++) {
    y *= (__int128)x->factor[f][0] + (__int128)x->factor[f][1] * T + (__int128)x->factor[f][2] * P +
         (__int128)x->factor[f][3] * p->ctx;
    if (y > cap || y < -cap) return cap;
  }
  return y;
}

static void check_arg(const rt_program *p, const rt_pack *pack, const rt_step *s, const rt_arg *a, __int128 bytes,
                      bool writes, int64_t T, int64_t P, int i) {
  const unsigned char *lo;
  __int128 n, at;
  bool writable;
  FUZZ_CHECK(bytes >= 0, "step %s argument %d: %lld bytes at T=%lld P=%lld", s->what, i, (long long)bytes,
             (long long)T, (long long)P);
  if (!bytes)
    return;
  FUZZ_CHECK(buffer_of(p, pack, a, T, &lo, &n, &at, &writable), "step %s argument %d: kind %d names no buffer",
             s->what, i, (int)a->kind);
  at += (__int128)P * a->p_stride;
  FUZZ_CHECK(at >= 0 && at + bytes <= n, "step %s argument %d: %lld bytes from %lld into a buffer of %lld at T=%lld P=%lld",
             s->what, i, (long long)bytes, (long long)at, (long long)n, (long long)T, (long long)P);
  FUZZ_CHECK(!writes || writable, "step %s argument %d: written, and it is a buffer section", s->what, i);
}

static void check_call(const rt_program *p, const rt_pack *pack, int64_t T, int64_t P) {
  for (int64_t i = 0; i < p->n_steps; i++) {
    const rt_step *s = &p->steps[i];
    __int128 W = count(s->work, T, P);
    FUZZ_CHECK(W >= 0, "step %s: %lld work items", s->what, (long long)W);
    if (s->call == RT_CALL_POSITIONS) {
      check_arg(p, pack, s, &s->arg[0], 4 * W, true, T, P, 0);
      continue;
    }
    if (s->call == RT_CALL_KV_APPEND) { /* rows P .. P+W of the cache: within it when P + W <= ctx */
      const rt_arg *c = &s->arg[1];
      FUZZ_CHECK(c->kind == RT_ARG_CACHE && c->offset >= 0 && c->offset < p->n_caches &&
                     p->cache_row[c->offset] == s->row_floats && P + W <= p->ctx &&
                     (!s->kv_heads || (s->kv_heads > 0 && s->row_floats % s->kv_heads == 0)),
                 "step %s: %lld rows of %lld at P=%lld into cache %lld", s->what, (long long)W,
                 (long long)s->row_floats, (long long)P, (long long)c->offset);
      check_arg(p, pack, s, &s->arg[0], W * s->row_floats * 4, false, T, P, 0);
      continue;
    }
    const rt_kernel_contract *k = NULL;
    for (int j = 0; j < N_KERNELS; j++)
      if (s->fn == kernels[j].fn)
        k = &kernels[j].contract;
    FUZZ_CHECK(k && s->contract == k, "step %s: a kernel not the binary's, or another's contract", s->what);
    FUZZ_CHECK(k->call == s->call && k->n_args == s->n_args && k->grain == s->grain,
               "step %s: called as %d with %d arguments, grain %lld", s->what, (int)s->call, s->n_args,
               (long long)s->grain);
    FUZZ_CHECK(!k->limited || W <= evaluate(p, s, &k->work_limit, T, P), "step %s: %lld work items at T=%lld",
               s->what, (long long)W, (long long)T);
    for (int a = 0; a < s->n_args; a++) {
      FUZZ_CHECK(k->arg[a].kinds & RT_KIND(s->arg[a].kind), "step %s argument %d: kind %d", s->what, a,
                 (int)s->arg[a].kind);
      check_arg(p, pack, s, &s->arg[a], evaluate(p, s, &k->arg[a].bytes, T, P), k->arg[a].writes, T, P, a);
    }
  }
  const rt_step out = {.what = "output"};
  check_arg(p, pack, &out, &p->output, (__int128)T * p->out_cols * 4, true, T, P, -1);
}

/* Every call p accepts, or its corners and a stride through them. */
static void check_calls(const rt_program *p, const rt_pack *pack) {
  int64_t M = p->max_tokens < p->ctx ? p->max_tokens : p->ctx, C = p->ctx;
  bool all = (__int128)M * C <= 4096;
  int64_t dt = all ? 1 : M / 16 + 1;
  for (int64_t T = 1; T <= M; T = T == M ? M + 1 : T + dt > M ? M : T + dt) {
    int64_t last = C - T, dp = all ? 1 : last / 16 + 1;
    for (int64_t P = 0; P <= last; P = P == last ? last + 1 : P + dp > last ? last : P + dp)
      check_call(p, pack, T, P);
  }
}

int fuzz_program(const uint8_t *data, size_t size) {
  fuzz_make_dir(dir, sizeof dir, remove_dir);
  if (!n_sections) {
    snprintf(path, sizeof path, "%s/model.weights", dir);
    keep_base();
  }
  section *prog = &sections[program_section];
  unsigned char *program = malloc(prog->bytes);
  FUZZ_CHECK(program, "out of memory");
  memcpy(program, prog->data, prog->bytes);
  int64_t ctx = size ? data[0] % (CTX + 1) : 0;
  apply_edits(program, prog->bytes, size ? data + 1 : data, size ? size - 1 : 0);
  if (!modest(program, prog->bytes, ctx)) {
    free(program);
    return 0;
  }
  rt_pack_writer *w;
  oc_error e = {{0}};
  FUZZ_CHECK(!rt_pack_create(path, &target, &w, &e), "%s", e.msg);
  for (int i = 0; i < n_sections; i++)
    FUZZ_CHECK(!rt_pack_add(w, sections[i].kind, sections[i].name, i == program_section ? program : sections[i].data,
                            sections[i].bytes, NULL, &e), "%s", e.msg);
  FUZZ_CHECK(!rt_pack_finish(w, &e), "%s", e.msg);
  free(program);
  rt_pack *pack;
  FUZZ_CHECK(!rt_pack_open(path, 0, NULL, RT_PACK_READ, NULL, &pack, &e), "%s", e.msg);
  rt_program *p = NULL;
  if (rt_program_unpack(pack, kernels, N_KERNELS, ctx, &p, &e)) {
    FUZZ_CHECK(!p && e.msg[0], "rt_program_unpack failed without a message");
  } else {
    ids = calloc((size_t)p->max_tokens, sizeof *ids);
    FUZZ_CHECK(ids, "out of memory for %lld ids", (long long)p->max_tokens);
    p->tokens = ids;
    check_calls(p, pack);
    rt_program_free(p);
    free(ids);
  }
  rt_pack_close(pack);
  return 0;
}

FUZZ_MAIN(fuzz_program)
