/* The verifier: a graph is well-formed when every node's inputs come before
 * it, every type is the one ir_infer gives, names of inputs, weights, caches
 * and outputs are unique per kind, each cache is appended to once, and there
 * is at least one output. The message names the first bad node. */
#include <string.h>

#include "olmoc/ir.h"

static int node_fail(const ir_graph *g, int id, oc_error *e) {
  return oc_wrap(e, "node %%%d (%s)", id, ir_op_table[g->nodes[id].op].name);
}

static int check_unique_name(const ir_graph *g, int id, oc_error *e) {
  const ir_node *n = &g->nodes[id];
  for (int j = 0; j < id; j++)
    if (g->nodes[j].op == n->op && strcmp(g->nodes[j].name, n->name) == 0)
      return oc_fail(e, "node %%%d (%s): name \"%s\" is already used by %%%d", id,
                     ir_op_table[n->op].name, n->name, j);
  return 0;
}

int ir_verify(const ir_graph *g, oc_error *e) {
  int outputs = 0;
  for (int id = 0; id < g->n; id++) {
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
    if ((ir_op_table[n->op].attrs & IR_A_NAME) && check_unique_name(g, id, e))
      return -1;
    if (n->op == IR_KV_APPEND)
      for (int j = 0; j < id; j++)
        if (g->nodes[j].op == IR_KV_APPEND && g->nodes[j].in[0] == n->in[0])
          return oc_fail(e, "node %%%d (kv_append): cache %%%d is already appended to by %%%d",
                         id, n->in[0], j);
    outputs += n->op == IR_OUTPUT;
  }
  if (outputs == 0)
    return oc_fail(e, "the graph has no output");
  return 0;
}
