/* Lowering a planned graph, fused or not, to an executor program: one step per
 * compute node with its kernel from the cache (fused ops by their own kernels;
 * primitives by the shaped kernels over the rows of their output, elementwise
 * ones as one-op elementwise kernels), views (reshape, output) as their
 * source's bytes, KV caches as the program's, rope tables precomputed for every
 * position at load (exactly as the interpreter computes them) and indexed by P.
 * Matmul weights are packed into the kernels' panels once, at load. A
 * weight the graph reads as bf16 but the checkpoint stores in f32 or f16 is
 * rounded to nearest even where it is packed or copied, never converted
 * whole, giving the bits of a checkpoint converted to bf16 first.
 * Invariant: every argument is a planned arena offset, a weight in place (the
 * embedding table, in the graph's dtype), a program-owned table, copy,
 * packed weight or cache, or the token ids; nothing is allocated per call. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "kv_layout.h"
#include "olmoc/alloc.h"
#include "olmoc/compile.h"
#include "olmoc/weights.h"

typedef struct lower {
  const ir_graph *g;
  const pass_plan *plan;
  cg_jit *j;
  rt_program *p;
  int64_t ctx;
  ir_weight_fn weights;
  void *wctx;
  rt_arg *arg;       /* [n]: where each node's value lives */
  ir_tensor *weight; /* [n]: weight nodes' tensors */
  rt_arg *copy;      /* [n]: a weight copied once: to f32 (for rmsnorm), or a table rounded to bf16 */
  bool *has_copy;    /* [n] */
  rt_arg *packed;    /* [n]: a matmul weight in the kernels' panels, once */
  bool *has_packed;  /* [n] */
  bool *matrix;      /* [n]: a weight some matmul reads packed (what `packing` counts) */
  oc_step packing;   /* the matrices packed so far */
  bool q8;           /* matmul weights quantized, q8 or q4 (their rows in q8) */
  bool *head_major;  /* [n]: kv_cache nodes laid out [KV][ctx][D] (cg_kv_layouts) */
  rt_arg q8_arg;     /* q8: the scratch of [max_tokens] rows of cg_q8_row_bytes(the largest K) */
  int q8_holds;      /* the node whose rows the steps so far leave in q8_arg, or -1 */
  int tokens;        /* the input node of the token ids, or -1 */
  int64_t vocab;     /* rows of the table the token ids index */
  char expr[32];     /* the node being lowered: a primitive op as a one-op expr (the cache copies it) */
} lower;

static const char *op_name(const ir_node *n) { return ir_op_table[n->op].name; }

static rt_count count_of(ir_dim d) { return (rt_count){d.c, d.t, d.p}; }

/* The product of dims [from, to) of s, when it is linear in T and P. */
static int product(const ir_node *n, const ir_shape *s, int from, int to, rt_count *out, oc_error *e) {
  int64_t c = 1;
  int sym = -1;
  for (int i = from; i < to; i++) {
    if (ir_dim_is_const(s->dim[i]))
      c *= s->dim[i].c;
    else if (sym < 0)
      sym = i;
    else
      return oc_fail(e, "%s: a shape with two symbolic dims has no linear row count", op_name(n));
  }
  rt_count r = {c, 0, 0};
  if (sym >= 0) {
    rt_count d = count_of(s->dim[sym]);
    r = (rt_count){d.c * c, d.t * c, d.p * c};
  }
  *out = r;
  return 0;
}

static int const_dim(const ir_node *n, const ir_shape *s, int i, int64_t *out, oc_error *e) {
  if (i < 0 || i >= s->rank || !ir_dim_is_const(s->dim[i]))
    return oc_fail(e, "%s: dim %d must be a constant for the JIT", op_name(n), i);
  *out = s->dim[i].c;
  return 0;
}

static const ir_shape *shape(const lower *l, int id) { return &l->g->nodes[id].type.shape; }

/* rope_cos / rope_sin of `positions`, for all ctx positions: [ctx, dim] f32,
 * computed as ir/interp_ops.c rope_table does (f32 frequency and angle). */
