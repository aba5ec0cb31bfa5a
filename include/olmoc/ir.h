/* The IR: tensor types with symbolic dims, and the graph of SSA nodes in
 * topological order (a node's inputs always have smaller ids). A graph is one
 * forward call: T new tokens at offset P. Built once, run for any T and P.
 * The builder records the first error it meets (sticky, like SQLite's) so a
 * frontend can build a whole graph and check once at the end. */
#ifndef OLMOC_IR_H
#define OLMOC_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "olmoc/dtype.h"
#include "olmoc/error.h"
#include "olmoc/ops.h"

/* A dimension is linear in the call's symbols: c + t*T + p*P. */
typedef struct ir_dim {
  int64_t c;
  int32_t t, p;
} ir_dim;

#define IR_MAX_INPUTS 4

typedef struct ir_shape {
  int rank;
  ir_dim dim[IR_MAX_DIMS];
} ir_shape;

typedef struct ir_type {
  ir_dtype dtype;
  ir_shape shape;
} ir_type;

ir_dim ir_const_dim(int64_t c);
#define IR_DIM_T ((ir_dim){0, 1, 0})
#define IR_DIM_P ((ir_dim){0, 0, 1})
bool ir_dim_eq(ir_dim a, ir_dim b);
bool ir_dim_is_const(ir_dim d);
int64_t ir_dim_eval(ir_dim d, int64_t T, int64_t P);
/* Writes "T", "P+T", "64", "2*T+1" into buf; returns buf. */
char *ir_dim_str(ir_dim d, char *buf, size_t n);
bool ir_shape_eq(const ir_shape *a, const ir_shape *b);
bool ir_type_eq(const ir_type *a, const ir_type *b);
/* Writes "f32[T,2048]" into buf; returns buf. */
char *ir_type_str(const ir_type *t, char *buf, size_t n);
ir_shape ir_shape_of(int rank, const ir_dim *dims);
/* Element count for concrete T and P. */
int64_t ir_shape_numel(const ir_shape *s, int64_t T, int64_t P);

typedef struct ir_node {
  ir_op op;
  int in[IR_MAX_INPUTS]; /* input node ids, all < this node's id */
  int n_in;              /* how many inputs a variadic op (arity -1) has */
  ir_type type;          /* inferred by the builder, checked by the verifier */
  int layer;             /* transformer layer the node belongs to, -1 if none */
  /* attributes; which ones an op uses is ir_op_table[op].attrs */
  char *name;            /* the name, or an elementwise node's expr */
  double value;
  int axis;
  int64_t start, end;
  int times;
  int perm[IR_MAX_DIMS];
  int dim;
  double theta;
} ir_node;

/* How many inputs node n reads: its op's arity, or n_in for a variadic op. */
static inline int ir_arity(const ir_node *n) {
  int a = (unsigned)n->op < IR_OP_COUNT ? ir_op_table[n->op].arity : 0;
  return a >= 0 ? a : n->n_in;
}

typedef struct ir_graph {
  ir_node *nodes; /* [n], topological order */
  int n, cap;
  int layer;      /* layer stamped on nodes as they are added */
  oc_error error; /* first builder error */
  bool failed;
} ir_graph;

ir_graph *ir_graph_new(void);
void ir_graph_free(ir_graph *g);
/* The builder's sticky error: 0 if every add so far was well-typed. */
int ir_graph_status(const ir_graph *g, oc_error *e);

/* Appends a copy of `proto` (name duplicated), infers its type unless the op
 * takes its type from the caller (leaves, reshape), and returns its id; on a
 * type error records it in the graph and returns the id anyway (typed as
 * proto->type) so building can go on to the check at the end. */
int ir_add(ir_graph *g, const ir_node *proto);

/* Appends a copy of `node` verbatim: name duplicated, type, layer and
 * attributes as given, nothing inferred or recorded. Returns its id, or -1
 * when out of memory. The parser uses it so that ir_verify judges the
 * declared types; ir_add is this plus the graph's layer and inference. */
int ir_append(ir_graph *g, const ir_node *node);

/* Builder conveniences over ir_add. */
int ir_input(ir_graph *g, const char *name, ir_type type);
int ir_weight(ir_graph *g, const char *name, ir_type type);
int ir_kv_cache(ir_graph *g, const char *name, ir_type type);
int ir_const(ir_graph *g, double value);
int ir_positions(ir_graph *g);
int ir_unary(ir_graph *g, ir_op op, int a);          /* also reductions, softmax, causal_mask */
int ir_binary(ir_graph *g, ir_op op, int a, int b);  /* also gather, matmul, kv_append */
int ir_slice(ir_graph *g, int a, int axis, int64_t start, int64_t end);
int ir_concat(ir_graph *g, int a, int b, int axis);
int ir_reshape(ir_graph *g, int a, ir_shape shape);
int ir_transpose(ir_graph *g, int a, const int *perm);
int ir_repeat(ir_graph *g, int a, int axis, int times);
int ir_rope_table(ir_graph *g, ir_op op, int positions, int dim, double theta);
int ir_output(ir_graph *g, const char *name, int a);

/* Infers the type node `id` must have from its inputs and attributes. */
int ir_infer(const ir_graph *g, int id, ir_type *out, oc_error *e);

/* Checks the whole graph: input ids, arity, attributes, names, types (inferred
 * equals declared), at least one output. The message names the node. */
int ir_verify(const ir_graph *g, oc_error *e);

/* An elementwise node's expr, parsed: postfix tokens, each an input (op
 * IR_INPUT, index `input`) or a primitive elementwise op over the stack. */
#define IR_EXPR_MAX 64
typedef struct ir_expr_tok {
  ir_op op;
  int input;
} ir_expr_tok;

/* Parses expr ("%0 %1 mul %2 add") over n_in inputs into tok[IR_EXPR_MAX]:
 * returns the token count, or -1 when it is not one well-formed expression
 * that uses every input. */
int ir_expr_parse(const char *expr, int n_in, ir_expr_tok *tok, oc_error *e);

/* Node ids of the op, in order; returns how many (at most max). */
int ir_find(const ir_graph *g, ir_op op, int *ids, int max);

#endif
