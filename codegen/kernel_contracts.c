/* Each kernel's contract (olmoc/kernel_contract.h), from its key: how the
 * executor calls it, the work it can take, and the bytes each argument may
 * span from its address, as the emitters of emit/ read and write them (the
 * signatures of olmoc/codegen.h). Invariant: a contract never says less than
 * its kernel touches — tests/test_kernel_contracts.c runs every kernel of
 * the tiny model with each argument ending at an unmapped page — and is
 * exact for the steps lowering makes (cg_lower checks its own programs). */
#include <string.h>

#include "kernels.h"

#define DATA (RT_KIND(RT_ARG_ARENA) | RT_KIND(RT_ARG_PTR))

/* elem bytes x dims [from, to) of s; the symbolic ones become factors. */
static int shape_bytes(const ir_shape *s, int from, int to, int64_t elem, rt_extent *x, oc_error *e) {
  *x = (rt_extent){.scale = elem};
  for (int i = from; i < to; i++) {
    ir_dim d = s->dim[i];
    if (d.c < 0 || d.t < 0 || d.p < 0 || (!ir_dim_is_const(d) && x->n_factors == RT_EXTENT_FACTORS))
      return oc_fail(e, "a dim of %lld%+lldT%+lldP has no bound a model binary can check", (long long)d.c,
                     (long long)d.t, (long long)d.p);
    if (ir_dim_is_const(d) && __builtin_mul_overflow(x->scale, d.c, &x->scale))
      return oc_fail(e, "a tensor of more than 2^63 bytes");
    if (!ir_dim_is_const(d))
      memcpy(x->factor[x->n_factors++], (int64_t[4]){d.c, d.t, d.p, 0}, sizeof x->factor[0]);
  }
  return 0;
}

/* per x W, where W is the step's work count (R, its rows, when `rows`). */
static rt_extent per_item(int64_t per, bool rows) { return (rt_extent){.scale = per, .w = !rows, .r = rows}; }

static rt_arg_contract data(rt_extent bytes) { return (rt_arg_contract){.kinds = DATA, .bytes = bytes}; }

static rt_arg_contract output(rt_extent bytes) {
  return (rt_arg_contract){.kinds = DATA, .writes = 1, .bytes = bytes};
}

static rt_arg_contract weights(int64_t bytes) {
  return (rt_arg_contract){.kinds = RT_KIND(RT_ARG_PTR), .bytes = {.scale = bytes}};
}

/* x [M,K] (q8 rows when quantized), packed w [N,K], r and y [M,N]; work: columns. */
static int matmul(const cg_jit *j, const cg_kernel_key *k, rt_kernel_contract *c, oc_error *e) {
  (void)e;
  bool quantized = k->wtype == IR_I8 || k->wtype == IR_Q4;
  int64_t packed = (int64_t)cg_packed_bytes(j, k->wtype, k->n, k->k), y = 4 * k->n;
  c->grain = cg_matmul_panel(j);
  c->limited = 1;
  c->work_limit = (rt_extent){.scale = k->n};
  c->arg[0] = data(per_item(quantized ? (int64_t)cg_q8_row_bytes(k->k) : 4 * k->k, true));
  c->arg[1] = weights(packed);
  c->arg[2] = k->op == IR_MATMUL_ADD ? data(per_item(y, true)) : weights(packed);
  c->arg[c->n_args - 1] = output(per_item(y, true));
  return 0;
}

/* x, (r,) y [rows, D] and w [D]; work: rows. */
static int rmsnorm(const cg_jit *j, const cg_kernel_key *k, rt_kernel_contract *c, oc_error *e) {
  (void)j, (void)e;
  c->arg[0] = data(per_item(4 * k->k, false));
  c->arg[1] = data((rt_extent){.scale = 4 * k->k});
  c->arg[2] = data(per_item(4 * k->k, false));
  c->arg[c->n_args - 1] = output(per_item(4 * k->k, false));
  return 0;
}

/* g, u, y: one float a work item. */
static int swiglu(const cg_jit *j, const cg_kernel_key *k, rt_kernel_contract *c, oc_error *e) {
  (void)j, (void)k, (void)e;
  c->arg[0] = c->arg[1] = data(per_item(4, false));
  c->arg[2] = output(per_item(4, false));
  return 0;
}

/* T rows of n floats. */
static rt_extent token_rows(int64_t n) {
  return (rt_extent){.scale = n, .n_factors = 1, .factor = {{0, 1, 0, 0}}};
}

/* rope: x, y [T,H,D] a (t,h) row a work item, cos and sin [T,D] from P on.
 * attention: q, y likewise; k, v the cache rows: positions <= P + t in
 * [P+T][KV][D], or head-major [KV][ctx][D] (bf16 when the key says so). */
