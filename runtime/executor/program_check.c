/* Checking a program against its kernels' contracts (olmoc/kernel_contract.h)
 * for every call it accepts: 1 <= T <= max_tokens and 0 <= P <= ctx - T.
 * Each bound is a polynomial in T and the slack s = ctx - T - P >= 0, built
 * from the contract's factors in overflow-checked arithmetic and bounded over
 * the box T in [1, max_tokens], s in [0, ctx - 1], a monomial at a time (the
 * positive ones at the box's far corner, the negative ones at its near one).
 * Writing P through the slack makes the bound exact for what lowering
 * emits: an extent that grows with P is largest at s = 0, and a rope
 * table's P * stride + T * stride cancels to ctx * stride.
 * Invariant: a program this accepts makes no kernel touch memory outside
 * the buffers its arguments name, whatever its file said. */
#include <stdio.h>
#include <string.h>

#include "executor_internal.h"

#define DEG 8 /* powers of T and s below it */

typedef struct poly {
  int64_t k[DEG][DEG]; /* k[a][b]: the coefficient of T^a s^b */
  bool overflow;
} poly;

static void constant(poly *f, int64_t c) {
  memset(f, 0, sizeof *f);
  f->k[0][0] = c;
}

/* c + t T + p P + k ctx, with P = ctx - T - s. */
static void affine(poly *f, const rt_program *p, int64_t c, int64_t t, int64_t pp, int64_t k) {
  int64_t kc = 0;
  constant(f, 0);
  f->overflow = __builtin_add_overflow(pp, k, &kc) || __builtin_mul_overflow(kc, p->ctx, &kc) ||
                __builtin_add_overflow(c, kc, &f->k[0][0]) || __builtin_sub_overflow(t, pp, &f->k[1][0]) ||
                __builtin_sub_overflow(0, pp, &f->k[0][1]);
}

static void add(poly *f, const poly *g, int64_t sign) {
  f->overflow |= g->overflow;
  for (int a = 0; a < DEG; a++)
    for (int b = 0; b < DEG; b++) {
      int64_t term;
      f->overflow |= __builtin_mul_overflow(g->k[a][b], sign, &term) ||
                     __builtin_add_overflow(f->k[a][b], term, &f->k[a][b]);
    }
}

static void multiply(poly *f, const poly *g) {
  poly h;
  constant(&h, 0);
  h.overflow = f->overflow || g->overflow;
  for (int a = 0; a < DEG; a++)
    for (int b = 0; b < DEG; b++)
      for (int c = 0; f->k[a][b] && c < DEG; c++)
        for (int d = 0; d < DEG; d++) {
          int64_t term;
          if (!g->k[c][d])
            continue;
          if (a + c >= DEG || b + d >= DEG || __builtin_mul_overflow(f->k[a][b], g->k[c][d], &term) ||
              __builtin_add_overflow(h.k[a + c][b + d], term, &h.k[a + c][b + d]))
            h.overflow = true;
        }
  *f = h;
}

/* x^n, or false on overflow. */
static bool power(int64_t x, int n, int64_t *out) {
  int64_t y = 1;
  for (int i = 0; i < n; i++)
    if (__builtin_mul_overflow(y, x, &y))
      return false;
  *out = y;
  return true;
}

/* An upper bound of f over the calls p accepts, or false when it overflows. */
static bool bound(const rt_program *p, const poly *f, int64_t *out) {
  int64_t sum = 0, T = p->max_tokens, S = p->ctx - 1;
  if (f->overflow)
    return false;
  for (int a = 0; a < DEG; a++)
    for (int b = 0; b < DEG; b++) {
      int64_t k = f->k[a][b], ta, sb, term;
      if (!k)
        continue;
      if (k > 0 && (!power(T, a, &ta) || !power(S, b, &sb) || __builtin_mul_overflow(ta, sb, &term) ||
                    __builtin_mul_overflow(term, k, &term)))
        return false;
      if (k < 0)
        term = b ? 0 : k; /* T^a >= 1, s^b >= 0 */
      if (__builtin_add_overflow(sum, term, &sum))
        return false;
    }
  *out = sum;
  return true;
}

