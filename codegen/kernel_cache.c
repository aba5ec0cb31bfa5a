/* The kernel cache: a key (op, shapes, dtypes) is checked, normalized and
 * compiled once per JIT; later requests return the same function. Invariant:
 * cached keys are normalized (fields the op ignores are zero), so two keys
 * that name the same kernel compare equal field by field. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_internal.h"
#include "olmoc/alloc.h"
#include "olmoc/compile.h"
#include "olmoc/generate.h"

static bool is_matmul(ir_op op) { return op == IR_MATMUL || op == IR_MATMUL_ADD || op == IR_MATMUL_SWIGLU; }
static bool is_rmsnorm(ir_op op) { return op == IR_RMSNORM || op == IR_RMSNORM_ADD; }

/* The ops whose kernels are always shaped; matmul when both operands are activations. */
static bool is_shaped_op(const cg_kernel_key *k) {
  switch (k->op) {
  case IR_REDUCE_SUM: case IR_REDUCE_MEAN: case IR_SOFTMAX: case IR_CAUSAL_MASK:
  case IR_SLICE: case IR_CONCAT: case IR_TRANSPOSE: case IR_REPEAT:
    return true;
  case IR_MATMUL:
    return k->n_in == 2;
  default:
    return false;
  }
}

bool cg_kernel_shaped(const cg_kernel_key *key) {
  if (key->op != IR_ELTWISE)
    return is_shaped_op(key);
  const ir_shape *o = &key->out;
  for (int d = 0; d < o->rank && d < IR_MAX_DIMS; d++)
    if (!ir_dim_is_const(o->dim[d]) && (d > 0 || o->rank == 1))
      return true;
  return false;
}

static const char *op_name(ir_op op) {
  return (unsigned)op < IR_OP_COUNT ? ir_op_table[op].name : op == CG_OP_Q8_QUANTIZE ? "q8_quantize" : "(unknown)";
}

/* f32 or bf16; matmuls also take IR_I8, q8 weights. */
static int check_wtype(const cg_kernel_key *key, const char *what, oc_error *e) {
  if (key->wtype != IR_F32 && key->wtype != IR_BF16 && !(is_matmul(key->op) && key->wtype == IR_I8))
    return oc_fail(e, "%s kernel: %s %s, expected f32 or bf16%s", op_name(key->op), what,
                   (unsigned)key->wtype < IR_DTYPE_COUNT ? ir_dtype_name(key->wtype) : "an unknown dtype",
                   is_matmul(key->op) ? " (or i8 for q8)" : "");
  return 0;
}

/* Heads H (n) and head dim D (k) for rope and attention: D even for rope,
 * KV dividing H for attention. */
static int check_heads(const cg_kernel_key *key, oc_error *e) {
  const char *op = op_name(key->op);
  if (key->k < 1 || key->n < 1)
    return oc_fail(e, "%s kernel: head dim D=%lld and heads H=%lld must both be positive", op,
                   (long long)key->k, (long long)key->n);
  if (key->op == IR_ROPE && key->k % 2)
    return oc_fail(e, "rope kernel: head dim D=%lld must be even", (long long)key->k);
  if (key->op == IR_ATTENTION && (key->kv < 1 || key->n % key->kv))
    return oc_fail(e, "attention kernel: KV=%lld heads must divide H=%lld", (long long)key->kv,
                   (long long)key->n);
  if (key->op == IR_ATTENTION && key->k > 512)
    return oc_fail(e, "attention kernel: head dim D=%lld is above the 512 it supports", (long long)key->k);
  if (key->op == IR_ATTENTION && !isfinite(key->scale))
    return oc_fail(e, "attention kernel: scale %g must be a finite number", (double)key->scale);
  return 0;
}

/* A shaped key's shapes and attributes, checked by the IR's own type rules: a
 * graph of n_in f32 inputs of the key's shapes and the op must infer `out`. */