static int rope_table(lower *l, int id, oc_error *e) {
  const ir_node *n = &l->g->nodes[id];
  if (l->g->nodes[n->in[0]].op != IR_POSITIONS || n->dim < 2 || n->dim % 2)
    return oc_fail(e, "%s: the JIT takes tables of the call's positions of an even width", op_name(n));
  float *y = rt_program_alloc(l->p, (size_t)(l->ctx * n->dim) * sizeof *y, e);
  if (!y)
    return -1;
  int64_t half = n->dim / 2;
  for (int64_t t = 0; t < l->ctx; t++)
    for (int64_t i = 0; i < n->dim; i++) {
      float exponent = (float)(2 * (i % half)) / (float)n->dim;
      float inv_freq = 1.0f / powf((float)n->theta, exponent);
      float angle = (float)(int32_t)t * inv_freq;
      y[t * n->dim + i] = (float)(n->op == IR_ROPE_COS ? cos(angle) : sin(angle));
    }
  l->arg[id] = (rt_arg){.kind = RT_ARG_PTR, .ptr = y, .p_stride = n->dim * (int64_t)sizeof *y, .room = (uint64_t)(l->ctx * n->dim) * sizeof *y};
  return 0;
}

/* Weight node n's tensor w is f32 or f16 and the graph reads it as bf16:
 * it is rounded where it is read (packed, copied). */
static bool rounded(const ir_node *n, const ir_tensor *w) {
  return n->type.dtype == IR_BF16 && (w->dtype == IR_F32 || w->dtype == IR_F16);
}

static int weight(lower *l, int id, oc_error *e) {
  const ir_node *n = &l->g->nodes[id];
  ir_tensor *w = &l->weight[id];
  oc_fail(e, "the lookup failed without saying why");
  if (l->weights(l->wctx, n->name, w, e))
    return oc_wrap(e, "weight \"%s\"", n->name);
  bool prepacked = l->q8 && w->dtype == cg_quantized_dtype(l->j, n->name) && w->rank == 2; /* see cg_lower */
  bool ok = (w->dtype == n->type.dtype || prepacked || rounded(n, w)) && w->rank == n->type.shape.rank && w->data;
  for (int i = 0; ok && i < w->rank; i++)
    ok = ir_dim_is_const(n->type.shape.dim[i]) && w->dims[i] == n->type.shape.dim[i].c;
  if (!ok) {
    char want[64];
    return oc_fail(e, "weight \"%s\": the graph expects %s", n->name,
                   ir_type_str(&n->type, want, sizeof want));
  }
  uint64_t bytes = ir_dtype_size(w->dtype);
  for (int i = 0; i < w->rank; i++)
    bytes *= (uint64_t)w->dims[i];
  if (prepacked)
    bytes = cg_packed_bytes(l->j, w->dtype, w->dims[0], w->dims[1]);
  if (!rounded(n, w)) /* a rounded weight is read through its packed panels or its copy only */
    l->arg[id] = (rt_arg){.kind = RT_ARG_PTR, .ptr = w->data, .room = bytes};
  return 0;
}

/* Weight node src's tensor in `to` (f32, or bf16 for a rounded table), in
 * program memory, once; a rounded weight is rounded first, so f32 holds
 * the bf16 values the graph reads. */
static int copy_arg(lower *l, int src, ir_dtype to, rt_arg *out, oc_error *e) {
  if (!l->has_copy[src]) {
    const ir_tensor *w = &l->weight[src];
    bool round = rounded(&l->g->nodes[src], w);
    int64_t total = 1;
    for (int d = 0; d < w->rank; d++)
      total *= w->dims[d];
    void *y = rt_program_alloc(l->p, (size_t)total * ir_dtype_size(to), e);
    if (!y)
      return -1;
    for (int64_t k = 0; k < total; k++) {
      float x = ir_load_f32(w->dtype, w->data, k);
      uint16_t h = rt_bf16_round(x);
      if (to == IR_BF16)
        ((uint16_t *)y)[k] = h;
      else
        ((float *)y)[k] = round ? ir_load_f32(IR_BF16, &h, 0) : x;
    }
    l->copy[src] = (rt_arg){.kind = RT_ARG_PTR, .ptr = y, .room = (uint64_t)total * ir_dtype_size(to)};
    l->has_copy[src] = true;
  }
  *out = l->copy[src];
  return 0;
}

/* Input i of node n as f32: small weights in another dtype are converted once. */
static int f32_arg(lower *l, const ir_node *n, int i, rt_arg *out, oc_error *e) {
  int src = n->in[i];
  const ir_node *s = &l->g->nodes[src];
  if (s->type.dtype == IR_F32) {
    *out = l->arg[src];
    return 0;
  }
  if (s->op != IR_WEIGHT)
    return oc_fail(e, "%s: input %d is %s; the JIT's kernels read f32", op_name(n), i,
                   ir_dtype_name(s->type.dtype));
  return copy_arg(l, src, IR_F32, out, e);
}

