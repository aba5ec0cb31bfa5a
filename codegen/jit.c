/* The JIT session: an ORC LLJIT built from a TargetMachine for one CPU (the
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

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "cg_internal.h"
#include "olmoc/alloc.h"
#include "olmoc/output.h"

/* Consumes err into e as "what: message". */
static int fail_llvm(oc_error *e, LLVMErrorRef err, const char *what) {
  char *msg = LLVMGetErrorMessage(err);
  oc_fail(e, "%s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
  return -1;
}

/* Errors the session cannot return to a caller (e.g. a failed materialization
 * behind a lookup): kept so the lookup can tell what went wrong. */
static void report_session_error(void *ctx, LLVMErrorRef err) {
  cg_jit *j = ctx;
  char *msg = LLVMGetErrorMessage(err);
  snprintf(j->session_error, sizeof j->session_error, "%s", msg);
  LLVMDisposeErrorMessage(msg);
}

int cg_make_tm(const char *cpu, const char *features, LLVMCodeModel model, LLVMTargetMachineRef *out,
               oc_error *e) {
  char *triple = LLVMGetDefaultTargetTriple(), *msg = NULL;
  LLVMTargetRef target;
  int rc = 0;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    rc = oc_fail(e, "no LLVM target for %s: %s", triple, msg ? msg : "unknown");
  } else {
    *out = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive,
                                   LLVMRelocPIC, model);
    if (!*out)
      rc = oc_fail(e, "LLVM cannot make a target machine for cpu \"%s\" on %s", cpu, triple);
  }
  LLVMDisposeMessage(msg);
  LLVMDisposeMessage(triple);
  return rc;
}

int cg_jit_new_for_cpu(const char *cpu, const char *features, cg_jit **out, oc_error *e) {
  *out = NULL;
  /* the kernels are written and tested for 8 (AVX2) and 16 (AVX-512) lanes with FMA; not SSE */
  if (!cg_has_feature(features, "avx2") || !cg_has_feature(features, "fma"))
    return oc_fail(e, "the JIT emits AVX2+FMA or AVX-512 code, and cpu \"%s\" lacks %s: use --backend interp",
                   cpu, cg_has_feature(features, "avx2") ? "FMA" : "AVX2");
  if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter())
    return oc_fail(e, "LLVM has no native target for this machine");
  cg_jit *j = oc_calloc(1, sizeof *j);
  if (!j)
    return oc_fail(e, "out of memory for a JIT session");
  j->vw = cg_has_feature(features, "avx512f") ? 16 : 8;
  j->vnni = j->vw == 16 && cg_has_feature(features, "avx512vnni");
  j->avx512bf16 = j->vw == 16 && cg_has_feature(features, "avx512bf16");
  LLVMTargetMachineRef jit_tm;
  if (!(j->cpu = oc_strdup(cpu)) || !(j->features = oc_strdup(features))) {
    cg_jit_free(j);
    return oc_fail(e, "out of memory for a JIT session");
  }
  if (cg_make_tm(cpu, features, LLVMCodeModelJITDefault, &j->tm, e) ||
      cg_make_tm(cpu, features, LLVMCodeModelJITDefault, &jit_tm, e)) {
    cg_jit_free(j);
    return oc_wrap(e, "JIT for cpu \"%s\"", cpu);
  }
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
      builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jit_tm)); /* consumes jit_tm */
  LLVMErrorRef err = LLVMOrcCreateLLJIT(&j->lljit, builder); /* consumes builder */
  if (err) {
    j->lljit = NULL;
    fail_llvm(e, err, "creating the LLVM JIT");
    cg_jit_free(j);
    return -1;
  }
  LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(j->lljit),
                                          report_session_error, j);
  *out = j;
  return 0;
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

void cg_jit_free(cg_jit *j) {
  if (!j)
    return;
  cg_kernel_cache_free(j); /* first: an AOT session's pending modules live in its context */
  if (j->lljit) {
    LLVMErrorRef err = LLVMOrcDisposeLLJIT(j->lljit);
    if (err)
      LLVMConsumeError(err); /* nothing left to report it to */
  }
  cg_aot_free(j); /* its module lives in the context */
  if (j->tsc)
    LLVMOrcDisposeThreadSafeContext(j->tsc);
  if (j->tm)
    LLVMDisposeTargetMachine(j->tm);
  free(j->ir_dir);
  free(j->cpu);
  free(j->features);
  free(j->pack_dir);
  free(j);
}