static int check_shaped(const cg_kernel_key *key, cg_kernel_key *out, oc_error *e) {
  const char *op = op_name(key->op);
  int arity = ir_op_table[key->op].arity;
  if (key->n_in != arity)
    return oc_fail(e, "%s kernel: %d input shapes, expected %d", op, key->n_in, arity);
  for (int i = 0; i <= arity; i++) {
    const ir_shape *s = i < arity ? &key->in[i] : &key->out;
    if (s->rank < 1 || s->rank > IR_MAX_DIMS)
      return oc_fail(e, "%s kernel: rank %d, expected 1 to %d", op, s->rank, IR_MAX_DIMS);
  }
  ir_node node = {.op = key->op, .in = {0, 1}, .axis = key->axis, .start = key->start, .times = key->times};
  memcpy(node.perm, key->perm, sizeof node.perm);
  if (key->op == IR_SLICE && key->axis >= 0 && key->axis < key->out.rank)
    node.end = key->start + key->out.dim[key->axis].c;
  ir_graph *g = ir_graph_new();
  if (!g)
    return oc_fail(e, "out of memory checking a %s kernel", op);
  for (int i = 0; i < arity; i++)
    ir_input(g, "x", (ir_type){IR_F32, key->in[i]});
  int id = ir_add(g, &node);
  int rc = ir_graph_status(g, e);
  if (!rc && !ir_shape_eq(&g->nodes[id].type.shape, &key->out)) {
    char want[96], got[96];
    ir_type t = {IR_F32, key->out};
    rc = oc_fail(e, "%s kernel: the inputs give %s, not the key's %s", op,
                 ir_type_str(&g->nodes[id].type, got, sizeof got), ir_type_str(&t, want, sizeof want));
  }
  ir_graph_free(g);
  if (rc)
    return oc_wrap(e, "%s kernel", op);
  out->n_in = arity;
  for (int i = 0; i < arity; i++)
    out->in[i] = key->in[i];
  out->out = key->out;
  if (key->op == IR_SLICE || key->op == IR_CONCAT || key->op == IR_REPEAT)
    out->axis = key->axis;
  if (key->op == IR_SLICE)
    out->start = key->start;
  if (key->op == IR_REPEAT)
    out->times = key->times;
  if (key->op == IR_TRANSPOSE)
    memcpy(out->perm, key->perm, sizeof out->perm);
  return 0;
}

/* A copy of key with ignored fields zeroed, after checking the rest. */
static int normalize(const cg_kernel_key *key, cg_kernel_key *out, oc_error *e) {
  memset(out, 0, sizeof *out);
  out->op = key->op;
  if ((unsigned)key->op < IR_OP_COUNT && is_shaped_op(key)) {
    if (check_shaped(key, out, e))
      return -1;
  } else if (is_matmul(key->op)) {
    if (check_wtype(key, "weights are", e))
      return -1;
    if (key->k < 1 || key->n < 1)
      return oc_fail(e, "%s kernel: K=%lld and N=%lld must both be positive", ir_op_table[key->op].name,
                     (long long)key->k, (long long)key->n);
    out->wtype = key->wtype;
    out->k = key->k;
    out->n = key->n;
  } else if (is_rmsnorm(key->op)) {
    if (key->k < 1)
      return oc_fail(e, "%s kernel: row width D=%lld must be positive", ir_op_table[key->op].name,
                     (long long)key->k);
    if (!(key->eps >= 0))
      return oc_fail(e, "%s kernel: eps %g must be a non-negative number", ir_op_table[key->op].name,
                     (double)key->eps);
    out->k = key->k;
    out->eps = key->eps;
  } else if (key->op == IR_ROPE || key->op == IR_ATTENTION) {
    if (check_heads(key, e))
      return -1;
    out->k = key->k;
    out->n = key->n;
    if (key->op == IR_ATTENTION) {
      out->kv = key->kv;
      out->kv_head_major = key->kv_head_major;
      out->kv_bf16 = key->kv_bf16;
      out->scale = key->scale;
    }
  } else if (key->op == IR_GATHER) {
    if (check_wtype(key, "table is", e))
      return -1;
    if (key->k < 1)
      return oc_fail(e, "gather kernel: row width D=%lld must be positive", (long long)key->k);
    out->wtype = key->wtype;
    out->k = key->k;
  } else if (key->op == CG_OP_Q8_QUANTIZE) {
    if (key->k < 1)
      return oc_fail(e, "q8_quantize kernel: row width K=%lld must be positive", (long long)key->k);
    out->k = key->k;
  } else if (key->op == IR_ELTWISE) {
    if (cg_eltwise_plan_of(key, NULL, e))
      return -1;
    out->expr = key->expr; /* the cache stores its own copy */
    out->n_in = key->n_in;
    for (int i = 0; i < key->n_in; i++)
      out->in[i] = key->in[i];
    out->out = key->out;
  } else if (key->op != IR_SWIGLU) {
    return oc_fail(e, "no kernel for op %s (the backend has matmul, matmul_add, matmul_swiglu, "
                   "rmsnorm, rmsnorm_add, swiglu, rope, attention, gather, elementwise, reduce_sum, "
                   "reduce_mean, softmax, causal_mask, slice, concat, transpose, repeat)",
                   op_name(key->op));
  }
  return 0;
}

