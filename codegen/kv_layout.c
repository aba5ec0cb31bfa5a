/* Which KV caches the lowering lays out head-major, [KV][ctx][D], so that a
 * head's keys are one contiguous stream for the fused attention (and may be
 * kept in bf16). Decided once per cache from the whole graph, before any
 * step is lowered. Invariant: a cache is head-major only when nothing but
 * attentions read it (through kv_append), and then so is its partner. */
#include <stdlib.h>

#include "kv_layout.h"
#include "olmoc/alloc.h"

int cg_kv_cache_of(const ir_graph *g, int id) {
  const ir_node *n = &g->nodes[id];
  return n->op == IR_KV_APPEND && g->nodes[n->in[0]].op == IR_KV_CACHE ? n->in[0] : -1;
}

/* Clears head_major[c] (c >= 0), saying whether it was set. */
static bool clear(bool *head_major, int c) {
  bool was = c >= 0 && head_major[c];
  if (was)
    head_major[c] = false;
  return was;
}

/* The [ctx,KV,D] caches that some attention reads (as its k or v, through
 * kv_append) and nothing else does, where every attention reading one reads
 * two such caches, since its kernel reads k and v in one layout. */
int cg_kv_layouts(const ir_graph *g, bool *head_major, oc_error *e) {
  bool *read = oc_calloc((size_t)g->n, sizeof *read); /* by an attention */
  if (!read)
    return oc_fail(e, "out of memory lowering the graph");
  for (int id = 0; id < g->n; id++)
    head_major[id] = g->nodes[id].op == IR_KV_CACHE && g->nodes[id].type.shape.rank == 3;
  for (int u = 0; u < g->n; u++) {
    const ir_node *n = &g->nodes[u];
    for (int i = 0; i < ir_arity(n); i++) {
      int in = n->in[i], cache = cg_kv_cache_of(g, in);
      if (g->nodes[in].op == IR_KV_CACHE && !(n->op == IR_KV_APPEND && i == 0))
        head_major[in] = false;
      else if (cache >= 0 && n->op == IR_ATTENTION && i > 0)
        read[cache] = true;
      else if (cache >= 0)
        head_major[cache] = false;
    }
  }
  for (int id = 0; id < g->n; id++)
    head_major[id] &= read[id];
  free(read);
  for (bool changed = true; changed;) {
    changed = false;
    for (int u = 0; u < g->n; u++) {
      const ir_node *n = &g->nodes[u];
      if (n->op != IR_ATTENTION)
        continue;
      int k = cg_kv_cache_of(g, n->in[1]), v = cg_kv_cache_of(g, n->in[2]);
      if (k < 0 || v < 0 || !head_major[k] || !head_major[v])
        changed |= clear(head_major, k) | clear(head_major, v);
    }
  }
  return 0;
}

