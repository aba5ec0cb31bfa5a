/* Graphviz DOT of a graph, or of one layer: its nodes, plus each node outside
 * the layer that feeds them drawn once as a dashed "external" box. Labels are
 * "%id op", the name (weights' shortened) and the type; weights are small grey
 * boxes, inputs and caches houses, outputs doubled. Invariant: every edge
 * drawn joins two nodes that are drawn. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "olmoc/alloc.h"
#include "olmoc/ir_text.h"

/* Inside a DOT "string": \ and " escaped, control bytes as '?'. */
static void put_escaped(FILE *out, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', out);
    fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
  }
}

/* "model.layers.3.self_attn.q_proj.weight" -> "self_attn.q_proj",
 * "model.embed_tokens.weight" -> "embed_tokens": the layer is in the view. */
static const char *short_name(const char *name, char *buf, size_t n) {
  const char *s = name;
  if (!strncmp(s, "model.", 6))
    s += 6;
  if (!strncmp(s, "layers.", 7)) {
    const char *d = s + 7;
    while (*d >= '0' && *d <= '9')
      d++;
    if (d > s + 7 && *d == '.' && d[1])
      s = d + 1;
  }
  size_t len = strlen(s);
  if (len > 7 && !strcmp(s + len - 7, ".weight"))
    len -= 7;
  snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), s);
  return buf;
}

static void put_node(FILE *out, const ir_graph *g, int id, bool external) {
  const ir_node *n = &g->nodes[id];
  bool known = (unsigned)n->op < IR_OP_COUNT;
  fprintf(out, "  n%d [label=\"%%%d %s", id, id, known ? ir_op_table[n->op].name : "?");
  if (n->name) {
    char buf[256];
    fputs("\\n", out);
    put_escaped(out, n->op == IR_WEIGHT ? short_name(n->name, buf, sizeof buf) : n->name);
  }
  if ((unsigned)n->type.dtype < IR_DTYPE_COUNT) {
    char type[512];
    fprintf(out, "\\n%s", ir_type_str(&n->type, type, sizeof type));
  }
  if (external)
    fputs("\\n(external)", out);
  bool weight = n->op == IR_WEIGHT, output = n->op == IR_OUTPUT;
  bool leaf = n->op == IR_INPUT || n->op == IR_KV_CACHE || n->op == IR_POSITIONS;
  fprintf(out, "\", style=\"%s%s%s\"", weight ? "filled," : "",
          weight || output || leaf ? "" : "rounded,", external ? "dashed" : "solid");
  if (weight)
    fputs(", fontsize=8, height=0.3, fillcolor=\"#e8e8e8\"", out);
  if (leaf)
    fputs(", shape=house", out);
  if (output)
    fputs(", peripheries=2", out);
  fputs("];\n", out);
}

static int arity(const ir_node *n) {
  int a = ir_arity(n);
  return a < 0 ? 0 : a > IR_MAX_INPUTS ? IR_MAX_INPUTS : a;
}

/* 1 + the highest layer any node has (0 when none has one); a layer may be
 * INT_MAX. */
static long long layer_count(const ir_graph *g) {
  long long count = 0;
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].layer >= count)
      count = g->nodes[i].layer + 1LL;
  return count;
}

int ir_print_dot(const ir_graph *g, int layer, FILE *out, oc_error *e) {
  /* view[i]: IN when node i is in the view, EXTERNAL when it only feeds it */
  enum { OUT, IN, EXTERNAL };
  unsigned char *view = oc_calloc((size_t)g->n + 1, 1);
  bool any = false;
  if (!view)
    return oc_fail(e, "out of memory drawing the graph");
  for (int j = 0; j < g->n; j++)
    if (layer < 0 || g->nodes[j].layer == layer) {
      view[j] = IN;
      any = true;
      for (int k = 0; k < arity(&g->nodes[j]); k++) {
        int in = g->nodes[j].in[k];
        if (in >= 0 && in < j && view[in] == OUT)
          view[in] = EXTERNAL;
      }
    }
  if (layer >= 0 && !any) {
    long long count = layer_count(g);
    free(view);
    if (count == 0)
      return oc_fail(e, "the graph has no layer %d (it has no layers)", layer);
    return oc_fail(e, "the graph has no layer %d (layers 0..%lld)", layer, count - 1);
  }
  fputs("digraph olmoc {\n", out);
  if (layer >= 0)
    fprintf(out, "  label=\"layer %d\";\n  labelloc=t;\n", layer);
  fputs("  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n", out);
  for (int i = 0; i < g->n; i++)
    if (view[i] != OUT)
      put_node(out, g, i, view[i] == EXTERNAL);
  for (int j = 0; j < g->n; j++)
    for (int k = 0; view[j] == IN && k < arity(&g->nodes[j]); k++) {
      int in = g->nodes[j].in[k];
      if (in >= 0 && in < j)
        fprintf(out, "  n%d -> n%d;\n", in, j);
    }
  fputs("}\n", out);
  free(view);
  if (ferror(out))
    return oc_fail(e, "writing the DOT graph failed");
  return 0;
}