static bool same(const cg_kernel_key *a, const cg_kernel_key *b) {
  if (a->op != b->op || a->wtype != b->wtype || a->k != b->k || a->n != b->n || a->kv != b->kv ||
      a->kv_head_major != b->kv_head_major || a->kv_bf16 != b->kv_bf16 ||
      memcmp(&a->eps, &b->eps, sizeof a->eps) || memcmp(&a->scale, &b->scale, sizeof a->scale) ||
      a->n_in != b->n_in || !ir_shape_eq(&a->out, &b->out) || a->axis != b->axis || a->start != b->start ||
      a->times != b->times || memcmp(a->perm, b->perm, sizeof a->perm))
    return false;
  for (int i = 0; i < a->n_in; i++)
    if (!ir_shape_eq(&a->in[i], &b->in[i]))
      return false;
  return (!a->expr && !b->expr) || (a->expr && b->expr && strcmp(a->expr, b->expr) == 0);
}

/* The kernel's symbol and module name, e.g. cg_matmul_bf16_k2048_n8192;
 * elementwise and shaped kernels are numbered (cg_softmax_3), their keys being long. */
static void key_name(const cg_jit *j, const cg_kernel_key *k, char *buf, size_t n) {
  const char *op = op_name(k->op);
  uint32_t bits;
  if (k->op == IR_ELTWISE || is_shaped_op(k)) {
    snprintf(buf, n, "cg_%s_%d", op, j->n_kernels);
  } else if (is_matmul(k->op)) {
    const char *wt = k->wtype == IR_I8                        ? "q8"
                     : k->wtype == IR_BF16 && j->bf16_compute ? "bf16dot" /* k-pair panels */
                                                              : ir_dtype_name(k->wtype);
    snprintf(buf, n, "cg_%s_%s_k%lld_n%lld", op, wt, (long long)k->k,
             (long long)k->n);
  } else if (is_rmsnorm(k->op)) {
    memcpy(&bits, &k->eps, sizeof bits);
    snprintf(buf, n, "cg_%s_d%lld_eps%08x", op, (long long)k->k, (unsigned)bits);
  } else if (k->op == IR_ROPE) {
    snprintf(buf, n, "cg_rope_h%lld_d%lld", (long long)k->n, (long long)k->k);
  } else if (k->op == IR_ATTENTION) {
    memcpy(&bits, &k->scale, sizeof bits);
    snprintf(buf, n, "cg_attention_h%lld_kv%lld%s%s_d%lld_scale%08x", (long long)k->n, (long long)k->kv,
             k->kv_head_major ? "hm" : "", k->kv_bf16 ? "bf16" : "", (long long)k->k, (unsigned)bits);
  } else if (k->op == IR_GATHER) {
    snprintf(buf, n, "cg_gather_%s_d%lld", ir_dtype_name(k->wtype), (long long)k->k);
  } else if (k->op == CG_OP_Q8_QUANTIZE) {
    snprintf(buf, n, "cg_q8_quantize_k%lld", (long long)k->k);
  } else {
    snprintf(buf, n, "cg_%s", op);
  }
}

static LLVMModuleRef emit(cg_jit *j, const cg_kernel_key *k, const char *name) {
  switch (k->op) {
  case IR_MATMUL: case IR_MATMUL_ADD: case IR_MATMUL_SWIGLU:
    if (k->n_in == 2) /* activation x activation */
      return cg_emit_batched_matmul(j, k, name);
    return k->wtype == IR_I8 ? cg_emit_matmul_q8(j, k, name) : cg_emit_matmul(j, k, name);
  case CG_OP_Q8_QUANTIZE: return cg_emit_q8_quantize(j, k, name);
  case IR_REDUCE_SUM: case IR_REDUCE_MEAN: case IR_SOFTMAX: return cg_emit_reduce(j, k, name);
  case IR_CAUSAL_MASK: return cg_emit_causal_mask(j, k, name);
  case IR_SLICE: case IR_CONCAT: case IR_TRANSPOSE: case IR_REPEAT: return cg_emit_copy(j, k, name);
  case IR_RMSNORM: case IR_RMSNORM_ADD: return cg_emit_rmsnorm(j, k, name);
  case IR_ROPE: return cg_emit_rope(j, k, name);
  case IR_ATTENTION: return cg_emit_attention(j, k, name);
  case IR_GATHER: return cg_emit_gather(j, k, name);
  case IR_ELTWISE: return cg_emit_eltwise(j, k, name);
  default: return cg_emit_swiglu(j, name);
  }
}

