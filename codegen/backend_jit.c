/* The ORC JIT backend: an LLJIT built from a TargetMachine for one CPU (the
 * host's by default, or Haswell's AVX2 for --target avx2; never a CPU without
 * AVX2 and FMA), into which kernels are added as objects and looked up. Each
 * kernel's module has a context of its own, so a batch of them is optimized
 * and compiled to objects on all cores at once (one target machine per
 * thread): a model's kernels compile in about half the time on two cores.
 * Invariant: every LLVMErrorRef is consumed and every LLVM object has exactly
 * one owner, also on failure paths (the builder, the TM handed to the JTMB,
 * each module with its context, and each object buffer are consumed by the
 * call that takes them). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>

#include "session.h"
#include "olmoc/alloc.h"

typedef struct jit_state {
  LLVMOrcLLJITRef lljit;
  char session_error[512]; /* last error the execution session reported, or "" */
} jit_state;

static jit_state *state(const cg_jit *j) { return j->backend_state; }

/* Errors the session cannot return to a caller (e.g. a failed materialization
 * behind a lookup): kept so the lookup can tell what went wrong. */
static void report_session_error(void *ctx, LLVMErrorRef err) {
  jit_state *s = ctx;
  char *msg = LLVMGetErrorMessage(err);
  snprintf(s->session_error, sizeof s->session_error, "%s", msg);
  LLVMDisposeErrorMessage(msg);
}

static int jit_open(cg_jit *j, oc_error *e) {
  jit_state *s = oc_calloc(1, sizeof *s);
  if (!s)
    return oc_fail(e, "out of memory for a JIT session");
  j->backend_state = s;
  LLVMTargetMachineRef jit_tm;
  if (cg_make_tm(j->cpu, j->features, LLVMCodeModelJITDefault, &jit_tm, e))
    return oc_wrap(e, "JIT for cpu \"%s\"", j->cpu);
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
      builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jit_tm)); /* consumes jit_tm */
  LLVMErrorRef err = LLVMOrcCreateLLJIT(&s->lljit, builder); /* consumes builder */
  if (err) {
    s->lljit = NULL;
    return cg_fail_llvm(e, err, "creating the LLVM JIT");
  }
  LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(s->lljit), report_session_error, s);
  return 0;
}

static void jit_close(cg_jit *j) {
  jit_state *s = state(j);
  if (s && s->lljit) {
    LLVMErrorRef err = LLVMOrcDisposeLLJIT(s->lljit);
    if (err)
      LLVMConsumeError(err); /* nothing left to report it to */
  }
  free(s);
}

/* Every module has a context of its own, so that threads compile them at once. */
static LLVMContextRef jit_context(cg_jit *j) {
  (void)j;
  return LLVMContextCreate();
}

static void jit_dispose_module(const cg_jit *j, LLVMModuleRef m) {
  (void)j;
  LLVMContextRef c = LLVMGetModuleContext(m);
  LLVMDisposeModule(m);
  LLVMContextDispose(c);
}

static void jit_set_target(const cg_jit *j, LLVMModuleRef m) {
  LLVMSetDataLayout(m, LLVMOrcLLJITGetDataLayoutStr(state(j)->lljit));
  LLVMSetTarget(m, LLVMOrcLLJITGetTripleString(state(j)->lljit));
}

/* The optimized m as an object file in *obj. */
static int compile(const cg_jit *j, LLVMTargetMachineRef tm, LLVMModuleRef m, LLVMMemoryBufferRef *obj,
                   oc_error *e) {
  *obj = NULL;
  if (cg_session_optimize(j, tm, m, e))
    return -1;
  char *msg = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &msg, obj)) {
    oc_fail(e, "emitting machine code: %s", msg ? msg : "unknown");
    LLVMDisposeMessage(msg);
    *obj = NULL;
    return -1;
  }
  return 0;
}

/* Compiles m[0..n) to objs[0..n) with a target machine per thread; errs[i]
 * says why objs[i] is NULL. Each one compiled adds to `compiled`. */
static void compile_all(const cg_jit *j, LLVMModuleRef *m, int n, int threads, LLVMMemoryBufferRef *objs,
                        oc_error *errs, oc_step *compiled) {
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num();
    LLVMTargetMachineRef tm = j->tm;
    oc_error made = {{0}};
    if (t > 0 && cg_make_tm(j->cpu, j->features, LLVMCodeModelJITDefault, &tm, &made))
      tm = NULL;
#pragma omp for schedule(dynamic, 1)
    for (int i = 0; i < n; i++) {
      if (!tm)
        errs[i] = made;
      else
        compile(j, tm, m[i], &objs[i], &errs[i]);
#pragma omp critical(olmoc_progress)
      oc_step_add(compiled, 1, 0);
    }
    if (t > 0 && tm)
      LLVMDisposeTargetMachine(tm);
  }
}

