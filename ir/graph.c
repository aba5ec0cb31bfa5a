/* The graph and its builder. Nodes are appended in topological order; each new
 * node is typed by ir_infer (ir_append adds one verbatim, for the parser). The
 * first type error is kept in the graph (later ones are usually consequences)
 * and reported by ir_graph_status. */
#include <stdlib.h>
#include <string.h>

#include "olmoc/alloc.h"
#include "olmoc/ir.h"

ir_graph *ir_graph_new(void) {
  ir_graph *g = oc_calloc(1, sizeof *g);
  if (g)
    g->layer = -1;
  return g;
}

void ir_graph_free(ir_graph *g) {
  if (!g)
    return;
  for (int i = 0; i < g->n; i++)
    free(g->nodes[i].name);
  free(g->nodes);
  free(g);
}

int ir_graph_status(const ir_graph *g, oc_error *e) {
  if (!g->failed)
    return 0;
  if (e)
    *e = g->error;
  return -1;
}

static void record(ir_graph *g, const oc_error *e) {
  if (!g->failed) {
    g->failed = true;
    g->error = *e;
  }
}

int ir_append(ir_graph *g, const ir_node *node) {
  if (g->n == g->cap) {
    int cap = g->cap ? 2 * g->cap : 64;
    ir_node *nodes = oc_realloc(g->nodes, (size_t)cap * sizeof *nodes);
    if (!nodes)
      return -1;
    g->nodes = nodes;
    g->cap = cap;
  }
  char *name = node->name ? oc_strdup(node->name) : NULL;
  if (node->name && !name)
    return -1;
  ir_node *n = &g->nodes[g->n];
  *n = *node;
  n->name = name;
  return g->n++;
}

int ir_add(ir_graph *g, const ir_node *proto) {
  ir_node node = *proto;
  node.layer = g->layer;
  int id = ir_append(g, &node);
  if (id < 0) {
    record(g, &(oc_error){"out of memory growing the graph"});
    return -1;
  }
  ir_node *n = &g->nodes[id];
  oc_error e;
  ir_type t;
  if (ir_infer(g, id, &t, &e) == 0)
    n->type = t;
  else {
    oc_wrap(&e, "node %%%d (%s)", id, ir_op_table[n->op].name);
    record(g, &e);
  }
  return id;
}

static int add_named(ir_graph *g, ir_op op, const char *name, ir_type type) {
  return ir_add(g, &(ir_node){.op = op, .name = (char *)name, .type = type});
}

int ir_input(ir_graph *g, const char *name, ir_type type) { return add_named(g, IR_INPUT, name, type); }
int ir_weight(ir_graph *g, const char *name, ir_type type) { return add_named(g, IR_WEIGHT, name, type); }
int ir_kv_cache(ir_graph *g, const char *name, ir_type type) { return add_named(g, IR_KV_CACHE, name, type); }
int ir_const(ir_graph *g, double value) { return ir_add(g, &(ir_node){.op = IR_CONST, .value = value}); }
int ir_positions(ir_graph *g) { return ir_add(g, &(ir_node){.op = IR_POSITIONS}); }

int ir_unary(ir_graph *g, ir_op op, int a) { return ir_add(g, &(ir_node){.op = op, .in = {a}}); }
int ir_binary(ir_graph *g, ir_op op, int a, int b) {
  return ir_add(g, &(ir_node){.op = op, .in = {a, b}});
}

int ir_slice(ir_graph *g, int a, int axis, int64_t start, int64_t end) {
  return ir_add(g, &(ir_node){.op = IR_SLICE, .in = {a}, .axis = axis, .start = start, .end = end});
}

int ir_concat(ir_graph *g, int a, int b, int axis) {
  return ir_add(g, &(ir_node){.op = IR_CONCAT, .in = {a, b}, .axis = axis});
}

int ir_reshape(ir_graph *g, int a, ir_shape shape) {
  ir_dtype dtype = a >= 0 && a < g->n ? g->nodes[a].type.dtype : IR_F32;
  return ir_add(g, &(ir_node){.op = IR_RESHAPE, .in = {a}, .type = {dtype, shape}});
}

int ir_transpose(ir_graph *g, int a, const int *perm) {
  ir_node n = {.op = IR_TRANSPOSE, .in = {a}};
  int rank = a >= 0 && a < g->n ? g->nodes[a].type.shape.rank : 0;
  memcpy(n.perm, perm, (size_t)rank * sizeof *perm);
  return ir_add(g, &n);
}

int ir_repeat(ir_graph *g, int a, int axis, int times) {
  return ir_add(g, &(ir_node){.op = IR_REPEAT, .in = {a}, .axis = axis, .times = times});
}

int ir_rope_table(ir_graph *g, ir_op op, int positions, int dim, double theta) {
  return ir_add(g, &(ir_node){.op = op, .in = {positions}, .dim = dim, .theta = theta});
}

int ir_output(ir_graph *g, const char *name, int a) {
  return ir_add(g, &(ir_node){.op = IR_OUTPUT, .in = {a}, .name = (char *)name});
}

int ir_find(const ir_graph *g, ir_op op, int *ids, int max) {
  int k = 0;
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].op == op) {
      if (k < max)
        ids[k] = i;
      k++;
    }
  return k < max ? k : max;
}
