/* The kernel ops and what the backend knows of each, one row an op, as
 * ir/ops.h is for the IR: the emitter that builds its kernel, how the key is
 * checked and named, which of the key's fields name a kernel (the rest are
 * zeroed, so equal kernels have equal keys), whether its kernels are shaped,
 * how the executor calls them, and how lower.c builds the key from a node.
 * Invariant: an op without a row has no kernel, and whoever meets one says so. */
#ifndef OLMOC_CG_KERNELS_H
#define OLMOC_CG_KERNELS_H

#include "emit/emit.h"
#include "session.h"

/* The key's fields a row keeps. */
enum {
  CG_KEEP_WTYPE = 1 << 0,
  CG_KEEP_K = 1 << 1,
  CG_KEEP_N = 1 << 2,
  CG_KEEP_KV = 1 << 3,     /* kv, kv_head_major, kv_bf16 */
  CG_KEEP_EPS = 1 << 4,
  CG_KEEP_SCALE = 1 << 5,
  CG_KEEP_SHAPES = 1 << 6, /* n_in, in[0..n_in), out */
  CG_KEEP_EXPR = 1 << 7,
  CG_KEEP_AXIS = 1 << 8,
  CG_KEEP_START = 1 << 9,
  CG_KEEP_TIMES = 1 << 10,
  CG_KEEP_PERM = 1 << 11,
};

typedef enum cg_form {
  CG_PLAIN,              /* its own signature (olmoc/codegen.h) */
  CG_SHAPED,             /* k(arg, T, P, row0, row1) */
  CG_SHAPED_IF_SYMBOLIC, /* shaped when a dim of the output past the first is symbolic */
} cg_form;

/* How lower.c builds a key and a step from a node (its table of builders). */
typedef enum cg_lowering {
  CG_LOWER_MATMUL,  /* x . packed weights, q8 rows when quantized */
  CG_LOWER_RMSNORM,
  CG_LOWER_SWIGLU,
  CG_LOWER_HEADS,   /* rope, attention: [T,H,D] */
  CG_LOWER_GATHER,
  CG_LOWER_ROWS,    /* over the rows of the output, the key from the shapes */
  CG_LOWER_NONE,    /* no IR node lowers to it (q8_quantize: lower.c adds it) */
  CG_LOWER_COUNT
} cg_lowering;

typedef struct cg_kernel_op {
  int op;                  /* an ir_op, or CG_OP_Q8_QUANTIZE */
  bool by_activation;      /* IR_MATMUL only: the row for n_in 2 (both operands activations) */
  const char *name;        /* in messages and symbols */
  cg_emit_fn *emit;
  int (*check)(const cg_kernel_key *k, oc_error *e); /* the fields it keeps, before they are kept */
  void (*symbol)(const cg_jit *j, const cg_kernel_key *k, const char *name, char *buf, size_t n);
  unsigned keep;           /* CG_KEEP_* */
  cg_form form;
  rt_call call;            /* how the executor calls a plain kernel */
  cg_lowering lower;
} cg_kernel_op;

/* The row of key's op, or NULL when the op has no kernel. */
const cg_kernel_op *cg_kernel_op_of(const cg_kernel_key *key);
/* "matmul, matmul_add, ...": every IR op with a kernel, for messages, into buf. */
void cg_kernel_op_names(char *buf, size_t n);
/* How the executor calls key's kernel (RT_CALL_SHAPED when cg_kernel_shaped). */
rt_call cg_kernel_call(const cg_kernel_key *key);
/* What key's kernel may touch (kernel_contracts.c), for a key the table has. */
int cg_kernel_contract(const cg_jit *j, const cg_kernel_key *key, rt_kernel_contract *c, oc_error *e);

#endif