/* *slot becomes a copy of dir (NULL: none). */
static int set_dir(char **slot, const char *dir, oc_error *e) {
  char *copy = NULL;
  if (dir && !(copy = oc_strdup(dir)))
    return oc_fail(e, "out of memory");
  free(*slot);
  *slot = copy;
  return 0;
}

int cg_jit_set_ir_dump_dir(cg_jit *j, const char *dir, oc_error *e) { return set_dir(&j->ir_dir, dir, e); }
int cg_jit_set_pack_dir(cg_jit *j, const char *dir, oc_error *e) { return set_dir(&j->pack_dir, dir, e); }

int cg_jit_vector_width(const cg_jit *j) { return j->vw; }
void cg_jit_set_q8(cg_jit *j, bool on) { j->q8 = on; }
bool cg_jit_q8(const cg_jit *j) { return j->q8; }

int cg_jit_set_bf16_compute(cg_jit *j, bool on, oc_error *e) {
  if (on && !j->avx512bf16)
    return oc_fail(e, "--compute bf16 runs on vdpbf16ps, and the target CPU lacks AVX512_BF16 "
                   "(an AVX-512 CPU with BF16, e.g. Sapphire Rapids or Zen 4; else use --compute f32)");
  if (on != j->bf16_compute && j->n_kernels) /* the cache's keys do not say which */
    return oc_fail(e, "--compute is a session's choice: set it before the first kernel is compiled");
  j->bf16_compute = on;
  return 0;
}

bool cg_jit_bf16_compute(const cg_jit *j) { return j->bf16_compute; }

int cg_jit_set_kv_bf16(cg_jit *j, bool on, oc_error *e) {
  if (on != j->kv_bf16 && j->n_kernels) /* as for --compute: one choice per session */
    return oc_fail(e, "--kv-cache is a session's choice: set it before the first kernel is compiled");
  j->kv_bf16 = on;
  return 0;
}

bool cg_jit_kv_bf16(const cg_jit *j) { return j->kv_bf16; }
int cg_jit_compile_count(const cg_jit *j) { return j->compiles; }
double cg_jit_compile_seconds(const cg_jit *j) { return j->compile_seconds; }
LLVMContextRef cg_jit_context(cg_jit *j) {
  return j->aot ? LLVMOrcThreadSafeContextGetContext(j->tsc) : LLVMContextCreate();
}

void cg_jit_dispose_module(const cg_jit *j, LLVMModuleRef m) {
  LLVMContextRef c = LLVMGetModuleContext(m);
  LLVMDisposeModule(m);
  if (!j->aot)
    LLVMContextDispose(c);
}

static int dump_ir(cg_jit *j, LLVMModuleRef m, oc_error *e) {
  size_t len;
  const char *name = LLVMGetModuleIdentifier(m, &len);
  char path[4096];
  if (snprintf(path, sizeof path, "%s/%.*s.ll", j->ir_dir, (int)len, name) >= (int)sizeof path)
    return oc_fail(e, "IR dump path too long in directory %s", j->ir_dir);
  rt_output out; /* as every output: a failed write leaves no partial file */
  if (rt_output_open(&out, path, e))
    return oc_wrap(e, "--emit-llvm");
  char *text = LLVMPrintModuleToString(m);
  fputs(text, out.f);
  LLVMDisposeMessage(text);
  return rt_output_close(&out, e) ? oc_wrap(e, "--emit-llvm") : 0;
}

/* Verifies m and optimizes it at O3 for the target with tm; m stays the
 * caller's. Allocates nothing of olmoc's, so threads may run it at once. */
