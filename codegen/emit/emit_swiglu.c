/* The swiglu kernel, y = silu(g) * u over a range of elements: whole vectors
 * while one fits, then scalars. Invariant: the tail computes exactly what the
 * vector body computes (cg_silu_mul on either type), so a split of the range
 * never changes a bit. */
#include "emit.h"

/* k(g, u, y, i0, i1): vectors while a whole one fits, then scalars. */
LLVMModuleRef cg_emit_swiglu(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  (void)k; /* one swiglu kernel serves every shape */
  cg_emit em, *e = &em;
  cg_emit_begin(e, tgt, name, 3, 2);
  LLVMValueRef g = cg_param(e, 0), u = cg_param(e, 1), y = cg_param(e, 2), end = cg_param(e, 4);
  cg_loop vec, tail;
  LLVMValueRef i = cg_loop_begin(e, &vec, cg_param(e, 3), end, e->vw);
  LLVMValueRef v = cg_silu_mul(e, cg_load_vec(e, IR_F32, g, i, e->vw), cg_load_vec(e, IR_F32, u, i, e->vw));
  cg_store_vec(e, v, y, i, e->vw);
  cg_loop_end(e, &vec);
  i = cg_loop_begin(e, &tail, cg_get(e, e->i64, vec.var), end, 1);
  v = cg_silu_mul(e, cg_load_f32(e, IR_F32, g, i), cg_load_f32(e, IR_F32, u, i));
  cg_store_f32(e, v, y, i);
  cg_loop_end(e, &tail);
  return cg_emit_finish(e);
}
