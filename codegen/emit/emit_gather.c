/* The embedding gather over a range of tokens: y[t] = table[ids[t]] for a
 * table [V,D] of f32 or bf16 (widened in registers), D baked in. The ids are
 * trusted: the caller checks 0 <= id < V before the call (the interpreter
 * does, with a message); the kernel has no V and reads whatever row it is given. */
#include "emit.h"

/* k(table, ids, y, t0, t1) */
LLVMModuleRef cg_emit_gather(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  int64_t D = k->k;
  cg_emit em, *e = &em;
  cg_emit_begin(e, tgt, name, 3, 2);
  cg_loop toks, cols;
  LLVMValueRef t = cg_loop_begin(e, &toks, cg_param(e, 3), cg_param(e, 4), 1);
  LLVMValueRef id = LLVMBuildLoad2(e->b, e->i32, LLVMBuildInBoundsGEP2(e->b, e->i32, cg_param(e, 1), &t, 1, ""), "");
  LLVMValueRef src = cg_elem(e, k->wtype, cg_param(e, 0),
                             LLVMBuildNSWMul(e->b, LLVMBuildSExt(e->b, id, e->i64, ""), cg_i64(e, D), ""));
  LLVMValueRef dst = cg_elem(e, IR_F32, cg_param(e, 2), LLVMBuildNSWMul(e->b, t, cg_i64(e, D), ""));
  LLVMValueRef c = cg_loop_begin(e, &cols, cg_i64(e, 0), cg_i64(e, D), e->vw);
  cg_store_vec(e, cg_load_vec(e, k->wtype, src, c, e->vw), dst, c, e->vw);
  cg_loop_end(e, &cols);
  if (D % e->vw) {
    LLVMValueRef at = cg_i64(e, D - D % e->vw);
    cg_store_vec(e, cg_load_vec(e, k->wtype, src, at, (int)(D % e->vw)), dst, at, (int)(D % e->vw));
  }
  cg_loop_end(e, &toks);
  return cg_emit_finish(e);
}
