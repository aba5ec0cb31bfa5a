/* The verifier: a graph is well-formed when every node's inputs come before
 * it, every type is the one ir_infer gives, names of inputs, weights, caches
 * and outputs are unique per kind, each cache is appended to once, and there
 * is at least one output. The message names the first bad node. Names and
 * appends are matched through a sorted table and a per-cache mark, so a graph
 * of any size verifies in O(n log n). */
#include <stdlib.h>
#include <string.h>

#include "olmoc/alloc.h"
#include "olmoc/ir.h"

typedef struct named {
  int op;
  const char *name;
  int id;
} named;

static int by_op_name_id(const void *pa, const void *pb) {
  const named *a = pa, *b = pb;
  if (a->op != b->op)
    return a->op < b->op ? -1 : 1;
  int c = strcmp(a->name, b->name);
  return c ? c : (a->id > b->id) - (a->id < b->id);
}

/* first[id]: the earliest node with the same op and name as node id when
 * that is another node, else -1. Nodes without a name are left at -1. */
static int find_duplicates(const ir_graph *g, int *first, oc_error *e) {
  named *t = oc_malloc(((size_t)g->n + 1) * sizeof *t);
  if (!t)
    return oc_fail(e, "out of memory verifying a graph of %d nodes", g->n);
  int k = 0;
  for (int id = 0; id < g->n; id++) {
    const ir_node *n = &g->nodes[id];
    first[id] = -1;
    if ((unsigned)n->op < IR_OP_COUNT && (ir_op_table[n->op].attrs & IR_A_NAME) && n->name)
      t[k++] = (named){n->op, n->name, id};
  }
  qsort(t, (size_t)k, sizeof *t, by_op_name_id);
  for (int i = 1; i < k; i++)
    if (t[i].op == t[i - 1].op && strcmp(t[i].name, t[i - 1].name) == 0)
      first[t[i].id] = first[t[i - 1].id] >= 0 ? first[t[i - 1].id] : t[i - 1].id;
  free(t);
  return 0;
}

static int node_fail(const ir_graph *g, int id, oc_error *e) {
  return oc_wrap(e, "node %%%d (%s)", id, ir_op_table[g->nodes[id].op].name);
}

static int check_node(const ir_graph *g, int id, const int *same_name, int *appended_by,
                      oc_error *e) {
  const ir_node *n = &g->nodes[id];
  if ((unsigned)n->op >= IR_OP_COUNT)
    return oc_fail(e, "node %%%d: unknown op %d", id, (int)n->op);
  ir_type t;
  if (ir_infer(g, id, &t, e))
    return node_fail(g, id, e);
  if (!ir_type_eq(&t, &n->type)) {
    char want[128], got[128];
    return oc_fail(e, "node %%%d (%s): declared type %s but its inputs give %s", id,
                   ir_op_table[n->op].name, ir_type_str(&n->type, got, sizeof got),
                   ir_type_str(&t, want, sizeof want));
  }
  if (same_name[id] >= 0)
    return oc_fail(e, "node %%%d (%s): name \"%s\" is already used by %%%d", id,
                   ir_op_table[n->op].name, n->name, same_name[id]);
  if (n->op == IR_KV_APPEND) { /* ir_infer checked that in[0] is an earlier kv_cache */
    if (appended_by[n->in[0]] >= 0)
      return oc_fail(e, "node %%%d (kv_append): cache %%%d is already appended to by %%%d", id,
                     n->in[0], appended_by[n->in[0]]);
    appended_by[n->in[0]] = id;
  }
  return 0;
}

int ir_verify(const ir_graph *g, oc_error *e) {
  int *same_name = oc_malloc(((size_t)g->n + 1) * sizeof *same_name);
  int *appended_by = oc_malloc(((size_t)g->n + 1) * sizeof *appended_by);
  int rc = 0, outputs = 0;
  if (!same_name || !appended_by)
    rc = oc_fail(e, "out of memory verifying a graph of %d nodes", g->n);
  else
    rc = find_duplicates(g, same_name, e);
  for (int id = 0; id < g->n && !rc; id++)
    appended_by[id] = -1;
  for (int id = 0; id < g->n && !rc; id++) {
    rc = check_node(g, id, same_name, appended_by, e);
    outputs += g->nodes[id].op == IR_OUTPUT;
  }
  free(same_name);
  free(appended_by);
  if (!rc && outputs == 0)
    return oc_fail(e, "the graph has no output");
  return rc;
}
