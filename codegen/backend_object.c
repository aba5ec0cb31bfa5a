/* The object-file backend (ahead of time, `olmoc compile`): the kernel cache,
 * emitters and lowering run as for the JIT, but each optimized module is
 * linked into one module for an object file (hidden symbols, PIC, the default
 * code model) instead of being added to an LLJIT. A kernel's "address" is its
 * number + 1, which only rt_program_pack reads (such a program cannot run).
 * Invariant: the object's module and every module linked into it live in the
 * backend's one context, and the module is disposed before it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/LLJIT.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Target.h>

#include "session.h"
#include "olmoc/alloc.h"
#include "olmoc/compile.h"

typedef struct object_state {
  LLVMOrcThreadSafeContextRef tsc; /* every module is created in its context */
  LLVMModuleRef mod;    /* every kernel so far, or NULL before the first */
  char *layout, *triple;
  char **symbols;       /* [n]: kernel symbols in the order they were added */
  int n;
} object_state;

static const cg_backend object_backend;

static object_state *state(const cg_jit *j) { return j->backend_state; }

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

static int object_open(cg_jit *j, oc_error *e) {
  object_state *a = oc_calloc(1, sizeof *a);
  if (!a)
    return oc_fail(e, "out of memory for a compile session");
  j->backend_state = a;
  a->tsc = LLVMOrcCreateNewThreadSafeContext();
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(j->tm);
  a->layout = LLVMCopyStringRepOfTargetData(td);
  LLVMDisposeTargetData(td);
  a->triple = LLVMGetTargetMachineTriple(j->tm);
  return 0;
}

static void object_close(cg_jit *j) {
  object_state *a = state(j);
  if (!a)
    return;
  if (a->mod) /* before its context */
    LLVMDisposeModule(a->mod);
  for (int i = 0; i < a->n; i++)
    free(a->symbols[i]);
  free(a->symbols);
  LLVMDisposeMessage(a->layout);
  LLVMDisposeMessage(a->triple);
  if (a->tsc)
    LLVMOrcDisposeThreadSafeContext(a->tsc);
  free(a);
}

/* One context for all, so that the modules link into the object's. */
static LLVMContextRef object_context(cg_jit *j) { return LLVMOrcThreadSafeContextGetContext(state(j)->tsc); }

static void object_dispose_module(const cg_jit *j, LLVMModuleRef m) {
  (void)j;
  LLVMDisposeModule(m);
}

static void object_set_target(const cg_jit *j, LLVMModuleRef m) {
  LLVMSetDataLayout(m, state(j)->layout);
  LLVMSetTarget(m, state(j)->triple);
}

/* Links the optimized m into the object's module, consuming it. */
static int link_kernel(cg_jit *j, LLVMModuleRef m, oc_error *e) {
  object_state *a = state(j);
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

/* Optimizes the modules one after another and links them into the object. */
static int object_add_all(cg_jit *j, LLVMModuleRef *m, int n, oc_step *compiled, oc_error *e) {
  int rc = 0;
  for (int i = 0; i < n; i++) {
    char name[256];
    cg_module_name(m[i], name, sizeof name);
    if (rc || cg_session_optimize(j, j->tm, m[i], e) || cg_session_dump_ir(j, m[i], e)) {
      rc = rc ? rc : oc_wrap(e, "module %s", name);
      LLVMDisposeModule(m[i]);
    } else if (link_kernel(j, m[i], e)) { /* consumes m[i] */
      rc = oc_wrap(e, "module %s", name);
    }
    oc_step_add(compiled, 1, 0);
  }
  return rc;
}

static int object_lookup(cg_jit *j, const char *name, void **addr, oc_error *e) {
  object_state *a = state(j);
  for (int i = 0; i < a->n; i++)
    if (!strcmp(a->symbols[i], name)) {
      *addr = (void *)(uintptr_t)(i + 1);
      return 0;
    }
  return oc_fail(e, "no kernel %s in the object", name);
}

static const cg_backend object_backend = {
    .session = "a compile session",
    .for_cpu = "compiling for cpu \"%s\"",
    .code_model = LLVMCodeModelDefault,
    .open = object_open,
    .close = object_close,
    .context = object_context,
    .dispose_module = object_dispose_module,
    .set_target = object_set_target,
    .add_all = object_add_all,
    .lookup = object_lookup,
};

int cg_aot_new(const cg_target *t, cg_jit **out, oc_error *e) {
  *out = NULL;
  /* as for the JIT: the kernels are written for AVX2 + FMA or AVX-512 */
  if (!cg_has_feature(t->features, "avx2") || !cg_has_feature(t->features, "fma"))
    return oc_fail(e, "the kernels need AVX2 and FMA, and cpu \"%s\" lacks %s", t->cpu,
                   cg_has_feature(t->features, "avx2") ? "FMA" : "AVX2");
  return cg_session_new(t->cpu, t->features, &object_backend, out, e);
}

int cg_aot_emit_object(cg_jit *j, const char *path, oc_error *e) {
  if (j->backend != &object_backend || !state(j)->mod)
    return oc_fail(e, "no kernels to write to %s", path);
  if (cg_llvm_threads(1, "writing the kernels' object", e) < 0)
    return oc_wrap(e, "%s", path);
  char *msg = NULL;
  if (LLVMTargetMachineEmitToFile(j->tm, state(j)->mod, (char *)path, LLVMObjectFile, &msg)) {
    oc_fail(e, "%s: LLVM cannot write the kernels' object: %s", path, msg ? msg : "unknown error");
    LLVMDisposeMessage(msg);
    return -1;
  }
  return 0;
}
