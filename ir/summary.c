/* A graph at a glance: node counts per op, weights and their bytes, KV cache
 * bytes per cached position. What `olmoc ir --emit summary` prints, and what
 * passes will report before and after they run. Sizes are summed with
 * overflow checks: a graph read from a file may declare more than int64_t
 * counts (the parser bounds each type, not their sum). */
#include <inttypes.h>
#include <stdio.h>

#include "olmoc/ir.h"
#include "olmoc/ir_text.h"

#define TOO_MANY INT64_MAX /* a sum that overflowed, or a negative size */

/* a + b * c for non-negative sizes, or TOO_MANY. */
static int64_t add_product(int64_t a, int64_t b, int64_t c) {
  int64_t p;
  if (a < 0 || b < 0 || c < 0 || __builtin_mul_overflow(b, c, &p) ||
      __builtin_add_overflow(a, p, &p))
    return TOO_MANY;
  return p;
}

/* Elements of shape s with T = 0 and this P, or TOO_MANY. */
static int64_t numel(const ir_shape *s, int64_t P) {
  int64_t n = 1;
  for (int i = 0; i < s->rank && n != TOO_MANY; i++)
    n = add_product(0, n, ir_dim_eval(s->dim[i], 0, P));
  return n;
}

int ir_print_summary(const ir_graph *g, FILE *out) {
  int count[IR_OP_COUNT] = {0};
  int64_t layers = 0, params = 0, weight_bytes = 0, cache_row_bytes = 0; /* layer may be INT_MAX */
  for (int i = 0; i < g->n; i++) {
    const ir_node *n = &g->nodes[i];
    count[n->op]++;
    if (n->layer + INT64_C(1) > layers)
      layers = n->layer + INT64_C(1);
    if (n->op == IR_WEIGHT) {
      int64_t k = numel(&n->type.shape, 0);
      params = add_product(params, k, 1);
      weight_bytes = add_product(weight_bytes, k, (int64_t)ir_dtype_size(n->type.dtype));
    } else if (n->op == IR_KV_CACHE) {
      /* [P, ...]: one row per cached position */
      cache_row_bytes = add_product(cache_row_bytes, numel(&n->type.shape, 1),
                                    (int64_t)ir_dtype_size(n->type.dtype));
    }
  }
  fprintf(out, "nodes            %d in %" PRId64 " layers\n", g->n, layers);
  if (params == TOO_MANY || weight_bytes == TOO_MANY)
    fprintf(out, "parameters       more than int64_t counts in %d weights\n", count[IR_WEIGHT]);
  else
    fprintf(out, "parameters       %" PRId64 " (%.2f B) in %d weights, %.2f GiB\n", params,
            (double)params / 1e9, count[IR_WEIGHT], (double)weight_bytes / (1u << 30));
  if (cache_row_bytes == TOO_MANY)
    fprintf(out, "kv cache         more than int64_t counts per position in %d caches\n",
            count[IR_KV_CACHE]);
  else
    fprintf(out, "kv cache         %" PRId64 " bytes per position in %d caches\n", cache_row_bytes,
            count[IR_KV_CACHE]);
  fprintf(out, "ops             ");
  for (int op = 0; op < IR_OP_COUNT; op++)
    if (count[op])
      fprintf(out, " %s:%d", ir_op_table[op].name, count[op]);
  return fprintf(out, "\n") < 0 ? -1 : 0;
}