static int heads(const cg_jit *j, const cg_kernel_key *k, rt_kernel_contract *c, oc_error *e) {
  (void)j, (void)e;
  int64_t D = k->k, row = 4 * D;
  c->limited = 1;
  c->work_limit = token_rows(k->n);
  c->arg[0] = data(per_item(row, false));
  c->arg[3] = output(per_item(row, false));
  if (k->op == IR_ROPE) {
    c->arg[1] = c->arg[2] = data(token_rows(row));
    return 0;
  }
  rt_arg_contract cache = {.kinds = RT_KIND(RT_ARG_CACHE) | DATA, .cache_row = k->kv * D,
                           .bytes = {.scale = 4 * k->kv * D, .n_factors = 1, .factor = {{0, 1, 1, 0}}}};
  if (k->kv_head_major)
    cache = (rt_arg_contract){.kinds = RT_KIND(RT_ARG_CACHE), .cache_row = k->kv * D, .cache_bf16 = k->kv_bf16,
                              .bytes = {.scale = (k->kv_bf16 ? 2 : 4) * k->kv * D, .n_factors = 1,
                                        .factor = {{0, 0, 0, 1}}}};
  c->arg[1] = c->arg[2] = cache;
  return 0;
}

/* table [V,D] of the key's dtype, the call's token ids, y [T,D]. */
static int gather(const cg_jit *j, const cg_kernel_key *k, rt_kernel_contract *c, oc_error *e) {
  (void)j, (void)e;
  c->arg[0] = (rt_arg_contract){.kinds = RT_KIND(RT_ARG_PTR),
                                .bytes = {.scale = (int64_t)ir_dtype_size(k->wtype) * k->k, .v = 1}};
  c->arg[1] = (rt_arg_contract){.kinds = RT_KIND(RT_ARG_TOKENS), .bytes = per_item(4, false)};
  c->arg[2] = output(per_item(4 * k->k, false));
  return 0;
}

/* Elementwise and shaped kernels: f32 tensors of the key's shapes (an f32
 * cache may be an input, unfused attention reads it); work: y's rows. */
static int shapes(const cg_jit *j, const cg_kernel_key *k, rt_kernel_contract *c, oc_error *e) {
  (void)j;
  c->n_args = k->n_in + 1;
  for (int i = 0; i < k->n_in; i++) {
    c->arg[i] = (rt_arg_contract){.kinds = DATA | RT_KIND(RT_ARG_CACHE)};
    if (shape_bytes(&k->in[i], 0, k->in[i].rank, 4, &c->arg[i].bytes, e))
      return -1;
  }
  c->arg[k->n_in] = output((rt_extent){0});
  c->limited = 1;
  return shape_bytes(&k->out, 0, k->out.rank, 4, &c->arg[k->n_in].bytes, e) ||
                 shape_bytes(&k->out, 0, k->out.rank - 1, 1, &c->work_limit, e)
             ? -1
             : 0;
}

/* x [rows, K] f32 to q8 rows. */
static int q8_quantize(const cg_jit *j, const cg_kernel_key *k, rt_kernel_contract *c, oc_error *e) {
  (void)j, (void)e;
  c->arg[0] = data(per_item(4 * k->k, false));
  c->arg[1] = output(per_item((int64_t)cg_q8_row_bytes(k->k), false));
  return 0;
}

typedef int contract_fn(const cg_jit *j, const cg_kernel_key *k, rt_kernel_contract *c, oc_error *e);

static contract_fn *const by_lowering[CG_LOWER_COUNT] = {
    [CG_LOWER_MATMUL] = matmul, [CG_LOWER_RMSNORM] = rmsnorm, [CG_LOWER_SWIGLU] = swiglu,
    [CG_LOWER_HEADS] = heads,   [CG_LOWER_GATHER] = gather,   [CG_LOWER_ROWS] = shapes,
    [CG_LOWER_NONE] = q8_quantize,
};

/* Arguments of a plain kernel, by its call and op. */
static int64_t plain_args(const cg_kernel_key *k, rt_call call) {
  switch (call) {
  case RT_CALL_MATMUL: return 3;
  case RT_CALL_MATMUL3: case RT_CALL_ATTENTION: return 4;
  case RT_CALL_GATHER: return 3;
  default: return k->op == IR_RMSNORM_ADD || k->op == IR_ROPE ? 4 : k->op == CG_OP_Q8_QUANTIZE ? 2 : 3;
  }
}

int cg_kernel_contract(const cg_jit *j, const cg_kernel_key *k, rt_kernel_contract *c, oc_error *e) {
  const cg_kernel_op *r = cg_kernel_op_of(k);
  memset(c, 0, sizeof *c);
  c->call = cg_kernel_call(k);
  c->n_args = plain_args(k, (rt_call)c->call);
  c->grain = 1;
  return by_lowering[r->lower](j, k, c, e) ? oc_wrap(e, "%s kernel", r->name) : 0;
}