static void count_poly(poly *f, const rt_program *p, rt_count c) { affine(f, p, c.c, c.t, c.p, 0); }

/* Extent x for step s of p, as a polynomial. */
static void extent(poly *f, const rt_program *p, const rt_step *s, const rt_extent *x) {
  poly g;
  constant(f, x->scale);
  if (x->w)
    count_poly(&g, p, s->work), multiply(f, &g);
  if (x->r)
    count_poly(&g, p, s->rows), multiply(f, &g);
  if (x->v)
    constant(&g, p->vocab), multiply(f, &g);
  for (int64_t i = 0; i < x->n_factors && i < RT_EXTENT_FACTORS; i++) {
    const int64_t *k = x->factor[i];
    affine(&g, p, k[0], k[1], k[2], k[3]);
    multiply(f, &g);
  }
  if (x->n_factors < 0 || x->n_factors > RT_EXTENT_FACTORS || x->scale < 0)
    f->overflow = true;
}

static bool nonnegative(rt_count c) { return c.c >= 0 && c.t >= 0 && c.p >= 0; }

static bool factors_nonnegative(const rt_extent *x) {
  for (int64_t i = 0; i < x->n_factors && i < RT_EXTENT_FACTORS; i++)
    for (int j = 0; j < 4; j++)
      if (x->factor[i][j] < 0)
        return false;
  return (x->w == 0 || x->w == 1) && (x->r == 0 || x->r == 1) && (x->v == 0 || x->v == 1);
}

static const char *kind_name(rt_arg_kind k) {
  switch (k) {
  case RT_ARG_ARENA: return "the arena";
  case RT_ARG_PTR: return "a buffer";
  case RT_ARG_CACHE: return "a KV cache";
  case RT_ARG_TOKENS: return "the token ids";
  }
  return "an unknown kind of memory";
}

/* The bytes an argument's buffer holds from its base, as a polynomial. */
static bool room(const rt_program *p, const rt_arg *a, poly *f) {
  switch (a->kind) {
  case RT_ARG_ARENA:
    if (a->offset < 0 || a->offset > p->arena_bytes)
      return false;
    constant(f, p->arena_bytes - a->offset);
    return true;
  case RT_ARG_PTR:
    if (a->room > INT64_MAX)
      return false;
    constant(f, (int64_t)a->room);
    return true;
  case RT_ARG_CACHE: {
    int64_t bytes;
    if (a->offset < 0 || a->offset >= p->n_caches ||
        __builtin_mul_overflow(p->ctx, p->cache_row[a->offset], &bytes) ||
        __builtin_mul_overflow(bytes, p->cache_bf16[a->offset] ? 2 : 4, &bytes))
      return false;
    constant(f, bytes);
    return true;
  }
  case RT_ARG_TOKENS:
    affine(f, p, 0, 4, 0, 0);
    return true;
  }
  return false;
}

