/* The reference interpreter's driver: checks the graph, weights and input
 * bindings, owns the KV caches (f32, max_ctx rows each) and evaluates the nodes
 * in order (kernels and numerics in interp_ops.c: f32 values, sums in double).
 * Invariants: a value is freed right after its last user ran (last_use is
 * computed once, at creation), so between runs only outputs are held; P
 * advances only when a whole run succeeds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp_internal.h"
#include "olmoc/alloc.h"

struct ir_interp {
  const ir_graph *g;   /* not owned: must outlive the interpreter */
  int64_t max_ctx;     /* rows of every KV cache */
  int64_t P;           /* rows cached so far */
  ir_tensor *weight;   /* [n]: the checkpoint tensor of each weight node */
  float **cache;       /* [n]: f32[max_ctx, row...] storage of each kv_cache node, else NULL */
  int64_t *cache_row;  /* [n]: elements per cache row (product of dims after the first) */
  int *last_use;       /* [n]: the last node reading node i, or i when none does */
  ir_value *val;       /* [n]: this call's values */
  /* ir_interp_use_arena: computed values at arena + arena_off[id] (when >= 0),
   * with room for arena_size[id] bytes; NULL arena: one allocation per value */
  unsigned char *arena;
  int64_t *arena_off, *arena_size; /* [n] */
  bool arena_owned;
};

static void release(ir_value *v) {
  free(v->buf);
  *v = (ir_value){0};
}

static void release_all(ir_interp *it) {
  for (int i = 0; i < it->g->n; i++)
    release(&it->val[i]);
}

/* "f32[3,4]" for a concrete tensor. */
static char *tensor_str(const ir_tensor *t, char *buf, size_t n) {
  size_t len = (size_t)snprintf(buf, n, "%s[", ir_dtype_name(t->dtype));
  for (int i = 0; i < t->rank && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? "," : "", (long long)t->dims[i]);
  if (len < n)
    snprintf(buf + len, n - len, "]");
  return buf;
}

/* The concrete shape of type ty at T and P (data left NULL). */
static ir_tensor concrete(const ir_type *ty, int64_t T, int64_t P) {
  ir_tensor t = {.dtype = ty->dtype, .rank = ty->shape.rank};
  for (int i = 0; i < t.rank; i++)
    t.dims[i] = ir_dim_eval(ty->shape.dim[i], T, P);
  return t;
}

static bool same_shape(const ir_tensor *a, const ir_tensor *b) {
  if (a->dtype != b->dtype || a->rank != b->rank)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i])
      return false;
  return true;
}

/* Gives v its own zeroed storage for node `id`'s type at T, P. Float values
 * and outputs are stored as f32; other i32 and i8 values keep their dtype. */
static int alloc_value(const ir_graph *g, int id, int64_t T, int64_t P, ir_value *v, oc_error *e) {
  v->t = concrete(&g->nodes[id].type, T, P);
  if (ir_dtype_is_float(v->t.dtype) || g->nodes[id].op == IR_OUTPUT)
    v->t.dtype = IR_F32;
  int64_t n = 1;
  for (int i = 0; i < v->t.rank; i++) {
    if (v->t.dims[i] < 0)
      return oc_fail(e, "dim %d is %lld at T=%lld, P=%lld", i, (long long)v->t.dims[i],
                     (long long)T, (long long)P);
    if (v->t.dims[i] && n > INT64_MAX / 8 / v->t.dims[i])
      return oc_fail(e, "the value is too large to allocate");
    n *= v->t.dims[i];
  }
  size_t bytes = (size_t)n * ir_dtype_size(v->t.dtype);
  v->buf = oc_calloc(1, bytes ? bytes : 1);
  if (!v->buf)
    return oc_fail(e, "out of memory allocating %zu bytes", bytes);
  v->t.data = v->buf;
  v->live = true;
  return 0;
}