void cg_kernel_cache_free(cg_jit *j) {
  for (int i = 0; i < j->n_kernels; i++) {
    free((char *)j->kernels[i].key.expr);
    if (j->kernels[i].pending)
      j->backend->dispose_module(j, j->kernels[i].pending);
  }
  free(j->kernels);
}

int cg_kernel_request(cg_jit *j, const cg_kernel_key *key, int *index, oc_error *e) {
  cg_kernel_key k;
  if (normalize(key, &k, e))
    return -1;
  for (int i = 0; i < j->n_kernels; i++)
    if (same(&j->kernels[i].key, &k)) {
      *index = i;
      if (!j->kernels[i].fn && !j->kernels[i].pending)
        return oc_fail(e, "kernel %s failed to compile before", j->kernels[i].symbol);
      return 0;
    }
  if (j->n_kernels == j->cap_kernels) {
    int cap = j->cap_kernels ? 2 * j->cap_kernels : 16;
    cg_kernel_entry *grown = oc_realloc(j->kernels, (size_t)cap * sizeof *grown);
    if (!grown)
      return oc_fail(e, "out of memory for the kernel cache");
    j->kernels = grown;
    j->cap_kernels = cap;
  }
  if (k.expr && !(k.expr = oc_strdup(k.expr)))
    return oc_fail(e, "out of memory for the kernel cache");
  double t0 = rt_seconds();
  cg_kernel_entry *entry = &j->kernels[j->n_kernels];
  *entry = (cg_kernel_entry){.key = k};
  key_name(j, &k, entry->symbol, sizeof entry->symbol);
  entry->pending = emit(j, &k, entry->symbol);
  j->compile_seconds += rt_seconds() - t0;
  *index = j->n_kernels++;
  return 0;
}

int cg_kernel_compile_pending(cg_jit *j, oc_error *e) {
  int n = 0, *which = oc_malloc((size_t)(j->n_kernels ? j->n_kernels : 1) * sizeof *which);
  LLVMModuleRef *mods = oc_malloc((size_t)(j->n_kernels ? j->n_kernels : 1) * sizeof *mods);
  if (!which || !mods) {
    free(which);
    free(mods);
    return oc_fail(e, "out of memory compiling kernels");
  }
  for (int i = 0; i < j->n_kernels; i++)
    if (j->kernels[i].pending) {
      which[n] = i;
      mods[n++] = j->kernels[i].pending;
      j->kernels[i].pending = NULL; /* the backend owns it now */
    }
  double t0 = rt_seconds();
  int rc = n ? j->backend->add_all(j, mods, n, e) : 0;
  for (int i = 0; !rc && i < n; i++) {
    cg_kernel_entry *entry = &j->kernels[which[i]];
    if (j->backend->lookup(j, entry->symbol, &entry->fn, e))
      rc = oc_wrap(e, "compiling kernel %s", entry->symbol);
  }
  j->compile_seconds += rt_seconds() - t0;
  free(which);
  free(mods);
  return rc;
}

void *cg_kernel_fn(const cg_jit *j, int index) { return j->kernels[index].fn; }

int cg_kernel_get(cg_jit *j, const cg_kernel_key *key, void **fn, oc_error *e) {
  int index;
  *fn = NULL;
  if (cg_kernel_request(j, key, &index, e) || cg_kernel_compile_pending(j, e))
    return -1;
  *fn = j->kernels[index].fn;
  return 0;
}
int cg_kernel_symbols(const cg_jit *j, rt_kernel_symbol **list, int *n, oc_error *e) {
  *n = 0;
  if (!(*list = oc_malloc((size_t)(j->n_kernels + 1) * sizeof **list)))
    return oc_fail(e, "out of memory");
  for (int i = 0; i < j->n_kernels; i++)
    (*list)[i] = (rt_kernel_symbol){j->kernels[i].symbol, j->kernels[i].fn};
  *n = j->n_kernels;
  return 0;
}

