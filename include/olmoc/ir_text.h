/* The IR's text form, and DOT export for viewing a graph.
 *
 *   # comment
 *   %0 = input "tokens" : i32[T]
 *   %1 = weight "model.embed_tokens.weight" : f32[100352,2048]
 *   %2 = gather %1, %0 : f32[T,2048]
 *   %3 = slice %2 {axis=1, start=0, end=64, layer=0} : f32[T,64]
 *   %4 = transpose %3 {perm=[1,0], layer=0} : f32[64,T]
 *   %eps = const {value=1e-06} : f32[]
 *
 * One node a line: `%name = op ["name"] [%a[, %b ...]] [{key=value, ...}] : type`
 * (up to IR_MAX_INPUTS inputs; `elementwise` takes 1 to 4).
 * - %name: letters, digits, '_' and '.'; defined once, used only after its
 *   definition. The printer numbers nodes by id; the parser takes any name.
 * - "name" only and always for ops that carry one (input, weight, kv_cache,
 *   output); escapes \" \\ \n \t \r \xHH (not \x00).
 * - Attributes: every one the op carries (ops.h) and no other: axis, start,
 *   end, times, perm (one entry per axis of the input), value, expr (a quoted
 *   postfix expression: expr="%0 %1 mul %2 add"), dim, theta;
 *   `layer=N` optional on any op. The printer writes them in that order; the
 *   parser takes any order. Doubles: decimal, inf, nan, optionally signed;
 *   printed in the shortest %.15g/%.16g/%.17g form that reads back exactly.
 * - Types: dtype[dims], f32[] for a scalar; a dim is a sum of N, T, P, N*T,
 *   N*P ("P+T", "2*T+1", "-T+8"). Limits that keep the verifier's arithmetic
 *   exact: constants within +-2^40, T and P coefficients within +-2^14, at
 *   most 2^62 elements, times in 1..2^16; integer attributes fit their field.
 * - Whitespace (not newlines) between tokens; `#` comments to end of line.
 * print(parse(print(g))) == print(g), byte for byte. */
#ifndef OLMOC_IR_TEXT_H
#define OLMOC_IR_TEXT_H

#include <stdio.h>

#include "olmoc/ir.h"

/* Writes the text form of g. Returns 0, or -1 if the stream failed. */
int ir_print(const ir_graph *g, FILE *out);
/* The text form in a malloc'ed string. */
char *ir_print_string(const ir_graph *g);

/* Parses text (from `source`, a file name used in messages: "file:line:col:
 * problem"). Nodes get exactly the declared types (nothing is inferred), so
 * the result is not verified; call ir_verify. *out is set only on success. */
int ir_parse(const char *text, const char *source, ir_graph **out, oc_error *e);
/* The same for a file: a regular file of at most IR_TEXT_MAX_BYTES. */
#define IR_TEXT_MAX_BYTES ((size_t)1 << 30)
int ir_parse_file(const char *path, ir_graph **out, oc_error *e);

/* Graphviz DOT of the whole graph (layer < 0) or of one layer's nodes and the
 * values flowing into them (dashed "external" boxes). Fails when no node has
 * that layer. */
int ir_print_dot(const ir_graph *g, int layer, FILE *out, oc_error *e);

/* Node counts per op, parameters and bytes of the weights, KV cache bytes per
 * position: a graph at a glance. */
int ir_print_summary(const ir_graph *g, FILE *out);

#endif