static int check_weight(const ir_node *n, const ir_tensor *w, oc_error *e) {
  char want[128], got[128];
  ir_tensor expect = concrete(&n->type, 0, 0);
  if (w->dtype != IR_F32 && w->dtype != IR_BF16 && w->dtype != IR_F16)
    return oc_fail(e, "weight \"%s\" is %s; the interpreter reads f32, bf16 and f16", n->name,
                   tensor_str(w, got, sizeof got));
  if (!same_shape(&expect, w))
    return oc_fail(e, "weight \"%s\": the graph expects %s, found %s", n->name,
                   tensor_str(&expect, want, sizeof want), tensor_str(w, got, sizeof got));
  if (!w->data)
    return oc_fail(e, "weight \"%s\" has no data", n->name);
  return 0;
}

/* Looks every weight up and allocates every cache. */
static int prepare(ir_interp *it, ir_weight_fn weights, void *ctx, oc_error *e) {
  const ir_graph *g = it->g;
  for (int id = 0; id < g->n; id++) {
    const ir_node *n = &g->nodes[id];
    if (n->op == IR_WEIGHT) {
      if (!weights)
        return oc_fail(e, "weight \"%s\": no weight lookup was given", n->name);
      ir_tensor *w = &it->weight[id];
      oc_fail(e, "the lookup failed without saying why");
      if (weights(ctx, n->name, w, e))
        return oc_wrap(e, "weight \"%s\"", n->name);
      if (check_weight(n, w, e))
        return -1;
    } else if (n->op == IR_KV_CACHE) {
      int64_t row = 1;
      for (int i = 1; i < n->type.shape.rank; i++) {
        ir_dim d = n->type.shape.dim[i];
        if (!ir_dim_is_const(d) || d.c <= 0)
          return oc_fail(e, "kv_cache \"%s\": the dims after the first must be positive constants",
                         n->name);
        row *= d.c;
      }
      if (row > INT64_MAX / 4 / it->max_ctx)
        return oc_fail(e, "kv_cache \"%s\": %lld rows of %lld floats are too many", n->name,
                       (long long)it->max_ctx, (long long)row);
      it->cache_row[id] = row;
      it->cache[id] = oc_calloc((size_t)(it->max_ctx * row), sizeof(float));
      if (!it->cache[id])
        return oc_fail(e, "kv_cache \"%s\": out of memory for %lld rows of %lld floats", n->name,
                       (long long)it->max_ctx, (long long)row);
    }
  }
  return 0;
}

int ir_interp_new(const ir_graph *g, int64_t max_ctx, ir_weight_fn weights, void *ctx,
                  ir_interp **out, oc_error *e) {
  if (!g || !out)
    return oc_fail(e, "ir_interp_new needs a graph and a place to put the interpreter");
  *out = NULL;
  if (ir_verify(g, e))
    return oc_wrap(e, "the interpreter needs a graph that verifies");
  if (max_ctx < 1)
    return oc_fail(e, "max_ctx must be at least 1, found %lld", (long long)max_ctx);
  ir_interp *it = oc_calloc(1, sizeof *it);
  if (!it)
    return oc_fail(e, "out of memory creating the interpreter");
  size_t n = (size_t)g->n;
  *it = (ir_interp){.g = g, .max_ctx = max_ctx};
  it->weight = oc_calloc(n, sizeof *it->weight);
  it->cache = oc_calloc(n, sizeof *it->cache);
  it->cache_row = oc_calloc(n, sizeof *it->cache_row);
  it->last_use = oc_calloc(n, sizeof *it->last_use);
  it->val = oc_calloc(n, sizeof *it->val);
  if (!it->weight || !it->cache || !it->cache_row || !it->last_use || !it->val) {
    ir_interp_free(it);
    return oc_fail(e, "out of memory creating the interpreter");
  }
  for (int id = 0; id < g->n; id++) {
    it->last_use[id] = id;
    for (int i = 0; i < ir_arity(&g->nodes[id]); i++)
      it->last_use[g->nodes[id].in[i]] = id;
  }
  if (prepare(it, weights, ctx, e)) {
    ir_interp_free(it);
    return -1;
  }
  *out = it;
  return 0;
}