/* Input i of gather n, read in place: the table, or its bf16 copy when rounded. */
static int table_arg(lower *l, const ir_node *n, int i, rt_arg *out, oc_error *e) {
  int src = n->in[i];
  if (i == 0 && rounded(&l->g->nodes[src], &l->weight[src]))
    return copy_arg(l, src, IR_BF16, out, e);
  *out = l->arg[src];
  return 0;
}

/* Until every step is added and the kernels compiled together (bind_kernels),
 * a step names its kernel by its index in the cache, plus one. */
static int kernel(lower *l, const cg_kernel_key *key, void **fn, oc_error *e) {
  int index;
  if (cg_kernel_request(l->j, key, &index, e))
    return -1;
  *fn = (void *)(uintptr_t)(index + 1);
  return 0;
}

static int bind_kernels(lower *l, oc_error *e) {
  if (cg_kernel_compile_pending(l->j, e))
    return -1;
  for (int64_t i = 0; i < rt_program_steps(l->p); i++) {
    uintptr_t index = (uintptr_t)rt_program_step(l->p, i)->fn;
    if (index)
      rt_program_set_kernel(l->p, i, cg_kernel_fn(l->j, (int)(index - 1)), cg_kernel_contract_at(l->j, (int)(index - 1)));
  }
  return 0;
}

/* Matrix weights (matmul's, gather's table) are f32 or bf16. */
static int matrix(lower *l, const ir_node *n, int i, ir_dtype *wtype, oc_error *e) {
  const ir_node *w = &l->g->nodes[n->in[i]];
  if (w->op != IR_WEIGHT || w->type.shape.rank != 2)
    return oc_fail(e, "%s: input %d must be a 2-D weight for the JIT", op_name(n), i);
  *wtype = w->type.dtype;
  return 0;
}

/* Input i of matmul node n, a 2-D weight, packed into panels once (a tied
 * embedding table is packed for the head and read in place by gather). */
static int packed_arg(lower *l, const ir_node *n, int i, ir_dtype *wtype, rt_arg *out, oc_error *e) {
  int src = n->in[i];
  if (matrix(l, n, i, wtype, e))
    return -1;
  if (l->q8)
    *wtype = cg_quantized_dtype(l->j, l->g->nodes[src].name);
  else if (*wtype != IR_BF16 && cg_jit_bf16_compute(l->j))
    return oc_fail(e, "--compute bf16 multiplies bf16 weights, and \"%s\" is %s (--dtype bf16 rounds f32 and "
                   "f16 weights to bf16)", l->g->nodes[src].name, ir_dtype_name(*wtype));
  if (!l->has_packed[src] && l->q8 && l->weight[src].dtype == *wtype) { /* already packed, used in place */
    l->packed[src] = l->arg[src];
    l->has_packed[src] = true;
    oc_step_add(&l->packing, 1, 0);
  }
  if (!l->has_packed[src]) {
    const void *y;
    const ir_tensor *w = &l->weight[src];
    if (cg_packed_weight(l->j, l->p, l->g->nodes[src].name, w, *wtype, &y, e))
      return -1;
    l->packed[src] = (rt_arg){.kind = RT_ARG_PTR, .ptr = y, .room = cg_packed_bytes(l->j, *wtype, w->dims[0], w->dims[1])};
    l->has_packed[src] = true;
    oc_step_add(&l->packing, 1, (double)(w->dims[0] * w->dims[1]) * (double)ir_dtype_size(w->dtype));
  }
  *out = l->packed[src];
  return 0;
}

/* Whether matmul n multiplies by a weight matrix (else by an activation). */
static bool by_weight(const lower *l, const ir_node *n) {
  const ir_node *b = &l->g->nodes[n->in[1]];
  return n->op != IR_MATMUL || (b->op == IR_WEIGHT && b->type.shape.rank == 2);
}

/* Input i of n is a matmul's weight matrix (read packed). */
static bool matmul_weight(const lower *l, const ir_node *n, int i) {
  return ((n->op == IR_MATMUL || n->op == IR_MATMUL_ADD) && i == 1 && by_weight(l, n)) ||
         (n->op == IR_MATMUL_SWIGLU && i >= 1);
}

