/* The layout of each KV cache, chosen once per cache before lowering
 * (kv_layout.c): head-major [KV][ctx][D] where only the fused attention reads
 * it, else the IR's [ctx][KV][D]. --kv-cache bf16 needs every cache
 * head-major. Invariant: an attention's k and v caches share one layout. */
#ifndef OLMOC_CG_KV_LAYOUT_H
#define OLMOC_CG_KV_LAYOUT_H

#include <stdbool.h>

#include "olmoc/error.h"
#include "olmoc/ir.h"

/* The kv_cache node that kv_append node id appends to, or -1 if id is not one. */
int cg_kv_cache_of(const ir_graph *g, int id);
/* head_major[id] (of g->n) for every node: whether it is a cache laid out head-major. */
int cg_kv_layouts(const ir_graph *g, bool *head_major, oc_error *e);

#endif
