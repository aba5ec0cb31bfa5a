/* The memory plan: where every activation of one forward call lives. All
 * computed values share one arena; each gets a byte offset in it (64-byte
 * aligned) such that no two values live at the same time overlap, except a view
 * and its source and an elementwise op computed in place over an input that
 * dies at it. Weights, KV caches, constants and graph inputs live elsewhere. */
#ifndef OLMOC_PLAN_H
#define OLMOC_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include "olmoc/ir.h"

#define PASS_PLAN_ALIGN 64

typedef struct pass_plan {
  int n;               /* nodes in the planned graph */
  int64_t max_tokens;  /* largest T the plan allows */
  int64_t max_ctx;     /* largest P+T the plan allows */
  int64_t *bytes;      /* [n]: bytes of each value at its largest T (<= max_tokens) and P */
  int64_t *offset;     /* [n]: byte offset in the arena, or -1 for a value that lives elsewhere */
  int *alias_of;       /* [n]: the input whose bytes this value is (reshape, output), or -1 */
  int64_t arena_bytes; /* planned: the arena's size */
  int64_t naive_bytes; /* sum of the bytes of every activation with its own storage */
  int64_t lower_bound; /* the largest total of simultaneously live (aligned) bytes */
} pass_plan;

/* Plans g's activations for calls of up to max_tokens tokens and max_ctx
 * positions in all (1 <= max_tokens <= max_ctx). g must verify; its node order
 * is the schedule. On success the caller frees the plan with pass_plan_free. */
int pass_plan_memory(const ir_graph *g, int64_t max_tokens, int64_t max_ctx, pass_plan *plan,
                     oc_error *e);
void pass_plan_free(pass_plan *plan);

/* Verifies a plan independently of the planner: every value that needs arena
 * storage has it, every buffer is aligned and inside the arena, and no two
 * buffers live at the same time overlap (views and in-place pairs excepted).
 * The message names the nodes at fault. */
int pass_plan_check(const ir_graph *g, const pass_plan *plan, oc_error *e);

/* One row of the memory table; labels[i] names plans[i]. Sizes in MiB. */
void pass_plan_report(FILE *f, const char *const *labels, const pass_plan *plans, int n);

#endif