static int optimize(cg_jit *j, LLVMTargetMachineRef tm, LLVMModuleRef m, oc_error *e) {
  if (j->aot)
    cg_aot_set_target(j, m);
  else {
    LLVMSetDataLayout(m, LLVMOrcLLJITGetDataLayoutStr(j->lljit));
    LLVMSetTarget(m, LLVMOrcLLJITGetTripleString(j->lljit));
  }
  char *msg = NULL;
  if (LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) {
    oc_fail(e, "emitted invalid LLVM IR: %s", msg ? msg : "unknown");
    LLVMDisposeMessage(msg);
    return -1;
  }
  LLVMDisposeMessage(msg);
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  LLVMErrorRef err = LLVMRunPasses(m, "default<O3>", tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  return err ? fail_llvm(e, err, "optimizing") : 0;
}

/* The optimized m as an object file in *obj. */
static int compile(cg_jit *j, LLVMTargetMachineRef tm, LLVMModuleRef m, LLVMMemoryBufferRef *obj,
                   oc_error *e) {
  *obj = NULL;
  if (optimize(j, tm, m, e))
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

static const char *module_name(LLVMModuleRef m, char *buf, size_t n) {
  size_t len;
  const char *id = LLVMGetModuleIdentifier(m, &len);
  snprintf(buf, n, "%.*s", (int)len, id);
  return buf;
}

/* Compiles m[0..n) to objs[0..n) with a target machine per thread; errs[i]
 * says why objs[i] is NULL. */
static void compile_all(cg_jit *j, LLVMModuleRef *m, int n, LLVMMemoryBufferRef *objs, oc_error *errs) {
  int threads = n < omp_get_max_threads() ? n : omp_get_max_threads();
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
    }
    if (t > 0 && tm)
      LLVMDisposeTargetMachine(tm);
  }
}

/* Optimizes the AOT session's modules one after another and links them into its object. */
static int add_aot(cg_jit *j, LLVMModuleRef *m, int n, oc_error *e) {
  int rc = 0;
  for (int i = 0; i < n; i++) {
    char name[256];
    module_name(m[i], name, sizeof name);
    if (rc || optimize(j, j->tm, m[i], e) || (j->ir_dir && dump_ir(j, m[i], e))) {
      rc = rc ? rc : oc_wrap(e, "module %s", name);
      LLVMDisposeModule(m[i]);
    } else if (cg_aot_add(j, m[i], e)) { /* consumes m[i] */
      rc = oc_wrap(e, "module %s", name);
    }
  }
  return rc;
}

int cg_jit_add_all(cg_jit *j, LLVMModuleRef *m, int n, oc_error *e) {
  if (j->aot)
    return add_aot(j, m, n, e);
  LLVMMemoryBufferRef *objs = oc_calloc((size_t)n, sizeof *objs);
  oc_error *errs = oc_calloc((size_t)n, sizeof *errs);
  int rc = !objs || !errs ? oc_fail(e, "out of memory compiling %d kernels", n) : 0;
  if (!rc)
    compile_all(j, m, n, objs, errs);
  LLVMOrcJITDylibRef lib = LLVMOrcLLJITGetMainJITDylib(j->lljit);
  for (int i = 0; i < n; i++) {
    char name[256];
    module_name(m[i], name, sizeof name);
    if (!rc && !objs[i]) {
      *e = errs[i];
      rc = oc_wrap(e, "module %s", name);
    } else if (!rc && j->ir_dir) {
      rc = dump_ir(j, m[i], e) ? oc_wrap(e, "module %s", name) : 0;
    }
    if (!rc && objs) {
      LLVMErrorRef err = LLVMOrcLLJITAddObjectFile(j->lljit, lib, objs[i]); /* consumes objs[i] */
      objs[i] = NULL;
      if (err) {
        fail_llvm(e, err, "adding to the JIT");
        rc = oc_wrap(e, "module %s", name);
      } else {
        j->compiles++;
      }
    }
    if (objs && objs[i])
      LLVMDisposeMemoryBuffer(objs[i]);
    cg_jit_dispose_module(j, m[i]);
  }
  free(objs);
  free(errs);
  return rc;
}

int cg_jit_add(cg_jit *j, LLVMModuleRef m, oc_error *e) { return cg_jit_add_all(j, &m, 1, e); }

int cg_jit_lookup(cg_jit *j, const char *name, void **addr, oc_error *e) {
  if (j->aot)
    return cg_aot_lookup(j, name, addr, e);
  LLVMOrcExecutorAddress a = 0;
  j->session_error[0] = '\0';
  LLVMErrorRef err = LLVMOrcLLJITLookup(j->lljit, &a, name);
  if (err) {
    fail_llvm(e, err, "JIT lookup");
    if (j->session_error[0])
      oc_wrap(e, "%s", j->session_error);
    return oc_wrap(e, "symbol %s", name);
  }
  *addr = (void *)(uintptr_t)a;
  return 0;
}