static int jit_add_all(cg_jit *j, LLVMModuleRef *m, int n, oc_step *compiled, oc_error *e) {
  LLVMOrcLLJITRef lljit = state(j)->lljit;
  LLVMMemoryBufferRef *objs = oc_calloc((size_t)n, sizeof *objs);
  oc_error *errs = oc_calloc((size_t)n, sizeof *errs);
  char what[64];
  snprintf(what, sizeof what, "compiling %d kernels", n);
  int threads = cg_llvm_threads(n < omp_get_max_threads() ? n : omp_get_max_threads(), what, e);
  int rc = threads < 0 ? -1 : !objs || !errs ? oc_fail(e, "out of memory compiling %d kernels", n) : 0;
  if (!rc)
    compile_all(j, m, n, threads, objs, errs, compiled);
  LLVMOrcJITDylibRef lib = LLVMOrcLLJITGetMainJITDylib(lljit);
  for (int i = 0; i < n; i++) {
    char name[256];
    cg_module_name(m[i], name, sizeof name);
    if (!rc && !objs[i]) {
      *e = errs[i];
      rc = oc_wrap(e, "module %s", name);
    } else if (!rc) {
      rc = cg_session_dump_ir(j, m[i], e) ? oc_wrap(e, "module %s", name) : 0;
    }
    if (!rc && objs) {
      LLVMErrorRef err = LLVMOrcLLJITAddObjectFile(lljit, lib, objs[i]); /* consumes objs[i] */
      objs[i] = NULL;
      if (err) {
        cg_fail_llvm(e, err, "adding to the JIT");
        rc = oc_wrap(e, "module %s", name);
      } else {
        j->compiles++;
      }
    }
    if (objs && objs[i])
      LLVMDisposeMemoryBuffer(objs[i]);
    jit_dispose_module(j, m[i]);
  }
  free(objs);
  free(errs);
  return rc;
}

static int jit_lookup(cg_jit *j, const char *name, void **addr, oc_error *e) {
  jit_state *s = state(j);
  LLVMOrcExecutorAddress a = 0;
  s->session_error[0] = '\0';
  LLVMErrorRef err = LLVMOrcLLJITLookup(s->lljit, &a, name);
  if (err) {
    cg_fail_llvm(e, err, "JIT lookup");
    if (s->session_error[0])
      oc_wrap(e, "%s", s->session_error);
    return oc_wrap(e, "symbol %s", name);
  }
  *addr = (void *)(uintptr_t)a;
  return 0;
}

static const cg_backend jit_backend = {
    .session = "a JIT session",
    .for_cpu = "JIT for cpu \"%s\"",
    .code_model = LLVMCodeModelJITDefault,
    .open = jit_open,
    .close = jit_close,
    .context = jit_context,
    .dispose_module = jit_dispose_module,
    .set_target = jit_set_target,
    .add_all = jit_add_all,
    .lookup = jit_lookup,
};

int cg_jit_new_for_cpu(const char *cpu, const char *features, cg_jit **out, oc_error *e) {
  *out = NULL;
  /* the kernels are written and tested for 8 (AVX2) and 16 (AVX-512) lanes with FMA; not SSE */
  if (!cg_has_feature(features, "avx2") || !cg_has_feature(features, "fma"))
    return oc_fail(e, "the JIT emits AVX2+FMA or AVX-512 code, and cpu \"%s\" lacks %s: use --backend interp",
                   cpu, cg_has_feature(features, "avx2") ? "FMA" : "AVX2");
  return cg_session_new(cpu, features, &jit_backend, out, e);
}

int cg_jit_new(cg_jit **out, oc_error *e) {
  char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
  int rc = cg_jit_new_for_cpu(cpu, features, out, e);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  return rc;
}

int cg_jit_new_for_target(const char *target, cg_jit **out, oc_error *e) {
  *out = NULL;
  if (!target || !strcmp(target, "native"))
    return cg_jit_new(out, e);
  if (strcmp(target, "avx2"))
    return oc_fail(e, "--target: expected native or avx2, found '%s'", target);
  cg_host h;
  cg_host_detect(&h);
  if (!h.avx2 || !h.fma) /* code this CPU cannot run */
    return oc_fail(e, "--target avx2: this CPU (%s) lacks %s", h.cpu, h.avx2 ? "FMA" : "AVX2");
  return cg_jit_new_for_cpu("haswell", "+avx2,+fma", out, e);
}
