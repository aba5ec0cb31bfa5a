/* The op table generated from IR_OPS, lookup by name, and the scalar
 * semantics of the elementwise primitives. */
#include <math.h>
#include <string.h>

#include "olmoc/ops.h"

const ir_op_info ir_op_table[IR_OP_COUNT] = {
#define X(id, name, arity, flags, attrs) {name, arity, flags, attrs},
    IR_OPS(X)
#undef X
};

int ir_op_lookup(const char *name) {
  for (int op = 0; op < IR_OP_COUNT; op++)
    if (strcmp(ir_op_table[op].name, name) == 0)
      return op;
  return -1;
}

double ir_op_apply(ir_op op, double x, double y) {
  switch (op) {
  case IR_ADD: return x + y;
  case IR_SUB: return x - y;
  case IR_MUL: return x * y;
  case IR_DIV: return x / y;
  case IR_NEG: return -x;
  case IR_EXP: return exp(x);
  case IR_SQRT: return sqrt(x);
  case IR_RSQRT: return 1.0 / sqrt(x);
  case IR_SIGMOID: return 1.0 / (1.0 + exp(-x));
  default: return NAN;
  }
}