/* Argument a (number i, "output" when i < 0) of step s keeps to c. */
static int check_arg(const rt_program *p, const rt_step *s, int i, const rt_arg *a, const rt_arg_contract *c,
                     oc_error *e) {
  char which[32];
  snprintf(which, sizeof which, i < 0 ? "its output" : "argument %d", i);
  if ((unsigned)a->kind > RT_ARG_TOKENS || !(c->kinds & RT_KIND(a->kind)))
    return oc_fail(e, "step %s: %s is %s, which its kernel does not take there", s->what, which, kind_name(a->kind));
  if (c->writes && a->kind != RT_ARG_ARENA && a->kind != RT_ARG_CACHE && !(a->kind == RT_ARG_PTR && a->writable))
    return oc_fail(e, "step %s: %s is written, and it is %s that is not", s->what, which,
                   a->kind == RT_ARG_PTR ? "a read-only buffer" : kind_name(a->kind));
  if (a->p_stride < 0 || (a->p_stride && a->kind != RT_ARG_PTR))
    return oc_fail(e, "step %s: %s moves by %lld bytes a position", s->what, which, (long long)a->p_stride);
  if (a->kind == RT_ARG_CACHE && a->offset >= 0 && a->offset < p->n_caches &&
      ((c->cache_row && p->cache_row[a->offset] != c->cache_row) ||
       (int64_t)p->cache_bf16[a->offset] != c->cache_bf16))
    return oc_fail(e, "step %s: %s is KV cache %lld of rows of %lld %s values; its kernel reads rows of %lld %s",
                   s->what, which, (long long)a->offset, (long long)p->cache_row[a->offset],
                   p->cache_bf16[a->offset] ? "bf16" : "f32", (long long)c->cache_row, c->cache_bf16 ? "bf16" : "f32");
  poly used, have, stride;
  extent(&used, p, s, &c->bytes);
  affine(&stride, p, 0, 0, a->p_stride, 0); /* the address moves P * stride */
  add(&used, &stride, 1);
  if (!room(p, a, &have))
    return oc_fail(e, "step %s: %s names memory the program does not have", s->what, which);
  int64_t need, beyond;
  bool known = bound(p, &used, &need);
  add(&used, &have, -1);
  if (!factors_nonnegative(&c->bytes) || !known || !bound(p, &used, &beyond))
    return oc_fail(e, "step %s: %s has a size too large to check", s->what, which);
  if (beyond > 0)
    return oc_fail(e, "step %s: %s (%s) may be touched up to %lld bytes from its start, %lld beyond its end",
                   s->what, which, kind_name(a->kind), (long long)need, (long long)beyond);
  return 0;
}

/* The contracts of the steps the executor runs itself. */
static void builtin_contract(const rt_program *p, const rt_step *s, rt_kernel_contract *c) {
  memset(c, 0, sizeof *c);
  c->call = s->call;
  c->grain = 1;
  if (s->call == RT_CALL_POSITIONS) {
    c->n_args = 1;
    c->arg[0] = (rt_arg_contract){.kinds = RT_KIND(RT_ARG_ARENA) | RT_KIND(RT_ARG_PTR), .writes = 1,
                                  .bytes = {.scale = 4, .w = 1}};
    return;
  }
  /* kv_append: rows r < W <= T of row_floats f32 each, to positions P + r < ctx */
  c->n_args = 2;
  c->limited = 1;
  c->work_limit = (rt_extent){.scale = 1, .n_factors = 1, .factor = {{0, 1, 0, 0}}};
  c->arg[0] = (rt_arg_contract){.kinds = RT_KIND(RT_ARG_ARENA) | RT_KIND(RT_ARG_PTR),
                                .bytes = {.scale = s->row_floats * 4, .w = 1}};
  int64_t cache = s->n_args == 2 ? s->arg[1].offset : -1;
  c->arg[1] = (rt_arg_contract){.kinds = RT_KIND(RT_ARG_CACHE), .writes = 1, .cache_row = s->row_floats,
                                .cache_bf16 = cache >= 0 && cache < p->n_caches && p->cache_bf16[cache]};
}

static bool builtin(rt_call call) { return call == RT_CALL_KV_APPEND || call == RT_CALL_POSITIONS; }

static bool zero(rt_count c) { return !c.c && !c.t && !c.p; }

