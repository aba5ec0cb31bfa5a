/* The session's state and the backend interface, shared by the files at the
 * top of codegen/ and never seen outside it (nor by emit/ or panels/, which
 * get what they need as cg_emit_target and cg_panels). Invariant: a
 * session's backend, target and options are fixed before its first kernel. */
#ifndef OLMOC_CG_SESSION_H
#define OLMOC_CG_SESSION_H

#include <stdbool.h>

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/TargetMachine.h>

#include "olmoc/codegen.h"
#include "olmoc/pack.h"
#include "panels/panels.h"

typedef struct cg_kernel_entry {
  cg_kernel_key key;     /* normalized: fields the op ignores are zero */
  void *fn;              /* NULL until compiled */
  rt_kernel_contract *contract; /* what it may touch; its own allocation, so that steps can point at it */
  char symbol[128];      /* its name in the JIT or the object file */
  LLVMModuleRef pending; /* emitted, waiting for cg_kernel_compile_pending; else NULL */
} cg_kernel_entry;

/* A backend: where a session's optimized kernels go. ORC JIT (backend_jit.c)
 * runs them in this process; the object file (backend_object.c) collects
 * them for `olmoc compile`. */
typedef struct cg_backend {
  const char *session;      /* "a JIT session": what an out-of-memory message names */
  const char *for_cpu;      /* how a failure to make the target machine is wrapped, with the cpu */
  LLVMCodeModel code_model; /* of the session's target machine */
  /* Makes j->backend_state (close frees what open made, also after a failed open). */
  int (*open)(cg_jit *j, oc_error *e);
  void (*close)(cg_jit *j);
  /* The context for a new module, and the disposal of one not handed to add_all. */
  LLVMContextRef (*context)(cg_jit *j);
  void (*dispose_module)(const cg_jit *j, LLVMModuleRef m);
  /* The data layout and triple of m, before it is optimized. */
  void (*set_target)(const cg_jit *j, LLVMModuleRef m);
  /* Optimizes (cg_session_optimize), dumps IR if asked, and takes m[0..n), consuming them,
   * adding one to `compiled` as each is compiled (from one thread at a time). */
  int (*add_all)(cg_jit *j, LLVMModuleRef *m, int n, oc_step *compiled, oc_error *e);
  /* A kernel's address (the JIT's code; an object's placeholder). */
  int (*lookup)(cg_jit *j, const char *name, void **addr, oc_error *e);
} cg_backend;

/* The session (session.c): what both backends share. */
struct cg_jit {
  const cg_backend *backend;
  void *backend_state;             /* the backend's own (backend_jit.c, backend_object.c) */
  LLVMTargetMachineRef tm;         /* optimizes and compiles */
  char *cpu, *features;            /* what the target machines are for */
  int vw;                          /* floats per vector */
  bool vnni;                       /* AVX512_VNNI (vpdpbusd) at vw 16: the q8 kernels use it */
  ir_dtype quantized;              /* what cg_lower quantizes matmul weights to: IR_I8 (q8),
                                      IR_Q4 (the LM head IR_I8), or IR_F32 (none) */
  bool avx512bf16;                 /* AVX512_BF16 (vdpbf16ps) at vw 16: --compute bf16 can run */
  bool bf16_compute;               /* bf16 weights packed in k pairs, T > 1 on vdpbf16ps */
  bool kv_bf16;                    /* KV caches in bf16 (cg_jit_set_kv_bf16) */
  char *ir_dir;                    /* where optimized IR goes, or NULL */
  cg_kernel_entry *kernels;        /* [n_kernels]: the cache */
  int n_kernels, cap_kernels;
  int compiles;
  double compile_seconds;          /* spent emitting and compiling kernels */
  rt_pack_writer *sink;            /* while cg_lower runs: the pack panels go to, or NULL */
  char *pack_dir;                  /* the JIT places panels into a scratch pack there (cg_jit_set_pack_dir) */
  const oc_progress *progress;     /* where packing and compiling report, or NULL */
};

/* A session for cpu and features with backend b (its constructor checked them). */
int cg_session_new(const char *cpu, const char *features, const cg_backend *b, cg_jit **out, oc_error *e);
/* LLVM aborts the process when an allocation fails (it cannot be hooked),
 * so it is called only with room for it under the process's address-space
 * and data limits: CG_LLVM_ROOM per thread compiling, about 2.5 times the
 * most measured. cg_llvm_threads returns how many of `wanted` threads fit
 * (at least 1), or fails saying what is needed; `what` names the work. */
#define CG_LLVM_ROOM ((uint64_t)32 << 20)
int cg_llvm_threads(int wanted, const char *what, oc_error *e);
/* A target machine for cpu and features, PIC, with the given code model. */
int cg_make_tm(const char *cpu, const char *features, LLVMCodeModel model, LLVMTargetMachineRef *out,
               oc_error *e);
/* Verifies m and optimizes it at O3 for j's target with tm; m stays the
 * caller's. Allocates nothing of olmoc's, so threads may run it at once. */
int cg_session_optimize(const cg_jit *j, LLVMTargetMachineRef tm, LLVMModuleRef m, oc_error *e);
/* Writes m's IR to the session's IR dump directory, if it has one. */
int cg_session_dump_ir(const cg_jit *j, LLVMModuleRef m, oc_error *e);
/* Consumes err into e as "what: message"; returns -1. */
int cg_fail_llvm(oc_error *e, LLVMErrorRef err, const char *what);
/* m's name into buf. */
const char *cg_module_name(LLVMModuleRef m, char *buf, size_t n);

/* Matmul weight w (a node named `name`) in the kernels' panels of dtype wt
 * (w's own, or IR_I8: quantized to q8): in memory p owns, or, while j has a
 * sink, streamed into it panel by panel and mapped back (panel_place.c). */
int cg_packed_weight(cg_jit *j, rt_program *p, const char *name, const ir_tensor *w, ir_dtype wt,
                     const void **out, oc_error *e);
/* For cg_lower, once its program p exists: when j packs into files and has
 * no sink yet, a scratch pack with room for `packed` bytes of panels becomes
 * j's sink and p's to free (panel_place.c). cg_lower clears j->sink when it
 * ends. */
int cg_scratch_sink(cg_jit *j, rt_program *p, uint64_t packed, oc_error *e);
/* "+avx2,-avx512f,..." lists `name` as enabled. */
bool cg_has_feature(const char *features, const char *name);

/* Frees the cache's entries (at cg_jit_free). */
void cg_kernel_cache_free(cg_jit *j);

/* Kernels in two phases, so that a model's compile on all cores at once:
 * cg_kernel_request emits key's kernel unless the cache has it and gives its
 * index; cg_kernel_compile_pending compiles every kernel emitted since the
 * last call; cg_kernel_fn is then kernel index's function (NULL before).
 * cg_kernel_get is the three in one. */
int cg_kernel_request(cg_jit *j, const cg_kernel_key *key, int *index, oc_error *e);
int cg_kernel_compile_pending(cg_jit *j, oc_error *e);
void *cg_kernel_fn(const cg_jit *j, int index);
const rt_kernel_contract *cg_kernel_contract_at(const cg_jit *j, int index);

#endif