/* The key of a shaped kernel or an elementwise one: n's input shapes, its
 * shape, its attributes. A primitive elementwise op becomes the one-op expr
 * written into expr[32]. */
static cg_kernel_key shaped_key(const lower *l, const ir_node *n, char *expr) {
  cg_kernel_key key = {.op = n->op, .n_in = ir_arity(n), .out = n->type.shape, .axis = n->axis,
                       .start = n->start, .times = n->times};
  memcpy(key.perm, n->perm, sizeof key.perm);
  for (int i = 0; i < key.n_in; i++)
    key.in[i] = *shape(l, n->in[i]);
  if (ir_op_table[n->op].flags & IR_ELEMENTWISE) {
    if (n->op != IR_ELTWISE)
      snprintf(expr, 32, key.n_in == 1 ? "%%0 %s" : "%%0 %%1 %s", op_name(n));
    key.expr = n->op == IR_ELTWISE ? n->name : expr;
    key.op = IR_ELTWISE;
  }
  return key;
}

/* q8: matmul step s of node n reads its rows from q8_arg, quantized by a
 * step before it unless the last quantization there was of the same input. */
static int q8_input(lower *l, const ir_node *n, rt_step *s, int64_t K, oc_error *e) {
  if (l->q8_holds != n->in[0]) {
    rt_step q = {.call = RT_CALL_RANGE, .n_args = 2, .arg = {s->arg[0], l->q8_arg},
                 .work = s->rows, .grain = 1, .what = "q8_quantize", .layer = n->layer};
    if (kernel(l, &(cg_kernel_key){.op = CG_OP_Q8_QUANTIZE, .k = K}, &q.fn, e) || rt_program_add_step(l->p, &q, e))
      return -1;
    l->q8_holds = n->in[0];
  }
  s->arg[0] = l->q8_arg;
  return 0;
}

/* ---- a key and a step per lowering of the kernel table (kernels.h) ----
 * Each fills key (its wtype already set from the packed weights) and s's
 * work, rows and grain for node n, whose input x is the first. */
typedef int key_fn(lower *l, const ir_node *n, cg_kernel_key *key, rt_step *s, oc_error *e);

/* Over the rows of the output, all its dims but the last, the key from the shapes. */
static int key_rows(lower *l, const ir_node *n, cg_kernel_key *key, rt_step *s, oc_error *e) {
  *key = shaped_key(l, n, l->expr);
  return product(n, &n->type.shape, 0, n->type.shape.rank - 1, &s->work, e);
}

static int key_matmul(lower *l, const ir_node *n, cg_kernel_key *key, rt_step *s, oc_error *e) {
  const ir_shape *x = shape(l, n->in[0]);
  if (const_dim(n, shape(l, n->in[1]), 0, &key->n, e) || const_dim(n, shape(l, n->in[1]), 1, &key->k, e) ||
      product(n, x, 0, x->rank - 1, &s->rows, e))
    return -1;
  s->work = (rt_count){key->n, 0, 0};
  s->grain = cg_matmul_panel(l->j);
  return l->q8 ? q8_input(l, n, s, key->k, e) : 0;
}

static int key_rmsnorm(lower *l, const ir_node *n, cg_kernel_key *key, rt_step *s, oc_error *e) {
  const ir_shape *x = shape(l, n->in[0]);
  key->eps = (float)n->value;
  return const_dim(n, x, x->rank - 1, &key->k, e) || product(n, x, 0, x->rank - 1, &s->work, e) ? -1 : 0;
}

/* rope and attention: x or q [T,H,D]; attention's caches in their chosen layout. */
static int key_heads(lower *l, const ir_node *n, cg_kernel_key *key, rt_step *s, oc_error *e) {
  const ir_shape *x = shape(l, n->in[0]);
  if (x->rank != 3 || const_dim(n, x, 1, &key->n, e) || const_dim(n, x, 2, &key->k, e) ||
      product(n, x, 0, 2, &s->work, e))
    return x->rank != 3 ? oc_fail(e, "%s: expected q or x as [T,H,D]", op_name(n)) : -1;
  if (n->op == IR_ATTENTION) {
    key->scale = (float)n->value;
    int cache = cg_kv_cache_of(l->g, n->in[1]);
    key->kv_head_major = cache >= 0 && l->head_major[cache];
    key->kv_bf16 = key->kv_head_major && l->j->kv_bf16;
    if (const_dim(n, shape(l, n->in[1]), 1, &key->kv, e))
      return -1;
  }
  return 0;
}

