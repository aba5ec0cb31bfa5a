/* The kernel cache: a key (op, shapes, dtypes) is checked, normalized and
 * compiled once per JIT; later requests return the same function. Invariant:
 * cached keys are normalized (fields the op ignores are zero), so two keys
 * that name the same kernel compare equal field by field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_internal.h"

static bool is_matmul(ir_op op) { return op == IR_MATMUL || op == IR_MATMUL_ADD || op == IR_MATMUL_SWIGLU; }
static bool is_rmsnorm(ir_op op) { return op == IR_RMSNORM || op == IR_RMSNORM_ADD; }

/* A copy of key with ignored fields zeroed, after checking the rest. */
static int normalize(const cg_kernel_key *key, cg_kernel_key *out, oc_error *e) {
  memset(out, 0, sizeof *out);
  out->op = key->op;
  if (is_matmul(key->op)) {
    if (key->wtype != IR_F32 && key->wtype != IR_BF16)
      return oc_fail(e, "%s kernel: weights are %s, expected f32 or bf16", ir_op_table[key->op].name,
                     (unsigned)key->wtype < IR_DTYPE_COUNT ? ir_dtype_name(key->wtype) : "an unknown dtype");
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
  } else if (key->op != IR_SWIGLU) {
    return oc_fail(e, "no kernel for op %s yet (the backend has matmul, matmul_add, matmul_swiglu, "
                   "rmsnorm, rmsnorm_add, swiglu)",
                   (unsigned)key->op < IR_OP_COUNT ? ir_op_table[key->op].name : "(unknown)");
  }
  return 0;
}

static bool same(const cg_kernel_key *a, const cg_kernel_key *b) {
  return a->op == b->op && a->wtype == b->wtype && a->k == b->k && a->n == b->n &&
         memcmp(&a->eps, &b->eps, sizeof a->eps) == 0;
}

/* The kernel's symbol and module name, e.g. cg_matmul_bf16_k2048_n8192. */
static void key_name(const cg_kernel_key *k, char *buf, size_t n) {
  const char *op = ir_op_table[k->op].name;
  if (is_matmul(k->op)) {
    snprintf(buf, n, "cg_%s_%s_k%lld_n%lld", op, ir_dtype_name(k->wtype), (long long)k->k, (long long)k->n);
  } else if (is_rmsnorm(k->op)) {
    uint32_t bits;
    memcpy(&bits, &k->eps, sizeof bits);
    snprintf(buf, n, "cg_%s_d%lld_eps%08x", op, (long long)k->k, (unsigned)bits);
  } else {
    snprintf(buf, n, "cg_%s", op);
  }
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
  key_name(&k, name, sizeof name);
  LLVMModuleRef m = is_matmul(k.op) ? cg_emit_matmul(j, &k, name)
                    : is_rmsnorm(k.op) ? cg_emit_rmsnorm(j, &k, name)
                                       : cg_emit_swiglu(j, name);
  if (cg_jit_add(j, m, e) || cg_jit_lookup(j, name, fn, e))
    return oc_wrap(e, "compiling kernel %s", name);
  j->kernels[j->n_kernels++] = (cg_kernel_entry){k, *fn};
  return 0;
}
