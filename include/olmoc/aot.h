/* Compiled models on the runtime's side, no LLVM: writing what a compiled
 * model needs into its packed file (olmoc/pack.h) while `olmoc compile`
 * lowers it, and opening it again in the model binary: the program with the
 * binary's own kernels, the tokenizer without tokenizer.json, the
 * generation defaults without generation_config.json. */
#ifndef OLMOC_AOT_H
#define OLMOC_AOT_H

#include <stdbool.h>
#include <stdint.h>

#include "olmoc/chat.h"
#include "olmoc/executor.h"
#include "olmoc/generate.h"
#include "olmoc/dtype.h"
#include "olmoc/pack.h"
#include "olmoc/sampler.h"
#include "olmoc/tokenizer.h"
#include "olmoc/weights.h"

/* A kernel by the symbol the compiler gave it, with what it may touch. */
typedef struct rt_kernel_symbol {
  const char *name;
  void *fn;
  rt_kernel_contract contract;
} rt_kernel_symbol;

/* What `olmoc compile` generates into every model binary, as the C variable
 * `olmoc_aot_image` (codegen/aot_link.c writes it: keep the two in step). */
typedef struct rt_aot_image {
  uint64_t build_id;               /* also in the packed file: they must match */
  const char *cpu, *features;      /* the target the kernels were compiled for */
  const rt_kernel_symbol *kernels; /* [n_kernels] */
  int n_kernels;
  uint32_t dtype;                  /* rt_pack_dtype: the weights the kernels read */
} rt_aot_image;

/* ---- the program ----
 * Packing writes every buffer the program owns (rope tables, weights
 * converted to f32, constants, packed matrices) as a buffer section, then the
 * program: its steps with each argument as an arena offset, a cache, the
 * tokens, a (section, offset) from rt_pack_resolve (which writes offered
 * weights the program reads in place), or a (scratch buffer, offset) for
 * memory the steps write (rt_program_scratch: recorded by size only); each
 * kernel by its symbol in `kernels` (matched by address). Unpacking rebuilds
 * it on the loaded pack (which must outlive it) with the binary's kernels
 * (matched by name), with KV caches of ctx positions (0: as compiled; at most
 * as compiled) and its scratch buffers allocated again, of the same sizes,
 * and checks it against the kernels' contracts (rt_program_check): a file
 * whose program would make a kernel touch memory outside its buffers is
 * refused, whatever its checksums say. */
int rt_program_pack(const rt_program *p, rt_pack_writer *w, const rt_kernel_symbol *kernels,
                    int n_kernels, oc_error *e);
int rt_program_unpack(const rt_pack *pack, const rt_kernel_symbol *kernels, int n_kernels,
                      int64_t ctx, rt_program **out, oc_error *e);

/* ---- weights, streamed while lowering ---- */
typedef struct rt_pack_weights {
  rt_pack_writer *w;
  const rt_weights *src; /* the checkpoint, mmap'ed */
  ir_dtype dtype;        /* what the graph's weight nodes are: f32 or bf16 (for q8 too:
                            lowering quantizes the matmul weights from it) */
} rt_pack_weights;

/* An ir_weight_fn (ctx: an rt_pack_weights) for cg_lower at compile time:
 * the named checkpoint tensor in dtype, in place when it is stored so, else
 * converted piece by piece into the writer's scratch file (rt_pack_stage);
 * either way offered to the pack, so that it is written only if the program
 * reads it in place (an embedding table), and its pages are given back as
 * they are used: no weight is ever whole in this process's memory. */
int rt_pack_weight(void *ctx, const char *name, ir_tensor *out, oc_error *e);

/* ---- the tokenizer, prebuilt: no JSON to parse at start ---- */
int rt_tokenizer_pack(const rt_tokenizer *t, rt_pack_writer *w, oc_error *e);
/* source names the pack in messages. */
int rt_tokenizer_unpack(const void *data, size_t n, const char *source, rt_tokenizer **out,
                        oc_error *e);

/* ---- what generation needs besides the program and the tokenizer ---- */
#define RT_AOT_MAX_EOS 8

typedef struct rt_aot_meta {
  char model[256];         /* the checkpoint it was compiled from, for messages */
  int64_t vocab;           /* the model's vocabulary (logits per position) */
  int64_t ctx;             /* positions the program was compiled for */
  int n_eos;
  int32_t eos[RT_AOT_MAX_EOS];
  bool has_sampling;       /* the model had a generation_config.json */
  rt_sampling sampling;    /* its defaults (greedy otherwise); seed unused */
  bool has_chat;           /* the model had a chat template olmoc renders */
  rt_chat_template chat;
} rt_aot_meta;

int rt_aot_meta_pack(const rt_aot_meta *m, rt_pack_writer *w, oc_error *e);
int rt_aot_meta_unpack(const void *data, size_t n, const char *source, rt_aot_meta *m, oc_error *e);

/* ---- a compiled model, opened ---- */
typedef struct rt_aot_options {
  const char *binary;  /* the running executable or library, for the default weights */
  const char *weights; /* a packed file; NULL: the one embedded in `binary`, else the
                          file beside it named for it (tiny -> tiny.weights,
                          libtiny.so -> tiny.weights) */
  rt_pack_load load;
  int64_t ctx;         /* KV cache positions; 0: as compiled */
  int threads;         /* < 1: all cores */
  const oc_progress *progress; /* reading the weights reports here; NULL: silent */
} rt_aot_options;

typedef struct rt_aot_model {
  rt_pack *pack;
  rt_program *program;
  rt_tokenizer *tokenizer;
  rt_aot_meta meta;
  rt_model model;      /* the program, as the generation loop drives it */
  int threads;
  double load_seconds;
} rt_aot_model;

/* Checks the CPU, finds and opens the packed file, rebuilds the program with
 * img's kernels and the tokenizer. */
int rt_aot_open(const rt_aot_image *img, const rt_aot_options *o, rt_aot_model **out, oc_error *e);
void rt_aot_close(rt_aot_model *m);

#endif