static int key_gather(lower *l, const ir_node *n, cg_kernel_key *key, rt_step *s, oc_error *e) {
  const ir_shape *x = shape(l, n->in[0]);
  if (matrix(l, n, 0, &key->wtype, e) || const_dim(n, x, 1, &key->k, e) ||
      product(n, shape(l, n->in[1]), 0, shape(l, n->in[1])->rank, &s->work, e))
    return -1;
  if (n->in[1] != l->tokens)
    return oc_fail(e, "gather: the JIT gathers rows of the token ids only");
  if (l->weight[n->in[0]].dtype == IR_I8 || l->weight[n->in[0]].dtype == IR_Q4)
    return oc_fail(e, "gather: the table \"%s\" is a packed %s matrix; gather reads f32 or bf16 rows",
                   l->g->nodes[n->in[0]].name, l->weight[n->in[0]].dtype == IR_Q4 ? "q4" : "q8");
  l->vocab = shape(l, n->in[0])->dim[0].c;
  return 0;
}

static int key_swiglu(lower *l, const ir_node *n, cg_kernel_key *key, rt_step *s, oc_error *e) {
  (void)l, (void)key;
  return product(n, &n->type.shape, 0, n->type.shape.rank, &s->work, e);
}

static key_fn *const key_of[CG_LOWER_COUNT] = {
    [CG_LOWER_MATMUL] = key_matmul, [CG_LOWER_RMSNORM] = key_rmsnorm, [CG_LOWER_SWIGLU] = key_swiglu,
    [CG_LOWER_HEADS] = key_heads,   [CG_LOWER_GATHER] = key_gather,   [CG_LOWER_ROWS] = key_rows,
};

/* The kernel table's row for node n: primitive elementwise ops run as
 * one-op elementwise kernels, a matmul of two activations as a shaped one. */
static const cg_kernel_op *row_of(const lower *l, const ir_node *n) {
  bool eltwise = ir_op_table[n->op].flags & IR_ELEMENTWISE;
  cg_kernel_key k = {.op = eltwise ? IR_ELTWISE : n->op, .n_in = n->op == IR_MATMUL && !by_weight(l, n) ? 2 : 0};
  const cg_kernel_op *r = cg_kernel_op_of(&k);
  return r && key_of[r->lower] ? r : NULL;
}

/* The step computing node id into its planned arena offset. */
static int compute(lower *l, int id, oc_error *e) {
  const ir_node *n = &l->g->nodes[id];
  int64_t off = l->plan->offset[id];
  if (off < 0 || n->type.dtype != IR_F32)
    return oc_fail(e, "%s: the JIT needs an f32 value placed in the arena", op_name(n));
  l->arg[id] = (rt_arg){.kind = RT_ARG_ARENA, .offset = off};
  rt_step s = {.what = op_name(n), .grain = 1, .layer = n->layer};
  cg_kernel_key key = {.op = n->op};
  int arity = ir_arity(n);
  for (int i = 0; i < arity; i++) {
    int rc = n->op == IR_GATHER      ? table_arg(l, n, i, &s.arg[i], e)
             : matmul_weight(l, n, i) ? packed_arg(l, n, i, &key.wtype, &s.arg[i], e)
                                      : f32_arg(l, n, i, &s.arg[i], e);
    if (rc)
      return -1;
  }
  s.n_args = arity + 1;
  s.arg[arity] = l->arg[id];
  const cg_kernel_op *row = row_of(l, n);
  if (!row)
    return oc_fail(e, "the JIT has no kernel for op %s (run with --backend interp)", op_name(n));
  if (key_of[row->lower](l, n, &key, &s, e))
    return -1;
  s.call = cg_kernel_call(&key);
  if (kernel(l, &key, &s.fn, e))
    return -1;
  return rt_program_add_step(l->p, &s, e);
}

