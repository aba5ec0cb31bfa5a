/* The IR's text form, written: one node per line, numbered by id, with the
 * attributes its op carries (ir_op_table) in one fixed order, then layer.
 * Invariant: ir_parse reads whatever this prints back to a graph that prints
 * the same bytes: names are escaped, doubles are written in the shortest
 * %.15g/%.16g/%.17g form that strtod reads back to the same double. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "olmoc/ir_text.h"

/* inf, -inf, nan and -nan by name (NaN payloads are not kept). */
static void put_double(FILE *out, double v) {
  if (isnan(v)) {
    fputs(signbit(v) ? "-nan" : "nan", out);
    return;
  }
  if (isinf(v)) {
    fputs(v < 0 ? "-inf" : "inf", out);
    return;
  }
  char buf[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v)
      break;
  }
  fputs(buf, out);
}

/* "name" with \" \\ \n \t \r and \xHH for other control bytes. */
static void put_name(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
    switch (*c) {
    case '"': fputs("\\\"", out); break;
    case '\\': fputs("\\\\", out); break;
    case '\n': fputs("\\n", out); break;
    case '\t': fputs("\\t", out); break;
    case '\r': fputs("\\r", out); break;
    default:
      if (*c < 0x20 || *c == 0x7f)
        fprintf(out, "\\x%02x", *c);
      else
        fputc(*c, out);
    }
  }
  fputc('"', out);
}

/* Writes " {" before the first attribute and ", " before the others. */
static void key(FILE *out, bool *first, const char *name) {
  fprintf(out, "%s%s=", *first ? " {" : ", ", name);
  *first = false;
}

/* The rank perm has entries for: its input's, or its own if the input is bad. */
static int perm_rank(const ir_graph *g, int id) {
  const ir_node *n = &g->nodes[id];
  int in = n->in[0];
  int rank = in >= 0 && in < id ? g->nodes[in].type.shape.rank : n->type.shape.rank;
  return rank < 0 ? 0 : rank > IR_MAX_DIMS ? IR_MAX_DIMS : rank;
}

static void put_attrs(const ir_graph *g, int id, FILE *out) {
  const ir_node *n = &g->nodes[id];
  unsigned a = ir_op_table[n->op].attrs;
  bool first = true;
  if (a & IR_A_AXIS) {
    key(out, &first, "axis");
    fprintf(out, "%d", n->axis);
  }
  if (a & IR_A_RANGE) {
    key(out, &first, "start");
    fprintf(out, "%lld", (long long)n->start);
    key(out, &first, "end");
    fprintf(out, "%lld", (long long)n->end);
  }
  if (a & IR_A_TIMES) {
    key(out, &first, "times");
    fprintf(out, "%d", n->times);
  }
  if (a & IR_A_PERM) {
    key(out, &first, "perm");
    int rank = perm_rank(g, id);
    fputc('[', out);
    for (int i = 0; i < rank; i++)
      fprintf(out, "%s%d", i ? "," : "", n->perm[i]);
    fputc(']', out);
  }
  if (a & IR_A_VALUE) {
    key(out, &first, "value");
    put_double(out, n->value);
  }
  if (a & IR_A_EXPR) {
    key(out, &first, "expr");
    put_name(out, n->name);
  }
  if (a & IR_A_ROPE) {
    key(out, &first, "dim");
    fprintf(out, "%d", n->dim);
    key(out, &first, "theta");
    put_double(out, n->theta);
  }
  if (n->layer >= 0) {
    key(out, &first, "layer");
    fprintf(out, "%d", n->layer);
  }
  if (!first)
    fputc('}', out);
}

static void put_node(const ir_graph *g, int id, FILE *out) {
  const ir_node *n = &g->nodes[id];
  if ((unsigned)n->op >= IR_OP_COUNT || (unsigned)n->type.dtype >= IR_DTYPE_COUNT) {
    fprintf(out, "%%%d = <bad node: op %d, dtype %d>\n", id, (int)n->op, (int)n->type.dtype);
    return;
  }
  const ir_op_info *info = &ir_op_table[n->op];
  fprintf(out, "%%%d = %s", id, info->name);
  if (info->attrs & IR_A_NAME) { /* (an expr is an attribute) */
    fputc(' ', out);
    put_name(out, n->name);
  }
  for (int i = 0; i < ir_arity(n); i++)
    fprintf(out, "%s%%%d", i ? ", " : " ", n->in[i]);
  put_attrs(g, id, out);
  char type[512];
  fprintf(out, " : %s\n", ir_type_str(&n->type, type, sizeof type));
}

int ir_print(const ir_graph *g, FILE *out) {
  for (int id = 0; id < g->n; id++)
    put_node(g, id, out);
  return ferror(out) ? -1 : 0;
}

char *ir_print_string(const ir_graph *g) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  if (!out)
    return NULL;
  int rc = ir_print(g, out);
  if (fclose(out) != 0 || rc != 0) {
    free(text);
    return NULL;
  }
  return text;
}