void ir_interp_free(ir_interp *it) {
  if (!it)
    return;
  if (it->val)
    release_all(it);
  for (int i = 0; it->cache && i < it->g->n; i++)
    free(it->cache[i]);
  free(it->weight);
  free(it->cache);
  free(it->cache_row);
  free(it->last_use);
  ir_interp_use_arena(it, NULL, NULL, 0, NULL, NULL);
  free(it->val);
  free(it);
}

/* The binding for input node n, checked against its type at T, P. */
static int find_binding(const ir_node *n, int64_t T, int64_t P, const ir_binding *in, int n_in,
                        const ir_tensor **found, oc_error *e) {
  char want[128], got[128];
  ir_tensor expect = concrete(&n->type, T, P);
  for (int i = 0; i < n_in; i++) {
    if (!in[i].name || strcmp(in[i].name, n->name) != 0)
      continue;
    const ir_tensor *t = &in[i].value;
    if (!same_shape(&expect, t))
      return oc_fail(e, "input \"%s\": expected %s (T=%lld, P=%lld), found %s", n->name,
                     tensor_str(&expect, want, sizeof want), (long long)T, (long long)P,
                     tensor_str(t, got, sizeof got));
    bool empty = false;
    for (int d = 0; d < t->rank; d++)
      empty |= t->dims[d] == 0;
    if (!t->data && !empty)
      return oc_fail(e, "input \"%s\" has no data", n->name);
    *found = t;
    return 0;
  }
  return oc_fail(e, "input \"%s\" is not bound (it expects %s at T=%lld, P=%lld)", n->name,
                 tensor_str(&expect, want, sizeof want), (long long)T, (long long)P);
}

/* Every binding names a distinct input of the graph. */
static int check_binding_names(const ir_graph *g, const ir_binding *in, int n_in, oc_error *e) {
  for (int i = 0; i < n_in; i++) {
    if (!in[i].name)
      return oc_fail(e, "binding %d has no name", i);
    for (int j = 0; j < i; j++)
      if (in[j].name && strcmp(in[j].name, in[i].name) == 0)
        return oc_fail(e, "input \"%s\" is bound twice", in[i].name);
    bool known = false;
    for (int id = 0; id < g->n && !known; id++)
      known = g->nodes[id].op == IR_INPUT && strcmp(g->nodes[id].name, in[i].name) == 0;
    if (!known)
      return oc_fail(e, "binding \"%s\" names no input of the graph", in[i].name);
  }
  return 0;
}

/* Stores the new rows at P.. of the cache; the value is all P+T rows. */
static void kv_append(ir_interp *it, int id, int64_t T, ir_value *v) {
  const ir_node *n = &it->g->nodes[id];
  int cache = n->in[0];
  int64_t row = it->cache_row[cache];
  interp_copy(IR_F32, it->cache[cache], it->P * row, &it->val[n->in[1]].t, 0, T * row);
  v->t = concrete(&n->type, T, it->P);
  v->t.dtype = IR_F32;
  v->t.data = it->cache[cache];
  v->live = true;
}

/* ---- values placed by a memory plan (ir_interp_use_arena) ---- */

/* Like alloc_value, but at the plan's offset in the arena when it gives one.
 * The storage is zeroed unless an input is computed in place over it. */