static int node(lower *l, int id, oc_error *e) {
  const ir_node *n = &l->g->nodes[id];
  switch (n->op) {
  case IR_INPUT:
    if (n->type.dtype != IR_I32 || n->type.shape.rank != 1 || !ir_dim_eq(n->type.shape.dim[0], IR_DIM_T))
      return oc_fail(e, "input \"%s\": the JIT binds one input, the token ids i32[T]", n->name);
    l->tokens = id;
    l->arg[id] = (rt_arg){.kind = RT_ARG_TOKENS};
    return 0;
  case IR_WEIGHT:
    return weight(l, id, e);
  case IR_CONST: {
    float *v = rt_program_alloc(l->p, sizeof *v, e);
    if (!v)
      return -1;
    *v = (float)n->value;
    l->arg[id] = (rt_arg){.kind = RT_ARG_PTR, .ptr = v, .room = sizeof *v};
    return 0;
  }
  case IR_POSITIONS: {
    l->arg[id] = (rt_arg){.kind = RT_ARG_ARENA, .offset = l->plan->offset[id]};
    bool tables_only = true;
    for (int u = id + 1; u < l->g->n; u++)
      for (int i = 0; i < ir_arity(&l->g->nodes[u]); i++)
        if (l->g->nodes[u].in[i] == id)
          tables_only &= l->g->nodes[u].op == IR_ROPE_COS || l->g->nodes[u].op == IR_ROPE_SIN;
    if (tables_only)
      return 0;
    if (l->plan->offset[id] < 0)
      return oc_fail(e, "positions: the plan gives it no arena storage");
    rt_step s = {.call = RT_CALL_POSITIONS, .n_args = 1, .arg = {l->arg[id]}, .work = {0, 1, 0},
                 .grain = 1, .what = "positions", .layer = -1};
    return rt_program_add_step(l->p, &s, e);
  }
  case IR_ROPE_COS: case IR_ROPE_SIN:
    return rope_table(l, id, e);
  case IR_KV_CACHE: {
    rt_count row;
    int64_t index;
    if (n->type.dtype != IR_F32 || n->type.shape.rank < 2 ||
        product(n, &n->type.shape, 1, n->type.shape.rank, &row, e) || row.t || row.p)
      return oc_fail(e, "kv_cache \"%s\": the JIT keeps f32 caches of constant rows", n->name);
    if (l->j->kv_bf16 && !l->head_major[id])
      return oc_fail(e, "kv_cache \"%s\": --kv-cache bf16 needs the fused attention to be all that reads "
                     "the cache (run -O1 or -O2)", n->name);
    if (rt_program_add_cache(l->p, row.c, l->j->kv_bf16, &index, e))
      return -1;
    l->arg[id] = (rt_arg){.kind = RT_ARG_CACHE, .offset = index};
    return 0;
  }
  case IR_KV_APPEND: {
    const ir_node *cache = &l->g->nodes[n->in[0]];
    rt_count row;
    if (cache->op != IR_KV_CACHE || product(n, &cache->type.shape, 1, cache->type.shape.rank, &row, e))
      return oc_fail(e, "kv_append: the JIT appends to a kv_cache node only");
    rt_arg src;
    if (f32_arg(l, n, 1, &src, e))
      return -1;
    l->arg[id] = l->arg[n->in[0]];
    rt_step s = {.call = RT_CALL_KV_APPEND, .n_args = 2, .arg = {src, l->arg[id]},
                 .work = {0, 1, 0}, .grain = 1, .row_floats = row.c,
                 .kv_heads = l->head_major[n->in[0]] ? cache->type.shape.dim[1].c : 0,
                 .what = "kv_append", .layer = n->layer};
    return rt_program_add_step(l->p, &s, e);
  }
  case IR_RESHAPE:
    l->arg[id] = l->arg[n->in[0]];
    return 0;
  case IR_OUTPUT: {
    int64_t cols = 0;
    const ir_shape *s = &n->type.shape;
    if (strcmp(n->name, "logits") || l->g->nodes[n->in[0]].type.dtype != IR_F32 || s->rank != 2 ||
        !ir_dim_eq(s->dim[0], IR_DIM_T) || const_dim(n, s, 1, &cols, e))
      return oc_fail(e, "output \"%s\": the JIT returns one output, f32 logits [T,vocab]", n->name);
    l->arg[id] = l->arg[n->in[0]];
    rt_program_set_output(l->p, l->arg[id], cols, 0);
    return 0;
  }
  default:
    return compute(l, id, e);
  }
}

static bool quantizes(const cg_jit *j) { return cg_jit_q8(j) || cg_jit_q4(j); }

/* q8: the buffer of quantized rows, for max_tokens rows of the widest matmul
 * input: scratch the steps write (a compiled model's loader allocates it again). */
