/* The kernel cache: a key (op, shapes, dtypes) is checked, normalized and
 * compiled once per session, by what the kernel table (kernels.h) says of its
 * op; later requests return the same function. Invariant:
 * cached keys are normalized (fields the op ignores are zero), so two keys
 * that name the same kernel compare equal field by field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "olmoc/alloc.h"
#include "olmoc/compile.h"
#include "olmoc/generate.h"

/* A copy of key with the fields its op ignores zeroed, after checking the rest. */
static int normalize(const cg_kernel_key *key, cg_kernel_key *out, oc_error *e) {
  memset(out, 0, sizeof *out);
  out->op = key->op;
  const cg_kernel_op *r = cg_kernel_op_of(key);
  if (!r) {
    char names[512];
    cg_kernel_op_names(names, sizeof names);
    return oc_fail(e, "no kernel for op %s (the backend has %s)",
                   (unsigned)key->op < IR_OP_COUNT ? ir_op_table[key->op].name : "(unknown)", names);
  }
  if (r->check(key, e))
    return -1;
  unsigned keep = r->keep;
  if (keep & CG_KEEP_WTYPE)
    out->wtype = key->wtype;
  if (keep & CG_KEEP_K)
    out->k = key->k;
  if (keep & CG_KEEP_N)
    out->n = key->n;
  if (keep & CG_KEEP_KV) {
    out->kv = key->kv;
    out->kv_head_major = key->kv_head_major;
    out->kv_bf16 = key->kv_bf16;
  }
  if (keep & CG_KEEP_EPS)
    out->eps = key->eps;
  if (keep & CG_KEEP_SCALE)
    out->scale = key->scale;
  if (keep & CG_KEEP_SHAPES) {
    out->n_in = key->n_in;
    for (int i = 0; i < key->n_in; i++)
      out->in[i] = key->in[i];
    out->out = key->out;
  }
  if (keep & CG_KEEP_EXPR)
    out->expr = key->expr; /* the cache stores its own copy */
  if (keep & CG_KEEP_AXIS)
    out->axis = key->axis;
  if (keep & CG_KEEP_START)
    out->start = key->start;
  if (keep & CG_KEEP_TIMES)
    out->times = key->times;
  if (keep & CG_KEEP_PERM)
    memcpy(out->perm, key->perm, sizeof out->perm);
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

void cg_kernel_cache_free(cg_jit *j) {
  for (int i = 0; i < j->n_kernels; i++) {
    free((char *)j->kernels[i].key.expr);
    free(j->kernels[i].contract);
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
  rt_kernel_contract *contract = oc_malloc(sizeof *contract);
  if (!contract)
    return oc_fail(e, "out of memory for the kernel cache");
  if (cg_kernel_contract(j, &k, contract, e)) {
    free(contract);
    return -1;
  }
  if (k.expr && !(k.expr = oc_strdup(k.expr))) {
    free(contract);
    return oc_fail(e, "out of memory for the kernel cache");
  }
  double t0 = rt_seconds();
  cg_kernel_entry *entry = &j->kernels[j->n_kernels];
  *entry = (cg_kernel_entry){.key = k, .contract = contract};
  const cg_kernel_op *r = cg_kernel_op_of(&k);
  r->symbol(j, &k, r->name, entry->symbol, sizeof entry->symbol);
  cg_emit_target t = {.ctx = j->backend->context(j), .vw = j->vw, .vnni = j->vnni, .bf16_compute = j->bf16_compute};
  entry->pending = r->emit(&t, &k, entry->symbol);
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
  oc_step compiled;
  oc_step_begin(&compiled, n ? j->progress : NULL, "compiling kernels", n, "kernels", NULL);
  int rc = n ? j->backend->add_all(j, mods, n, &compiled, e) : 0;
  oc_step_end(&compiled);
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
const rt_kernel_contract *cg_kernel_contract_at(const cg_jit *j, int index) { return j->kernels[index].contract; }

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
    (*list)[i] = (rt_kernel_symbol){j->kernels[i].symbol, j->kernels[i].fn, *j->kernels[i].contract};
  *n = j->n_kernels;
  return 0;
}

