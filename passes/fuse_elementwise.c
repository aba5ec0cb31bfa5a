/* fuse-elementwise: a primitive elementwise op (or an elementwise node) whose
 * operands are elementwise ops read by it alone absorbs them: the result is
 * one `elementwise` node whose expr computes the whole chain, step by step in
 * f32 as the chain did, over at most IR_MAX_INPUTS distinct inputs. Nodes are
 * visited in order, so a producer has already absorbed its own chain. */
#include <stdio.h>
#include <string.h>

#include "rewrite.h"

typedef struct expr {
  ir_expr_tok tok[IR_EXPR_MAX];
  int n;
  int leaf[IR_MAX_INPUTS]; /* node ids the tokens' inputs refer to */
  int n_leaf;
} expr;

static bool fusable(const rw *r, int id) {
  unsigned f = ir_op_table[r->g->nodes[id].op].flags;
  return !r->dead[id] && (f & IR_ELEMENTWISE) && (!(f & IR_FUSED) || r->g->nodes[id].op == IR_ELTWISE);
}

/* Node id as an expr over its own inputs. */
static void expr_of(const ir_graph *g, int id, expr *x) {
  const ir_node *n = &g->nodes[id];
  *x = (expr){.n_leaf = ir_arity(n)};
  memcpy(x->leaf, n->in, sizeof x->leaf);
  if (n->op == IR_ELTWISE) {
    x->n = ir_expr_parse(n->name, n->n_in, x->tok, NULL); /* verified */
    return;
  }
  for (int i = 0; i < x->n_leaf; i++)
    x->tok[x->n++] = (ir_expr_tok){IR_INPUT, i};
  x->tok[x->n++] = (ir_expr_tok){n->op, 0};
}

/* Appends node `leaf` as an input read to out; false when out is full. */
static bool push_leaf(expr *out, int leaf) {
  int k = 0;
  while (k < out->n_leaf && out->leaf[k] != leaf)
    k++;
  if (k == out->n_leaf && (out->n_leaf == IR_MAX_INPUTS))
    return false;
  if (k == out->n_leaf)
    out->leaf[out->n_leaf++] = leaf;
  if (out->n == IR_EXPR_MAX)
    return false;
  out->tok[out->n++] = (ir_expr_tok){IR_INPUT, k};
  return true;
}

/* Appends x's tokens to out, its inputs mapped to out's; false when full. */
static bool append(expr *out, const expr *x) {
  for (int t = 0; t < x->n; t++) {
    if (x->tok[t].op == IR_INPUT) {
      if (!push_leaf(out, x->leaf[x->tok[t].input]))
        return false;
    } else if (out->n == IR_EXPR_MAX)
      return false;
    else
      out->tok[out->n++] = x->tok[t];
  }
  return true;
}

/* Node id's expr with every operand read by it alone inlined where it fits;
 * returns how many were inlined. An operand is inlined only if the tokens of
 * id's own expr after it still fit, so the expr is never cut short. */
static int merge(const rw *r, int id, expr *out) {
  const ir_graph *g = r->g;
  expr self;
  expr_of(g, id, &self);
  *out = (expr){0};
  int inlined = 0;
  for (int t = 0; t < self.n; t++) {
    if (self.tok[t].op != IR_INPUT) {
      if (out->n == IR_EXPR_MAX)
        return 0;
      out->tok[out->n++] = self.tok[t];
      continue;
    }
    int src = self.leaf[self.tok[t].input];
    expr inner, trial = *out;
    if (fusable(r, src) && r->uses[src] == 1 && (expr_of(g, src, &inner), append(&trial, &inner)) &&
        trial.n + (self.n - t - 1) <= IR_EXPR_MAX) {
      *out = trial;
      inlined++;
    } else if (!push_leaf(out, src))
      return 0; /* earlier inlining took the last input slot: leave this node as it is */
  }
  return inlined;
}

static void expr_string(const expr *x, char *buf, size_t cap) {
  size_t len = 0;
  buf[0] = '\0';
  for (int t = 0; t < x->n && len < cap; t++) {
    const ir_expr_tok *k = &x->tok[t];
    if (k->op == IR_INPUT)
      len += (size_t)snprintf(buf + len, cap - len, "%s%%%d", t ? " " : "", k->input);
    else
      len += (size_t)snprintf(buf + len, cap - len, "%s%s", t ? " " : "", ir_op_table[k->op].name);
  }
}

int pass_fuse_elementwise(ir_graph *g, pass_env *env, oc_error *e) {
  rw r;
  if (rw_begin(&r, g, env, e))
    return -1;
  for (int id = 0; id < g->n; id++) {
    expr x;
    if (!fusable(&r, id) || merge(&r, id, &x) == 0)
      continue;
    char text[IR_EXPR_MAX * 12];
    expr_string(&x, text, sizeof text);
    ir_node fused = {.op = IR_ELTWISE, .n_in = x.n_leaf, .name = text};
    memcpy(fused.in, x.leaf, sizeof fused.in);
    env->changes += rw_try_replace(&r, id, &fused);
  }
  rw_finish(&r);
  return 0;
}
