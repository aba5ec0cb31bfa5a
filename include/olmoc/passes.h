/* The pass manager: every pass is registered once in pass_registry (name,
 * function, one-line description, the lowest -O level that runs it); a
 * pipeline is the registry's order filtered by level, or an explicit list.
 * Invariant: the graph verifies before the pipeline and after every pass; a
 * pass that breaks it is reported by name and the pipeline stops. */
#ifndef OLMOC_PASSES_H
#define OLMOC_PASSES_H

#include <stdbool.h>
#include <stdio.h>

#include "olmoc/ir.h"
#include "olmoc/plan.h"

#define PASS_MAX_RUNS 64 /* passes in one pipeline */

typedef struct pass_options {
  int level;                   /* -O0, -O1 or -O2 */
  const char *passes;          /* "a,b,c": run these in this order instead of the level's */
  const char *disable;         /* "a,b": skip these */
  const char *print_after;     /* "a,b": print the graph after these */
  bool print_after_all;
  const char *dump_dir;        /* dumps go to DIR/NN-name.ir, else to `dump` */
  FILE *dump;                  /* NULL: standard error */
  int64_t max_tokens, max_ctx; /* plan-memory's limits; 0: 512 and 4096 */
  bool need_plan;              /* the backend needs a memory plan of the final graph (the
                                  JIT): plan-memory is appended unless the pipeline ends with it */
} pass_options;

typedef struct pass_record {
  const char *name;
  int nodes_before, nodes_after;
  int changes; /* fusions, folds, merges or removals the pass made */
  int64_t work; /* nodes its rewrites visited (passes/rewrite.h): its cost, counted, for tests */
  double seconds;
} pass_record;

typedef struct pass_result {
  pass_record rec[PASS_MAX_RUNS]; /* [n]: one per pass run, in order */
  int n;
  bool planned;   /* plan-memory ran: plan holds its result */
  pass_plan plan;
} pass_result;

/* What a pass sees besides the graph; it adds to `changes`. */
typedef struct pass_env {
  const pass_options *options;
  pass_result *result;
  int changes;
  int64_t work; /* added to by rw_finish */
} pass_env;

typedef int (*pass_fn)(ir_graph *g, pass_env *env, oc_error *e);

typedef struct pass_info {
  const char *name;
  pass_fn run;
  const char *summary;
  int level; /* the lowest -O level whose pipeline includes it */
} pass_info;

extern const pass_info pass_registry[];
extern const int pass_registry_count;

/* The registered pass called `name`, or NULL. */
const pass_info *pass_lookup(const char *name);

/* Runs the pipeline o describes (o == NULL: -O2) over g, in place. On failure
 * the message names the pass; r holds what ran (free it either way). */
int pass_run_pipeline(ir_graph *g, const pass_options *o, pass_result *r, oc_error *e);
void pass_result_free(pass_result *r);

/* Per pass: nodes before and after, changes, time; then the memory table
 * when plan-memory ran. */
void pass_print_stats(const pass_result *r, FILE *out);

/* The passes, one file each (passes/NAME.c). */
int pass_dce(ir_graph *g, pass_env *env, oc_error *e);
int pass_cse(ir_graph *g, pass_env *env, oc_error *e);
int pass_fold_constants(ir_graph *g, pass_env *env, oc_error *e);
int pass_fuse_rmsnorm(ir_graph *g, pass_env *env, oc_error *e);
int pass_fuse_rope(ir_graph *g, pass_env *env, oc_error *e);
int pass_fuse_swiglu(ir_graph *g, pass_env *env, oc_error *e);
int pass_fuse_matmul_swiglu(ir_graph *g, pass_env *env, oc_error *e);
int pass_fuse_attention(ir_graph *g, pass_env *env, oc_error *e);
int pass_fuse_residual(ir_graph *g, pass_env *env, oc_error *e);
int pass_fuse_elementwise(ir_graph *g, pass_env *env, oc_error *e);
int pass_memory(ir_graph *g, pass_env *env, oc_error *e);

#endif
