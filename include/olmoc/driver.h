/* The driver: the one pipeline that opens a model, for every command, the
 * server and the public C API alike. A request holds the options as a user
 * gave them (strings, as from a command line); drv_configure validates them
 * once, with one message per mistake, into a drv_config that the rest of the
 * pipeline trusts: config.json -> graph -> weights check -> passes ->
 * reference interpreter, JIT program or (drv_compile) a model binary. */
#ifndef OLMOC_DRIVER_H
#define OLMOC_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "olmoc/codegen.h"
#include "olmoc/compile.h"
#include "olmoc/error.h"
#include "olmoc/generate.h"
#include "olmoc/interp.h"
#include "olmoc/olmo2.h"
#include "olmoc/passes.h"
#include "olmoc/progress.h"
#include "olmoc/tokenizer.h"
#include "olmoc/weights.h"

/* The pipeline's options as given; NULL or 0 is "not given". */
typedef struct drv_request {
  bool o0, o1, o2;          /* -O0, -O1, -O2 (at most one, and not with passes) */
  const char *passes;       /* --passes A,B: run these instead */
  const char *backend;      /* --backend: "jit" or "interp" */
  long threads;             /* -t: JIT threads */
  const char *emit_llvm;    /* --emit-llvm DIR: each kernel's optimized LLVM IR */
  const char *target;       /* --target: "native" or "avx2" */
  const char *dtype;        /* --dtype: "f32", "bf16", "f16", "q8" */
  const char *pack_weights; /* --pack-weights: "auto", "memory", "file" */
  const char *compute;      /* --compute: "f32" or "bf16" */
  const char *kv_cache;     /* --kv-cache: "f32" or "bf16" */
  long ctx;                 /* --ctx: KV cache positions */
  const oc_progress *progress; /* where the long steps report (packing, compiling); NULL: silent */
  bool no_mmap;             /* --no-mmap: read the checkpoint into memory */
} drv_request;

/* Who evaluates the graph: the reference interpreter, the JIT's kernels, or
 * (olmoc compile) kernels in an object file linked into a model binary. */
typedef enum drv_backend { DRV_INTERP, DRV_JIT, DRV_OBJECT } drv_backend;

/* The weights asked for: as the checkpoint stores them, converted (to f32
 * or bf16 by olmoc compile; to bf16 from f32 or f16 by the JIT), or the
 * matmul weights quantized to int8 (q8) or to 4 bits with the LM head in
 * int8 (q4). */
typedef enum drv_weights { DRV_AS_STORED, DRV_F32, DRV_BF16, DRV_F16, DRV_Q8, DRV_Q4 } drv_weights;

/* A validated request. */
typedef struct drv_config {
  drv_backend backend;
  int level;                /* 0, 1 or 2; ignored when passes is set */
  const char *passes;
  int threads;              /* >= 1 */
  const char *emit_llvm;    /* or NULL */
  const char *target;       /* "native" or "avx2" */
  drv_weights weights;
  const char *pack_weights; /* NULL ("auto"), "memory" or "file" */
  bool bf16_compute, kv_bf16;
  int64_t ctx;              /* 0: the model's context */
  char notice[192];         /* what was changed from the request, and why; "" when nothing */
  const oc_progress *progress; /* the request's, or NULL */
  bool read_weights;        /* the checkpoint read into memory, not mapped */
} drv_config;

/* Validates r for `backend` (r->backend, when given, picks DRV_JIT or
 * DRV_INTERP instead; it must be NULL for DRV_OBJECT). Fails naming the
 * option, the value found and what was expected. */
int drv_configure(const drv_request *r, drv_backend backend, drv_config *c, oc_error *e);

/* The graph's weight dtype for weights stored as `stored`, and whether its
 * matmuls quantize them (q8 or q4, as c->weights says). convert: the caller
 * can make the weights in f32 or bf16 whatever they are stored as (olmoc
 * compile converts while packing, olmoc bench makes them); otherwise the
 * stored dtype, or (the JIT) bf16 rounded from f32 or f16, and any other
 * dtype is refused. --compute bf16 without --dtype asks for bf16; with
 * weights that are not bf16 it is refused. */
int drv_weights_dtype(const drv_config *c, ir_dtype stored, bool convert, ir_dtype *dtype, bool *q8,
                      oc_error *e);