static int place_value(ir_interp *it, int id, int64_t T, int64_t P, ir_value *v, oc_error *e) {
  if (!it->arena || it->arena_off[id] < 0)
    return alloc_value(it->g, id, T, P, v, e);
  const ir_node *n = &it->g->nodes[id];
  v->t = concrete(&n->type, T, P);
  if (ir_dtype_is_float(v->t.dtype) || n->op == IR_OUTPUT)
    v->t.dtype = IR_F32;
  int64_t bytes = (int64_t)ir_dtype_size(v->t.dtype);
  for (int i = 0; i < v->t.rank; i++) {
    if (v->t.dims[i] < 0 || (v->t.dims[i] && bytes > INT64_MAX / v->t.dims[i]))
      return oc_fail(e, "dim %d is %lld at T=%lld, P=%lld", i, (long long)v->t.dims[i],
                     (long long)T, (long long)P);
    bytes *= v->t.dims[i];
  }
  if (bytes > it->arena_size[id])
    return oc_fail(e, "the memory plan gives it %lld bytes, it needs %lld at T=%lld, P=%lld "
                   "(plan for a larger max_tokens or max_ctx)", (long long)it->arena_size[id],
                   (long long)bytes, (long long)T, (long long)P);
  unsigned char *at = it->arena + it->arena_off[id];
  bool in_place = false;
  for (int i = 0; i < ir_arity(n); i++)
    in_place |= it->val[n->in[i]].t.data == at;
  if (!in_place)
    memset(at, 0, (size_t)bytes);
  v->t.data = v->buf = at; /* kernels write through buf; eval_placed takes it back */
  v->live = true;
  return 0;
}

static int eval_node(ir_interp *it, int id, int64_t T, const ir_binding *in, int n_in, oc_error *e);

/* eval_node for a planned arena: a reshape or output placed on its input's
 * bytes is that value (no copy); other values' storage stays the arena's. */
static int eval_placed(ir_interp *it, int id, int64_t T, const ir_binding *in, int n_in,
                       oc_error *e) {
  if (!it->arena || it->arena_off[id] < 0)
    return eval_node(it, id, T, in, n_in, e);
  const ir_node *n = &it->g->nodes[id];
  ir_value *v = &it->val[id];
  if (n->op == IR_RESHAPE || n->op == IR_OUTPUT) {
    const ir_value *a = &it->val[n->in[0]];
    ir_tensor t = concrete(&n->type, T, it->P);
    t.dtype = ir_dtype_is_float(t.dtype) || n->op == IR_OUTPUT ? IR_F32 : t.dtype;
    if (a->t.data == it->arena + it->arena_off[id] && a->t.dtype == t.dtype) {
      t.data = a->t.data;
      *v = (ir_value){.t = t, .live = true};
      return 0;
    }
  }
  int rc = eval_node(it, id, T, in, n_in, e);
  v->buf = NULL;
  return rc;
}

int ir_interp_use_arena(ir_interp *it, const int64_t *offsets, const int64_t *bytes,
                        int64_t arena_bytes, void *arena, oc_error *e) {
  if (it->val)
    release_all(it); /* outputs may point into the old arena */
  if (it->arena_owned)
    free(it->arena);
  free(it->arena_off);
  free(it->arena_size);
  it->arena = NULL;
  it->arena_off = it->arena_size = NULL;
  it->arena_owned = false;
  if (!offsets)
    return 0;
  if (!bytes || arena_bytes < 0)
    return oc_fail(e, "an arena needs the bytes of each value and a size >= 0");
  for (int id = 0; id < it->g->n; id++)
    if (offsets[id] >= 0 && (bytes[id] < 0 || offsets[id] > arena_bytes - bytes[id]))
      return oc_fail(e, "node %%%d (%s): [%lld, +%lld) lies outside the %lld-byte arena", id,
                     ir_op_table[it->g->nodes[id].op].name, (long long)offsets[id],
                     (long long)bytes[id], (long long)arena_bytes);
  size_t n = (size_t)it->g->n, size = ((size_t)arena_bytes + 63) / 64 * 64;
  it->arena_off = oc_malloc((n + 1) * sizeof *it->arena_off);
  it->arena_size = oc_malloc((n + 1) * sizeof *it->arena_size);
  it->arena = arena ? arena : oc_aligned_alloc(64, size ? size : 64);
  it->arena_owned = !arena;
  if (!it->arena_off || !it->arena_size || !it->arena) {
    ir_interp_use_arena(it, NULL, NULL, 0, NULL, NULL);
    return oc_fail(e, "out of memory for an arena of %lld bytes", (long long)arena_bytes);
  }
  memcpy(it->arena_off, offsets, n * sizeof *offsets);
  memcpy(it->arena_size, bytes, n * sizeof *bytes);
  return 0;
}