static void *q8_buffer(lower *l, int64_t max_tokens, oc_error *e) {
  int64_t K = 1;
  for (int id = 0; id < l->g->n; id++) {
    const ir_node *n = &l->g->nodes[id];
    if (n->op == IR_MATMUL || n->op == IR_MATMUL_ADD || n->op == IR_MATMUL_SWIGLU) {
      const ir_shape *w = shape(l, n->in[1]);
      if (w->rank == 2 && ir_dim_is_const(w->dim[1]) && w->dim[1].c > K)
        K = w->dim[1].c;
    }
  }
  size_t bytes = (size_t)max_tokens * cg_q8_row_bytes(K);
  void *rows = rt_program_scratch(l->p, bytes, e);
  l->q8_arg = (rt_arg){.kind = RT_ARG_PTR, .ptr = rows, .room = bytes, .writable = true};
  return rows;
}

/* Whether the lookup hands over gather n's table in f32 or f16 for a graph reading bf16 (copied rounded). */
static bool rounded_table(const ir_graph *g, const ir_node *n, ir_weight_fn weights, void *wctx) {
  const ir_node *w = &g->nodes[n->in[0]];
  ir_tensor t;
  oc_error ignored; /* a missing weight fails the lowering, which says so */
  return n->op == IR_GATHER && weights && w->op == IR_WEIGHT && !weights(wctx, w->name, &t, &ignored) &&
         rounded(w, &t);
}

void cg_program_bytes(const cg_jit *j, const ir_graph *g, const pass_plan *plan, int64_t ctx, ir_weight_fn weights,
                      void *weights_ctx, uint64_t *packed, uint64_t *other) {
  lower l = {.g = g};
  bool *seen = oc_calloc((size_t)g->n, sizeof *seen); /* [n]: counted already (NULL: count each use) */
  int64_t max_tokens = plan->max_tokens < ctx ? plan->max_tokens : ctx, K = 1;
  *packed = 0;
  *other = (uint64_t)plan->arena_bytes;
  for (int id = 0; id < g->n; id++) {
    const ir_node *n = &g->nodes[id];
    for (int i = 0; i < ir_arity(n); i++) {
      const ir_shape *w = shape(&l, n->in[i]);
      if (!matmul_weight(&l, n, i) || w->rank != 2 || !ir_dim_is_const(w->dim[0]) ||
          !ir_dim_is_const(w->dim[1]) || (seen && seen[n->in[i]]))
        continue;
      if (seen)
        seen[n->in[i]] = true;
      ir_dtype wt = quantizes(j) ? cg_quantized_dtype(j, g->nodes[n->in[i]].name) : g->nodes[n->in[i]].type.dtype;
      *packed += cg_packed_bytes(j, wt, w->dim[0].c, w->dim[1].c);
      K = w->dim[1].c > K ? w->dim[1].c : K;
    }
    rt_count row;
    if (n->op == IR_KV_CACHE && !product(n, &n->type.shape, 1, n->type.shape.rank, &row, NULL))
      *other += (uint64_t)(ctx * row.c) * (j->kv_bf16 ? sizeof(uint16_t) : sizeof(float));
    if (n->op == IR_ROPE_COS || n->op == IR_ROPE_SIN)
      *other += (uint64_t)(ctx * n->dim) * sizeof(float);
    if (rounded_table(g, n, weights, weights_ctx))
      *other += (uint64_t)(shape(&l, n->in[0])->dim[0].c * shape(&l, n->in[0])->dim[1].c) * sizeof(uint16_t);
  }
  if (quantizes(j))
    *other += (uint64_t)max_tokens * cg_q8_row_bytes(K);
  free(seen);
}

/* Marks the weights matmuls read packed; returns how many. */
static int64_t mark_matrices(lower *l) {
  int64_t n = 0;
  for (int id = 0; id < l->g->n; id++)
    for (int i = 0; i < ir_arity(&l->g->nodes[id]); i++) {
      int src = l->g->nodes[id].in[i];
      if (matmul_weight(l, &l->g->nodes[id], i) && !l->matrix[src])
        l->matrix[src] = true, n++;
    }
  return n;
}

/* A scratch pack for the panels, when j places them in a file. */
static int scratch_sink(cg_jit *j, const lower *l, const pass_plan *plan, int64_t ctx, oc_error *e) {
  uint64_t packed = 0, other;
  if (j->pack_dir && !j->sink)
    cg_program_bytes(j, l->g, plan, ctx, l->weights, l->wctx, &packed, &other);
  return cg_scratch_sink(j, l->p, packed, e);
}

