/* A codegen session: what both backends share. It holds the target machine
 * for one CPU, the vector width and features the emitters choose by, the
 * options of the programs it lowers (q8, --compute bf16, --kv-cache bf16,
 * where panels go), the kernel cache and the IR dump directory, and hands
 * each optimized module to its backend (backend_jit.c or backend_object.c).
 * Invariant: nothing here knows which backend it has; every backend call
 * goes through j->backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "session.h"
#include "olmoc/alloc.h"
#include "olmoc/machine.h"
#include "olmoc/output.h"

int cg_fail_llvm(oc_error *e, LLVMErrorRef err, const char *what) {
  char *msg = LLVMGetErrorMessage(err);
  oc_fail(e, "%s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
  return -1;
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

int cg_llvm_threads(int wanted, const char *what, oc_error *e) {
  uint64_t room = rt_address_space_room(), fit = room / CG_LLVM_ROOM;
  if (fit >= 1)
    return fit < (uint64_t)wanted ? (int)fit : wanted;
  return oc_fail(e, "%s needs about %llu MiB more address space for LLVM, and the process's limits "
                 "(ulimit -v, ulimit -d) leave %llu MiB: raise them (LLVM would abort the process)",
                 what, (unsigned long long)(CG_LLVM_ROOM >> 20), (unsigned long long)(room >> 20));
}

int cg_session_new(const char *cpu, const char *features, const cg_backend *b, cg_jit **out, oc_error *e) {
  *out = NULL;
  if (cg_llvm_threads(1, b->session, e) < 0)
    return -1;
  if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter())
    return oc_fail(e, "LLVM has no native target for this machine");
  cg_jit *j = oc_calloc(1, sizeof *j);
  if (!j)
    return oc_fail(e, "out of memory for %s", b->session);
  j->vw = cg_has_feature(features, "avx512f") ? 16 : 8;
  j->vnni = j->vw == 16 && cg_has_feature(features, "avx512vnni");
  j->avx512bf16 = j->vw == 16 && cg_has_feature(features, "avx512bf16");
  if (!(j->cpu = oc_strdup(cpu)) || !(j->features = oc_strdup(features))) {
    cg_jit_free(j);
    return oc_fail(e, "out of memory for %s", b->session);
  }
  if (cg_make_tm(cpu, features, b->code_model, &j->tm, e)) { /* before the backend: it may copy the TM */
    cg_jit_free(j);
    return oc_wrap(e, b->for_cpu, cpu);
  }
  j->backend = b; /* from here on cg_jit_free closes it, also after a failed open */
  if (b->open(j, e)) {
    cg_jit_free(j);
    return -1;
  }
  *out = j;
  return 0;
}

void cg_jit_free(cg_jit *j) {
  if (!j)
    return;
  cg_kernel_cache_free(j); /* first: pending modules may live in the backend's context */
  if (j->backend)
    j->backend->close(j);
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
void cg_jit_set_progress(cg_jit *j, const oc_progress *p) { j->progress = p; }
void cg_jit_set_q8(cg_jit *j, bool on) { j->quantized = on ? IR_I8 : IR_F32; }
bool cg_jit_q8(const cg_jit *j) { return j->quantized == IR_I8; }
void cg_jit_set_q4(cg_jit *j, bool on) { j->quantized = on ? IR_Q4 : IR_F32; }
bool cg_jit_q4(const cg_jit *j) { return j->quantized == IR_Q4; }

/* The LM head (its own matrix, or the tied embedding table) stays q8 under
 * q4: it is the most sensitive matrix, and 16% of the 1B's bytes. */
ir_dtype cg_quantized_dtype(const cg_jit *j, const char *weight) {
  if (j->quantized != IR_Q4)
    return j->quantized;
  return strstr(weight, "lm_head") || strstr(weight, "embed_tokens") ? IR_I8 : IR_Q4;
}

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

int cg_jit_compile_count(const cg_jit *j) { return j->compiles; }
double cg_jit_compile_seconds(const cg_jit *j) { return j->compile_seconds; }

int cg_session_dump_ir(const cg_jit *j, LLVMModuleRef m, oc_error *e) {
  if (!j->ir_dir)
    return 0;
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

int cg_session_optimize(const cg_jit *j, LLVMTargetMachineRef tm, LLVMModuleRef m, oc_error *e) {
  j->backend->set_target(j, m);
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
  return err ? cg_fail_llvm(e, err, "optimizing") : 0;
}

const char *cg_module_name(LLVMModuleRef m, char *buf, size_t n) {
  size_t len;
  const char *id = LLVMGetModuleIdentifier(m, &len);
  snprintf(buf, n, "%.*s", (int)len, id);
  return buf;
}

int cg_jit_lookup(cg_jit *j, const char *name, void **addr, oc_error *e) {
  return j->backend->lookup(j, name, addr, e);
}
