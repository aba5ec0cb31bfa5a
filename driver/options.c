/* The pipeline's options, validated once for every command: each mistake
 * gets one message, the same whichever command (or API call) made it, naming
 * the option, the value found and what was expected. After drv_configure the
 * rest of the pipeline trusts the config. */
#include <stdio.h>
#include <string.h>

#include "olmoc/driver.h"
#include "olmoc/executor.h"

/* --compute and --kv-cache: "f32" (or not given) or "bf16". */
static int f32_or_bf16(const char *option, const char *value, bool *bf16, oc_error *e) {
  *bf16 = value && !strcmp(value, "bf16");
  if (value && !*bf16 && strcmp(value, "f32"))
    return oc_fail(e, "%s: expected f32 or bf16, found '%s'", option, value);
  return 0;
}

static int weights_named(const char *dtype, drv_weights *w, oc_error *e) {
  static const struct {
    const char *name;
    drv_weights w;
  } names[] = {{"f32", DRV_F32}, {"bf16", DRV_BF16}, {"f16", DRV_F16}, {"q8", DRV_Q8}, {"q4", DRV_Q4}};
  *w = DRV_AS_STORED;
  if (!dtype)
    return 0;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (!strcmp(dtype, names[i].name)) {
      *w = names[i].w;
      return 0;
    }
  return oc_fail(e, "--dtype: expected f32, bf16, q8 or q4, found '%s'", dtype);
}

/* The options that only the JIT's kernels have: on the interpreter each
 * names what it needs. */
static int jit_only(const drv_request *r, const drv_config *c, oc_error *e) {
  if (r->emit_llvm)
    return oc_fail(e, "--emit-llvm writes the JIT's kernels: it needs --backend jit");
  if (r->target)
    return oc_fail(e, "--target picks the JIT's instruction set: it needs --backend jit");
  if (r->pack_weights)
    return oc_fail(e, "--pack-weights places the JIT's packed weights: it needs --backend jit");
  if (c->weights == DRV_Q8 || c->weights == DRV_Q4)
    return oc_fail(e, "--dtype %s runs on the JIT's int8 kernels: add --backend jit", c->weights == DRV_Q8 ? "q8" : "q4");
  if (c->kv_bf16)
    return oc_fail(e, "--kv-cache bf16 is the JIT's cache layout: add --backend jit");
  if (c->bf16_compute)
    return oc_fail(e, "--compute bf16 runs on the JIT's vdpbf16ps kernels: add --backend jit");
  if (r->threads > 1)
    return oc_fail(e, "-t %ld: the interpreter runs on one thread (-t sets the JIT's): add --backend jit",
                   r->threads);
  return 0;
}

/* More threads than the processors this process may use only wait on each
 * other at every barrier (2 cores and -t 1000 ran 1,400x slower): use the
 * processors, and say so. */
static void fit_threads(const drv_request *r, drv_config *c) {
  int cores = rt_default_threads();
  c->threads = r->threads > 0 ? (int)r->threads : cores;
  if (c->backend != DRV_JIT || c->threads <= cores)
    return;
  c->threads = cores;
  snprintf(c->notice, sizeof c->notice, "-t %ld: this machine runs %d threads at once; using %d", r->threads,
           cores, cores);
}

int drv_configure(const drv_request *r, drv_backend backend, drv_config *c, oc_error *e) {
  *c = (drv_config){.backend = backend, .level = 2, .passes = r->passes, .emit_llvm = r->emit_llvm,
                    .target = r->target ? r->target : "native", .pack_weights = r->pack_weights,
                    .ctx = r->ctx, .progress = r->progress, .read_weights = r->no_mmap};
  if (r->o0 + r->o1 + r->o2 + !!r->passes > 1)
    return oc_fail(e, "give one of -O0, -O1, -O2 and --passes");
  c->level = r->o0 ? 0 : r->o1 ? 1 : 2;
  if (r->backend) {
    if (backend == DRV_OBJECT)
      return oc_fail(e, "--backend: a compiled model runs its own kernels");
    if (strcmp(r->backend, "jit") && strcmp(r->backend, "interp"))
      return oc_fail(e, "--backend: expected jit or interp, found '%s'", r->backend);
    c->backend = strcmp(r->backend, "jit") ? DRV_INTERP : DRV_JIT;
  }
  if (r->threads < 0 || r->ctx < 0)
    return oc_fail(e, "threads (%ld) and context (%ld) must not be negative", r->threads, r->ctx);
  if (weights_named(r->dtype, &c->weights, e) || f32_or_bf16("--compute", r->compute, &c->bf16_compute, e) ||
      f32_or_bf16("--kv-cache", r->kv_cache, &c->kv_bf16, e))
    return -1;
  fit_threads(r, c);
  if (c->backend == DRV_INTERP)
    return jit_only(r, c, e);
  if (strcmp(c->target, "native") && strcmp(c->target, "avx2"))
    return oc_fail(e, "--target: expected native or avx2, found '%s'", c->target);
  return cg_pack_mode_check(r->pack_weights, e);
}

/* What the object backend and the bench make: f32, or bf16 as stored or asked. */
static ir_dtype converted(drv_weights w, ir_dtype stored) {
  if (w == DRV_F32 || w == DRV_BF16)
    return w == DRV_BF16 ? IR_BF16 : IR_F32;
  return stored == IR_BF16 ? IR_BF16 : IR_F32;
}

/* Running (not converting): the stored dtype, or bf16 rounded from f32 or
 * f16 on the JIT, which rounds each weight where it packs or copies it. */
static int running(const drv_config *c, drv_weights w, ir_dtype stored, ir_dtype *dtype, oc_error *e) {
  static const ir_dtype asked[] = {[DRV_F32] = IR_F32, [DRV_BF16] = IR_BF16, [DRV_F16] = IR_F16};
  *dtype = stored;
  if (w == DRV_AS_STORED || w == DRV_Q8 || w == DRV_Q4 || asked[w] == stored)
    return 0;
  if (w != DRV_BF16)
    return oc_fail(e, "--dtype: expected %sq8, q4 or the checkpoint's own %s, found '%s'",
                   stored != IR_BF16 ? "bf16, " : "", ir_dtype_name(stored), ir_dtype_name(asked[w]));
  if (c->backend != DRV_JIT)
    return oc_fail(e, "--dtype bf16 rounds these %s weights as the JIT packs them: add --backend jit "
                   "(the interpreter reads weights as stored)", ir_dtype_name(stored));
  *dtype = IR_BF16;
  return 0;
}

int drv_weights_dtype(const drv_config *c, ir_dtype stored, bool convert, ir_dtype *dtype, bool *q8,
                      oc_error *e) {
  *q8 = c->weights == DRV_Q8 || c->weights == DRV_Q4;
  /* --compute bf16 multiplies bf16 weights: without --dtype it asks for them */
  drv_weights w = c->weights == DRV_AS_STORED && c->bf16_compute ? DRV_BF16 : c->weights;
  if (convert && w == DRV_F16)
    return oc_fail(e, "--dtype: expected f32, bf16, q8 or q4, found 'f16'");
  if (convert)
    *dtype = converted(w, stored);
  else if (running(c, w, stored, dtype, e))
    return -1;
  if (c->bf16_compute && (*q8 || *dtype != IR_BF16))
    return oc_fail(e, "--compute bf16 needs bf16 weights, and these are %s%s",
                   *q8 ? (c->weights == DRV_Q4 ? "q4" : "q8") : ir_dtype_name(*dtype),
                   *q8 ? "" : ": give --dtype bf16 or none");
  return 0;
}