int cg_lower(cg_jit *j, const ir_graph *g, const pass_plan *plan, int64_t ctx, ir_weight_fn weights,
             void *wctx, rt_program **out, oc_error *e) {
  *out = NULL;
  if (ir_verify(g, e))
    return oc_wrap(e, "the JIT needs a graph that verifies");
  if (!plan || plan->n != g->n || plan->max_ctx < ctx || ctx < 1)
    return oc_fail(e, "the JIT needs a memory plan of this graph for a context of %lld positions "
                   "(end the passes with plan-memory)", (long long)ctx);
  lower l = {.g = g, .plan = plan, .j = j, .ctx = ctx, .weights = weights, .wctx = wctx, .tokens = -1,
             .q8 = quantizes(j), .q8_holds = -1};
  l.arg = oc_calloc((size_t)g->n, sizeof *l.arg);
  l.weight = oc_calloc((size_t)g->n, sizeof *l.weight);
  l.copy = oc_calloc((size_t)g->n, sizeof *l.copy);
  l.has_copy = oc_calloc((size_t)g->n, sizeof *l.has_copy);
  l.packed = oc_calloc((size_t)g->n, sizeof *l.packed);
  l.has_packed = oc_calloc((size_t)g->n, sizeof *l.has_packed);
  l.head_major = oc_calloc((size_t)g->n, sizeof *l.head_major);
  l.matrix = oc_calloc((size_t)g->n, sizeof *l.matrix);
  int64_t max_tokens = plan->max_tokens < ctx ? plan->max_tokens : ctx;
  int rc = !l.arg || !l.weight || !l.copy || !l.has_copy || !l.packed || !l.has_packed || !l.head_major || !l.matrix
               ? oc_fail(e, "out of memory lowering the graph")
               : rt_program_new(plan->arena_bytes, max_tokens, ctx, &l.p, e);
  if (!rc)
    rc = cg_kv_layouts(g, l.head_major, e);
  if (!rc)
    rc = scratch_sink(j, &l, plan, ctx, e);
  if (!rc && l.q8 && !q8_buffer(&l, max_tokens, e))
    rc = -1;
  int64_t matrices = rc ? 0 : mark_matrices(&l);
  oc_step_begin(&l.packing, matrices ? j->progress : NULL, l.q8 ? "quantizing weights" : "packing weights",
                matrices, "tensors", "B");
  int output = -1;
  for (int id = 0; !rc && id < g->n; id++) {
    if ((rc = node(&l, id, e)))
      oc_wrap(e, "node %%%d (%s)", id, op_name(&g->nodes[id]));
    output = g->nodes[id].op == IR_OUTPUT ? id : output;
  }
  oc_step_end(&l.packing);
  j->sink = NULL;
  if (!rc && (output < 0 || l.tokens < 0 || !l.vocab))
    rc = oc_fail(e, "the JIT needs token ids gathered from a table and a logits output");
  if (!rc)
    rc = bind_kernels(&l, e);
  if (!rc) {
    const ir_shape *s = &g->nodes[output].type.shape;
    rt_program_set_output(l.p, l.arg[output], s->dim[1].c, l.vocab);
    if (rt_program_check(l.p, e))
      rc = oc_wrap(e, "the lowered program does not keep to its kernels' contracts (a bug in olmoc)");
  }
  if (!rc) {
    *out = l.p;
  } else {
    rt_program_free(l.p);
  }
  free(l.arg);
  free(l.weight);
  free(l.copy);
  free(l.has_copy);
  free(l.packed);
  free(l.has_packed);
  free(l.head_major);
  free(l.matrix);
  return rc ? -1 : 0;
}

int cg_lower_packed(cg_jit *j, const ir_graph *g, const pass_plan *plan, int64_t ctx,
                    const rt_weights *src, ir_dtype dtype, rt_pack_writer *w, oc_error *e) {
  rt_pack_weights pw = {.w = w, .src = src, .dtype = dtype};
  rt_program *p;
  j->sink = w;
  if (cg_lower(j, g, plan, ctx, rt_pack_weight, &pw, &p, e))
    return -1;
  rt_kernel_symbol *k;
  int n;
  int rc = cg_kernel_symbols(j, &k, &n, e) || rt_program_pack(p, w, k, n, e);
  free(k);
  rt_program_free(p);
  return rc ? -1 : 0;
}
