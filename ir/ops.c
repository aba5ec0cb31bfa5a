/* The op table generated from IR_OPS, and lookup by name. */
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