static int check_step(const rt_program *p, const rt_step *s, oc_error *e) {
  rt_kernel_contract own;
  const rt_kernel_contract *c = s->contract;
  if (builtin(s->call)) {
    if (s->fn || s->contract || s->row_floats < 0 || s->row_floats > INT64_MAX / 4)
      return oc_fail(e, "step %s: a built-in call with a kernel or a row of %lld values", s->what,
                     (long long)s->row_floats);
    builtin_contract(p, s, &own);
    c = &own;
  } else if (!s->fn || !c) {
    return oc_fail(e, "step %s: a kernel call without its kernel or the kernel's contract", s->what);
  } else if (s->row_floats || s->kv_heads) {
    return oc_fail(e, "step %s: a kernel call with kv_append's fields set", s->what);
  }
  if (c->call != s->call || c->n_args != s->n_args || c->grain != s->grain)
    return oc_fail(e, "step %s: called as call %d with %d arguments and grain %lld, and its kernel is called "
                   "as call %lld with %lld and grain %lld", s->what, (int)s->call, s->n_args,
                   (long long)s->grain, (long long)c->call, (long long)c->n_args, (long long)c->grain);
  bool rows = s->call == RT_CALL_MATMUL || s->call == RT_CALL_MATMUL3;
  if (!nonnegative(s->work) || !nonnegative(s->rows) || (!rows && !zero(s->rows)))
    return oc_fail(e, "step %s: a work count of %lld%+lldT%+lldP and rows of %lld%+lldT%+lldP", s->what,
                   (long long)s->work.c, (long long)s->work.t, (long long)s->work.p, (long long)s->rows.c,
                   (long long)s->rows.t, (long long)s->rows.p);
  poly w, limit;
  int64_t most, beyond;
  count_poly(&w, p, s->work);
  if (!bound(p, &w, &most))
    return oc_fail(e, "step %s: its work count overflows", s->what);
  if (c->limited) {
    extent(&limit, p, s, &c->work_limit);
    add(&w, &limit, -1);
    if (!factors_nonnegative(&c->work_limit) || !bound(p, &w, &beyond))
      return oc_fail(e, "step %s: its work limit is too large to check", s->what);
    if (beyond > 0)
      return oc_fail(e, "step %s: up to %lld work items, %lld more than its kernel does", s->what,
                     (long long)most, (long long)beyond);
  }
  for (int i = 0; i < s->n_args; i++)
    if (check_arg(p, s, i, &s->arg[i], &c->arg[i], e))
      return -1;
  return 0;
}

int rt_program_check(const rt_program *p, oc_error *e) {
  if (p->max_tokens < 1 || p->ctx < 1 || p->max_tokens > p->ctx || p->vocab < 1 || p->vocab > p->out_cols)
    return oc_fail(e, "a program of calls of up to %lld tokens, %lld positions and %lld of %lld logits a "
                   "token", (long long)p->max_tokens, (long long)p->ctx, (long long)p->vocab,
                   (long long)p->out_cols);
  for (int64_t i = 0; i < p->n_steps; i++)
    if (check_step(p, &p->steps[i], e))
      return oc_wrap(e, "program step %lld", (long long)i);
  if (p->out_cols > INT64_MAX / 4)
    return oc_fail(e, "the output's rows of %lld logits are too long", (long long)p->out_cols);
  rt_step logits = {.call = RT_CALL_POSITIONS, .what = "output", .n_args = 1, .arg = {p->output}};
  rt_arg_contract c = {.kinds = RT_KIND(RT_ARG_ARENA), /* T rows of out_cols f32 */
                       .bytes = {.scale = 4 * p->out_cols, .n_factors = 1, .factor = {{0, 1, 0, 0}}}};
  return check_arg(p, &logits, -1, &p->output, &c, e);
}

int64_t rt_step_extent(const rt_program *p, const rt_step *s, int i, int64_t T, int64_t P) {
  rt_kernel_contract own;
  const rt_kernel_contract *c = s->contract;
  if (!c)
    builtin_contract(p, s, &own), c = &own;
  const rt_extent *x = &c->arg[i].bytes;
  int64_t W = s->work.c + s->work.t * T + s->work.p * P, R = s->rows.c + s->rows.t * T + s->rows.p * P;
  int64_t y = x->scale * (x->w ? W : 1) * (x->r ? R : 1) * (x->v ? p->vocab : 1);
  for (int64_t f = 0; f < x->n_factors; f++)
    y *= x->factor[f][0] + x->factor[f][1] * T + x->factor[f][2] * P + x->factor[f][3] * p->ctx;
  return y;
}