static int eval_node(ir_interp *it, int id, int64_t T, const ir_binding *in, int n_in, oc_error *e) {
  const ir_node *n = &it->g->nodes[id];
  ir_value *v = &it->val[id];
  int arity = ir_arity(n);
  const ir_value *in_val[IR_MAX_INPUTS] = {NULL};
  for (int i = 0; i < arity; i++)
    in_val[i] = &it->val[n->in[i]];
  const ir_value *a = in_val[0], *b = in_val[1];
  int64_t P = it->P;
  switch (n->op) {
  case IR_INPUT: {
    const ir_tensor *t = NULL;
    if (find_binding(n, T, P, in, n_in, &t, e))
      return -1;
    *v = (ir_value){.t = *t, .live = true};
    return 0;
  }
  case IR_WEIGHT:
    *v = (ir_value){.t = it->weight[id], .live = true};
    return 0;
  case IR_KV_CACHE:
    *v = (ir_value){.t = concrete(&n->type, T, P), .live = true};
    v->t.dtype = IR_F32;
    v->t.data = it->cache[id];
    return 0;
  case IR_KV_APPEND:
    kv_append(it, id, T, v);
    return 0;
  default:
    break;
  }
  if (place_value(it, id, T, P, v, e))
    return -1;
  switch (n->op) {
  case IR_CONST:
    *(float *)v->buf = (float)n->value;
    return 0;
  case IR_POSITIONS:
    for (int64_t t = 0; t < T; t++)
      ((int32_t *)v->buf)[t] = (int32_t)(P + t);
    return 0;
  case IR_OUTPUT: /* always f32, whatever the value's dtype */
    interp_copy(IR_F32, v->buf, 0, &a->t, 0, ir_shape_numel(&n->type.shape, T, P));
    return 0;
  default:
    if (ir_op_table[n->op].flags & IR_FUSED)
      return interp_eval_fused(n, in_val, P, v, e);
    return interp_eval(n, a, b, P, v, e);
  }
}

int ir_interp_run(ir_interp *it, int64_t T, const ir_binding *inputs, int n_inputs, oc_error *e) {
  const ir_graph *g = it->g;
  release_all(it); /* the previous call's outputs */
  if (T < 1)
    return oc_fail(e, "a call needs at least one token, found T = %lld", (long long)T);
  if (T > it->max_ctx - it->P)
    return oc_fail(e, "context full: P + T = %lld + %lld = %lld exceeds the %lld positions of "
                   "the KV cache (reset to start over)", (long long)it->P, (long long)T,
                   (long long)(it->P + T), (long long)it->max_ctx);
  if (n_inputs < 0 || (n_inputs > 0 && !inputs))
    return oc_fail(e, "%d input bindings but no array of them", n_inputs);
  if (check_binding_names(g, inputs, n_inputs, e))
    return -1;
  for (int id = 0; id < g->n; id++) {
    const ir_node *n = &g->nodes[id];
    if (eval_placed(it, id, T, inputs, n_inputs, e)) {
      release_all(it);
      return n->op == IR_INPUT ? -1 : oc_wrap(e, "node %%%d (%s)", id, ir_op_table[n->op].name);
    }
    for (int i = 0; i < ir_arity(n); i++)
      if (it->last_use[n->in[i]] == id)
        release(&it->val[n->in[i]]);
    if (it->last_use[id] == id && n->op != IR_OUTPUT)
      release(&it->val[id]);
  }
  it->P += T;
  return 0;
}

const ir_tensor *ir_interp_output(const ir_interp *it, const char *name) {
  for (int id = 0; name && id < it->g->n; id++) {
    const ir_node *n = &it->g->nodes[id];
    if (n->op == IR_OUTPUT && strcmp(n->name, name) == 0)
      return it->val[id].live ? &it->val[id].t : NULL;
  }
  return NULL;
}

int64_t ir_interp_position(const ir_interp *it) { return it->P; }

void ir_interp_rewind(ir_interp *it, int64_t P) {
  if (P >= 0 && P < it->P)
    it->P = P;
}
