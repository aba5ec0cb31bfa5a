/* The kernel cache: a key (op, shapes, dtypes) is checked, normalized and
 * compiled once per JIT; later requests return the same function. Invariant:
 * cached keys are normalized (fields the op ignores are zero), so two keys
 * that name the same kernel compare equal field by field. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_internal.h"

static bool is_matmul(ir_op op) { return op == IR_MATMUL || op == IR_MATMUL_ADD || op == IR_MATMUL_SWIGLU; }
static bool is_rmsnorm(ir_op op) { return op == IR_RMSNORM || op == IR_RMSNORM_ADD; }

static const char *op_name(ir_op op) {
  return (unsigned)op < IR_OP_COUNT ? ir_op_table[op].name : "(unknown)";
}

static int check_wtype(const cg_kernel_key *key, const char *what, oc_error *e) {
  if (key->wtype != IR_F32 && key->wtype != IR_BF16)
    return oc_fail(e, "%s kernel: %s %s, expected f32 or bf16", op_name(key->op), what,
                   (unsigned)key->wtype < IR_DTYPE_COUNT ? ir_dtype_name(key->wtype) : "an unknown dtype");
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

/* A copy of key with ignored fields zeroed, after checking the rest. */
static int normalize(const cg_kernel_key *key, cg_kernel_key *out, oc_error *e) {
  memset(out, 0, sizeof *out);
  out->op = key->op;
  if (is_matmul(key->op)) {
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
      out->scale = key->scale;
    }
  } else if (key->op == IR_GATHER) {
    if (check_wtype(key, "table is", e))
      return -1;
    if (key->k < 1)
      return oc_fail(e, "gather kernel: row width D=%lld must be positive", (long long)key->k);
    out->wtype = key->wtype;
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
    return oc_fail(e, "no kernel for op %s yet (the backend has matmul, matmul_add, matmul_swiglu, "
                   "rmsnorm, rmsnorm_add, swiglu, rope, attention, gather, elementwise)",
                   op_name(key->op));
  }
  return 0;
}

static bool same(const cg_kernel_key *a, const cg_kernel_key *b) {
  if (a->op != b->op || a->wtype != b->wtype || a->k != b->k || a->n != b->n || a->kv != b->kv ||
      memcmp(&a->eps, &b->eps, sizeof a->eps) || memcmp(&a->scale, &b->scale, sizeof a->scale) ||
      a->n_in != b->n_in || !ir_shape_eq(&a->out, &b->out))
    return false;
  for (int i = 0; i < a->n_in; i++)
    if (!ir_shape_eq(&a->in[i], &b->in[i]))
      return false;
  return (!a->expr && !b->expr) || (a->expr && b->expr && strcmp(a->expr, b->expr) == 0);
}

/* The kernel's symbol and module name, e.g. cg_matmul_bf16_k2048_n8192;
 * elementwise kernels are numbered (cg_elementwise_3), their keys being long. */
static void key_name(const cg_jit *j, const cg_kernel_key *k, char *buf, size_t n) {
  const char *op = ir_op_table[k->op].name;
  uint32_t bits;
  if (is_matmul(k->op)) {
    snprintf(buf, n, "cg_%s_%s_k%lld_n%lld", op, ir_dtype_name(k->wtype), (long long)k->k, (long long)k->n);
  } else if (is_rmsnorm(k->op)) {
    memcpy(&bits, &k->eps, sizeof bits);
    snprintf(buf, n, "cg_%s_d%lld_eps%08x", op, (long long)k->k, (unsigned)bits);
  } else if (k->op == IR_ROPE) {
    snprintf(buf, n, "cg_rope_h%lld_d%lld", (long long)k->n, (long long)k->k);
  } else if (k->op == IR_ATTENTION) {
    memcpy(&bits, &k->scale, sizeof bits);
    snprintf(buf, n, "cg_attention_h%lld_kv%lld_d%lld_scale%08x", (long long)k->n, (long long)k->kv,
             (long long)k->k, (unsigned)bits);
  } else if (k->op == IR_GATHER) {
    snprintf(buf, n, "cg_gather_%s_d%lld", ir_dtype_name(k->wtype), (long long)k->k);
  } else if (k->op == IR_ELTWISE) {
    snprintf(buf, n, "cg_elementwise_%d", j->n_kernels);
  } else {
    snprintf(buf, n, "cg_%s", op);
  }
}

static LLVMModuleRef emit(cg_jit *j, const cg_kernel_key *k, const char *name) {
  switch (k->op) {
  case IR_MATMUL: case IR_MATMUL_ADD: case IR_MATMUL_SWIGLU: return cg_emit_matmul(j, k, name);
  case IR_RMSNORM: case IR_RMSNORM_ADD: return cg_emit_rmsnorm(j, k, name);
  case IR_ROPE: return cg_emit_rope(j, k, name);
  case IR_ATTENTION: return cg_emit_attention(j, k, name);
  case IR_GATHER: return cg_emit_gather(j, k, name);
  case IR_ELTWISE: return cg_emit_eltwise(j, k, name);
  default: return cg_emit_swiglu(j, name);
  }
}

void cg_kernel_cache_free(cg_jit *j) {
  for (int i = 0; i < j->n_kernels; i++)
    free((char *)j->kernels[i].key.expr);
  free(j->kernels);
}

int cg_kernel_get(cg_jit *j, const cg_kernel_key *key, void **fn, oc_error *e) {
  cg_kernel_key k;
  if (normalize(key, &k, e))
    return -1;
  for (int i = 0; i < j->n_kernels; i++)
    if (same(&j->kernels[i].key, &k)) {
      *fn = j->kernels[i].fn;
      return 0;
    }
  if (j->n_kernels == j->cap_kernels) {
    int cap = j->cap_kernels ? 2 * j->cap_kernels : 16;
    cg_kernel_entry *grown = realloc(j->kernels, (size_t)cap * sizeof *grown);
    if (!grown)
      return oc_fail(e, "out of memory for the kernel cache");
    j->kernels = grown;
    j->cap_kernels = cap;
  }
  char name[128];
  key_name(j, &k, name, sizeof name);
  if (k.expr && !(k.expr = strdup(k.expr)))
    return oc_fail(e, "out of memory for the kernel cache");
  if (cg_jit_add(j, emit(j, &k, name), e) || cg_jit_lookup(j, name, fn, e)) {
    free((char *)k.expr);
    *fn = NULL;
    return oc_wrap(e, "compiling kernel %s", name);
  }
  cg_kernel_entry *entry = &j->kernels[j->n_kernels++];
  *entry = (cg_kernel_entry){k, *fn, ""};
  snprintf(entry->symbol, sizeof entry->symbol, "%s", name);
  return 0;
}
