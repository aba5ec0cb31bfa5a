/* Ahead-of-time compilation on the LLVM side: a session whose kernels (the
 * same emitters, keys and lowering as the JIT's) are linked into one object
 * file for a target CPU instead of being run in this process, and the link
 * of a model binary from that object, a generated kernel table and the
 * runtime archive with the system C compiler. */
#ifndef OLMOC_COMPILE_H
#define OLMOC_COMPILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "olmoc/aot.h"
#include "olmoc/codegen.h"
#include "olmoc/output.h"

/* A target by name: "native" (this CPU as LLVM names it, with all its
 * features) or "avx2" (haswell: AVX2 and FMA, 8-float vectors). */
typedef struct cg_target {
  char cpu[64];
  char features[3968]; /* fits rt_pack_header.features */
} cg_target;

int cg_target_named(const char *name, cg_target *t, oc_error *e);

/* A session for cg_kernel_get and cg_lower whose kernels are collected for
 * cg_aot_emit_object. Its programs are for rt_program_pack only: their
 * kernel pointers are placeholders, not code. Free with cg_jit_free. */
int cg_aot_new(const cg_target *t, cg_jit **out, oc_error *e);

/* Every kernel the session has compiled so far, by symbol, with the address
 * the session's programs use for it (a JIT's: the code itself). *list is
 * malloc'ed; the names live as long as j. */
int cg_kernel_symbols(const cg_jit *j, rt_kernel_symbol **list, int *n, oc_error *e);

/* Lowers g as cg_lower does, each weight of src streamed into w in dtype as
 * it is reached (rt_pack_weight), then packs the program (rt_program_pack)
 * with j's kernels; the program itself is not kept. */
int cg_lower_packed(cg_jit *j, const ir_graph *g, const pass_plan *plan, int64_t ctx,
                    const rt_weights *src, ir_dtype dtype, rt_pack_writer *w, oc_error *e);

/* Writes the AOT session's kernels as one relocatable object (PIC, symbols
 * hidden so a shared library exports only its API). */
int cg_aot_emit_object(cg_jit *j, const char *path, oc_error *e);

/* ---- linking a model binary ---- */

/* A file to put in the link's scratch directory, e.g. an embedded archive. */
typedef struct cg_blob {
  const char *name; /* file name, e.g. "libolmoc_aot.a" */
  const void *data;
  size_t size;
} cg_blob;

typedef struct cg_link {
  rt_output *output;     /* where the executable or shared library goes (open, not yet ready) */
  bool shared;           /* a shared library exporting the C API instead of an executable */
  const cg_target *target;
  uint64_t build_id;
  rt_pack_dtype dtype;   /* the weights the kernels read (the pack's) */
  const cg_blob *archives; /* linked after the kernels, in order */
  int n_archives;
  const char *cc;        /* the C compiler; NULL: $CC, else "cc" */
} cg_link;

/* Emits j's kernels, generates the kernel table (olmoc_aot_image), and runs
 * the C compiler to link them with the archives in a scratch directory in
 * $TMPDIR (removed on every path, and on a signal: olmoc/cleanup.h), then
 * copies the result into l->output. A failing command is reported with its
 * command line and its output. */
int cg_aot_link(cg_jit *j, const cg_link *l, oc_error *e);

#endif
