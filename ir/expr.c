/* The postfix expressions an `elementwise` node carries: "%0 %1 mul %2 add".
 * Invariant: a parsed expression leaves exactly one value on its stack, never
 * pops an empty one, and reads every input at least once, so the type rule,
 * the interpreter and the backends may evaluate it without checks. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "olmoc/ir.h"

int ir_expr_parse(const char *expr, int n_in, ir_expr_tok *tok, oc_error *e) {
  if (!expr)
    return oc_fail(e, "needs an expr");
  bool used[IR_MAX_INPUTS] = {false};
  int n = 0, depth = 0;
  for (const char *p = expr + strspn(expr, " "); *p; p += strspn(p, " ")) {
    size_t len = strcspn(p, " ");
    char word[32];
    if (n == IR_EXPR_MAX)
      return oc_fail(e, "expr \"%s\" has more than %d tokens", expr, IR_EXPR_MAX);
    if (len >= sizeof word)
      return oc_fail(e, "expr \"%s\": '%.*s' is no input or op", expr, (int)len, p);
    memcpy(word, p, len);
    word[len] = '\0';
    p += len;
    if (word[0] == '%') {
      char *end;
      long i = strtol(word + 1, &end, 10);
      if (end == word + 1 || *end || i < 0 || i >= n_in)
        return oc_fail(e, "expr \"%s\": '%s' is not one of its %d inputs %%0..%%%d", expr, word,
                       n_in, n_in - 1);
      used[i] = true;
      tok[n++] = (ir_expr_tok){IR_INPUT, (int)i};
      depth++;
      continue;
    }
    int op = ir_op_lookup(word);
    if (op < 0 || !(ir_op_table[op].flags & IR_ELEMENTWISE) || (ir_op_table[op].flags & IR_FUSED))
      return oc_fail(e, "expr \"%s\": '%s' is not a primitive elementwise op", expr, word);
    int arity = ir_op_table[op].arity;
    if (depth < arity)
      return oc_fail(e, "expr \"%s\": '%s' needs %d operands on the stack", expr, word, arity);
    depth += 1 - arity;
    tok[n++] = (ir_expr_tok){(ir_op)op, 0};
  }
  if (depth != 1)
    return oc_fail(e, "expr \"%s\" leaves %d values, not one", expr, depth);
  for (int i = 0; i < n_in; i++)
    if (!used[i])
      return oc_fail(e, "expr \"%s\" never reads input %%%d", expr, i);
  return n;
}