/* A quantized checkpoint (olmoc quantize) runs as it was quantized: *out
 * is c with its weights set to the checkpoint's q4 or q8 (or c itself for
 * any other checkpoint). Returns 1 with a message when c asks for something
 * else (another --dtype, the interpreter), -1 on error. */
int drv_quantized_config(const char *dir, const rt_weights *w, const drv_config *c, drv_config *out, oc_error *e);
/* A quantized checkpoint's panels are as wide as j's kernels read. */
int drv_check_panels(const rt_weights *w, const cg_jit *j, oc_error *e);

/* The passes c asks for over g (plan-memory appended when need_plan), sized
 * for calls of up to max_tokens tokens with ctx positions cached. */
int drv_run_passes(const drv_config *c, ir_graph *g, int64_t max_tokens, int64_t ctx, bool need_plan,
                   pass_result *r, oc_error *e);

/* A JIT session for c (its target, q8 or q4 when q8 is set, --compute, --kv-cache, --emit-llvm,
 * its progress). */
int drv_jit_new(const drv_config *c, bool q8, cg_jit **out, oc_error *e);
/* j quantizes matmul weights when `quantized` is set (drv_weights_dtype's
 * answer): to q4 for --dtype q4, else to q8. */
void drv_set_quantized(const drv_config *c, cg_jit *j, bool quantized);

/* Places j's packed weights (from the lookup weights, as cg_lower will be
 * given) as c->pack_weights says and, when into a file, says where and why
 * in one line on stderr. */
int drv_place_weights(const drv_config *c, cg_jit *j, const ir_graph *g, const pass_plan *plan, int64_t ctx,
                      ir_weight_fn weights, void *weights_ctx, oc_error *e);

/* A checkpoint opened for running: the backend's program (JIT) or
 * interpreter, presented to the runtime as an rt_model. */
typedef struct drv_model {
  const char *dir;
  olmo2_config config;
  rt_tokenizer *tokenizer; /* NULL unless asked for */
  rt_weights *weights;
  ir_graph *graph;
  ir_interp *interp;  /* DRV_INTERP's, else NULL */
  cg_jit *jit;        /* DRV_JIT's kernels, else NULL */
  rt_program *program;
  int threads;
  int32_t eos[OLMO2_MAX_EOS]; /* [config.n_eos] */
  rt_model model;
  double load_seconds;
} drv_model;

/* dir is a directory, as a checkpoint is; a file (config.json, a
 * .safetensors) gets a message naming the directory to give instead. */
int drv_checkpoint_dir(const char *dir, oc_error *e);

/* Opens the checkpoint in dir for DRV_INTERP or DRV_JIT with a KV cache of
 * c->ctx positions (0: the model's); want_tokenizer: also dir/tokenizer.json.
 * Returns 0, DRV_UNFIT when c does not fit this checkpoint (its dtype, its
 * context), or -1 for anything else (a missing or damaged file, memory). */
#define DRV_UNFIT (-2)
int drv_model_open(drv_model *m, const char *dir, const drv_config *c, bool want_tokenizer, oc_error *e);
void drv_model_close(drv_model *m);

/* The model in the bundled directory, for callers given none. */
const char *drv_default_model(void);

/* What olmoc compile writes, from OUT: an executable OUT, or (lib) the shared
 * library DIR/libNAME.so and its header DIR/NAME.h, and the weights
 * OUT.weights unless embedded in the binary. */
typedef struct drv_compile_request {
  const char *output;
  bool lib, embed;
  const cg_blob *archives; /* the runtime the binary links, in order */
  int n_archives;
  const cg_blob *header;   /* the C API header a library ships with */
} drv_compile_request;

/* Compiles the checkpoint in dir for c (DRV_OBJECT) as r says. On failure
 * nothing it was writing is left behind. */
int drv_compile(const char *dir, const drv_config *c, const drv_compile_request *r, oc_error *e);

/* Writes the checkpoint in dir with its matmul weights quantized as
 * c->weights says (DRV_Q4 or DRV_Q8, for c->target's panels) into the
 * directory out (made if missing; not one holding safetensors weights): a
 * quantized checkpoint that drv_model_open and drv_compile read as they read
 * dir with --dtype q4 or q8, without quantizing again. */
int drv_quantize(const char *dir, const drv_config *c, const char *out, oc_error *e);

#endif
