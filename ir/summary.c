/* A graph at a glance: node counts per op, weights and their bytes, KV cache
 * bytes per cached position. What `olmoc ir --emit summary` prints, and what
 * passes will report before and after they run. */
#include <inttypes.h>
#include <stdio.h>

#include "olmoc/ir.h"
#include "olmoc/ir_text.h"

int ir_print_summary(const ir_graph *g, FILE *out) {
  int count[IR_OP_COUNT] = {0}, layers = 0;
  int64_t params = 0, weight_bytes = 0, cache_row_bytes = 0;
  for (int i = 0; i < g->n; i++) {
    const ir_node *n = &g->nodes[i];
    count[n->op]++;
    if (n->layer + 1 > layers)
      layers = n->layer + 1;
    if (n->op == IR_WEIGHT) {
      int64_t numel = ir_shape_numel(&n->type.shape, 0, 0);
      params += numel;
      weight_bytes += numel * (int64_t)ir_dtype_size(n->type.dtype);
    } else if (n->op == IR_KV_CACHE) {
      /* [P, ...]: one row per cached position */
      cache_row_bytes += ir_shape_numel(&n->type.shape, 0, 1) * (int64_t)ir_dtype_size(n->type.dtype);
    }
  }
  fprintf(out, "nodes            %d in %d layers\n", g->n, layers);
  fprintf(out, "parameters       %" PRId64 " (%.2f B) in %d weights, %.2f GiB\n", params,
          (double)params / 1e9, count[IR_WEIGHT], (double)weight_bytes / (1u << 30));
  fprintf(out, "kv cache         %" PRId64 " bytes per position in %d caches\n", cache_row_bytes,
          count[IR_KV_CACHE]);
  fprintf(out, "ops             ");
  for (int op = 0; op < IR_OP_COUNT; op++)
    if (count[op])
      fprintf(out, " %s:%d", ir_op_table[op].name, count[op]);
  return fprintf(out, "\n") < 0 ? -1 : 0;
}
