/* Ahead-of-time sessions: the kernel cache, emitters and lowering run as for
 * the JIT, but each optimized module is linked into one module for an object
 * file (hidden symbols, PIC, the default code model) instead of being added
 * to an LLJIT. Invariant: the object's module and every module linked into it
 * live in the session's context, and the module is disposed before it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Linker.h>
#include <llvm-c/Target.h>

#include "cg_internal.h"
#include "olmoc/alloc.h"
#include "olmoc/compile.h"

struct cg_aot {
  LLVMModuleRef mod;    /* every kernel so far, or NULL before the first */
  char *layout, *triple;
  char **symbols;       /* [n]: kernel symbols in the order they were added */
  int n;
};

int cg_target_named(const char *name, cg_target *t, oc_error *e) {
  memset(t, 0, sizeof *t);
  if (name && !strcmp(name, "avx2")) {
    /* haswell, written out, so that a binary checks every feature it may use */
    snprintf(t->cpu, sizeof t->cpu, "haswell");
    snprintf(t->features, sizeof t->features, "+avx,+avx2,+bmi,+bmi2,+f16c,+fma,+lzcnt,+movbe,"
                                              "+popcnt,+sse4.2");
    return 0;
  }
  if (name && strcmp(name, "native"))
    return oc_fail(e, "--target: expected native or avx2, found '%s'", name);
  char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
  int rc = 0;
  if (strlen(cpu) >= sizeof t->cpu || strlen(features) >= sizeof t->features)
    rc = oc_fail(e, "this CPU's name or feature list is too long to record");
  else {
    strcpy(t->cpu, cpu);
    strcpy(t->features, features);
  }
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  return rc;
}

int cg_aot_new(const cg_target *t, cg_jit **out, oc_error *e) {
  *out = NULL;
  /* as for the JIT: the kernels are written for AVX2 + FMA or AVX-512 */
  if (!cg_has_feature(t->features, "avx2") || !cg_has_feature(t->features, "fma"))
    return oc_fail(e, "the kernels need AVX2 and FMA, and cpu \"%s\" lacks %s", t->cpu,
                   cg_has_feature(t->features, "avx2") ? "FMA" : "AVX2");
  if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter())
    return oc_fail(e, "LLVM has no native target for this machine");
  cg_jit *j = oc_calloc(1, sizeof *j);
  if (!j || !(j->aot = oc_calloc(1, sizeof *j->aot))) {
    free(j);
    return oc_fail(e, "out of memory for a compile session");
  }
  j->vw = cg_has_feature(t->features, "avx512f") ? 16 : 8;
  j->avx512bf16 = j->vw == 16 && cg_has_feature(t->features, "avx512bf16");
  j->vnni = j->vw == 16 && cg_has_feature(t->features, "avx512vnni"); /* as cg_jit_new_for_cpu */
  j->tsc = LLVMOrcCreateNewThreadSafeContext();
  if (cg_make_tm(t->cpu, t->features, LLVMCodeModelDefault, &j->tm, e)) {
    cg_jit_free(j);
    return oc_wrap(e, "compiling for cpu \"%s\"", t->cpu);
  }
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(j->tm);
  j->aot->layout = LLVMCopyStringRepOfTargetData(td);
  LLVMDisposeTargetData(td);
  j->aot->triple = LLVMGetTargetMachineTriple(j->tm);
  *out = j;
  return 0;
}

void cg_aot_set_target(cg_jit *j, LLVMModuleRef m) {
  LLVMSetDataLayout(m, j->aot->layout);
  LLVMSetTarget(m, j->aot->triple);
}

int cg_aot_add(cg_jit *j, LLVMModuleRef m, oc_error *e) {
  struct cg_aot *a = j->aot;
  size_t len;
  const char *id = LLVMGetModuleIdentifier(m, &len);
  char **symbols = oc_realloc(a->symbols, (size_t)(a->n + 1) * sizeof *symbols);
  if (symbols)
    a->symbols = symbols;
  char *name = symbols ? oc_strndup(id, len) : NULL;
  if (!name) {
    LLVMDisposeModule(m);
    return oc_fail(e, "out of memory");
  }
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
    if (!LLVMIsDeclaration(f))
      LLVMSetVisibility(f, LLVMHiddenVisibility);
  if (!a->mod) {
    a->mod = m;
    LLVMSetModuleIdentifier(m, "olmoc_kernels", strlen("olmoc_kernels"));
  } else if (LLVMLinkModules2(a->mod, m)) { /* consumes m */
    oc_fail(e, "LLVM could not link kernel %s into the object", name);
    free(name);
    return -1;
  }
  a->symbols[a->n++] = name;
  j->compiles++;
  return 0;
}

int cg_aot_lookup(cg_jit *j, const char *name, void **addr, oc_error *e) {
  for (int i = 0; i < j->aot->n; i++)
    if (!strcmp(j->aot->symbols[i], name)) {
      *addr = (void *)(uintptr_t)(i + 1);
      return 0;
    }
  return oc_fail(e, "no kernel %s in the object", name);
}

void cg_aot_free(cg_jit *j) {
  struct cg_aot *a = j->aot;
  if (!a)
    return;
  if (a->mod)
    LLVMDisposeModule(a->mod);
  for (int i = 0; i < a->n; i++)
    free(a->symbols[i]);
  free(a->symbols);
  LLVMDisposeMessage(a->layout);
  LLVMDisposeMessage(a->triple);
  free(a);
  j->aot = NULL;
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

int cg_aot_emit_object(cg_jit *j, const char *path, oc_error *e) {
  if (!j->aot || !j->aot->mod)
    return oc_fail(e, "no kernels to write to %s", path);
  char *msg = NULL;
  if (LLVMTargetMachineEmitToFile(j->tm, j->aot->mod, (char *)path, LLVMObjectFile, &msg)) {
    oc_fail(e, "%s: LLVM cannot write the kernels' object: %s", path, msg ? msg : "unknown error");
    LLVMDisposeMessage(msg);
    return -1;
  }
  return 0;
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
