/* Every IR op, declared once. X(ID, "name", arity, flags, attrs): the enum,
 * the text-form name, the number of inputs, what kind of op it is, and which
 * attributes it carries. The comment on each line is its semantics; shapes
 * broadcast numpy-style from the right. Tiers: the frontend emits only
 * primitives; fused ops are added here by the passes that create them. */
#ifndef OLMOC_OPS_H
#define OLMOC_OPS_H

/* flags */
#define IR_LEAF 1u        /* no inputs: value comes from outside or attributes */
#define IR_ELEMENTWISE 2u /* output element i depends only on input element i */
#define IR_EFFECT 4u      /* has an effect beyond its value: never dead */
#define IR_FUSED 8u       /* made only by passes (passes/), never by a frontend */

/* attributes an op carries (ir_node fields) */
#define IR_A_NAME 1u  /* name: input, weight, cache or output name */
#define IR_A_VALUE 2u /* value: a scalar constant */
#define IR_A_AXIS 4u  /* axis */
#define IR_A_RANGE 8u /* start, end: half-open range along axis */
#define IR_A_TIMES 16u /* times: repeat count */
#define IR_A_PERM 32u /* perm: output axis i is input axis perm[i] */
#define IR_A_ROPE 64u /* dim, theta: rotary table width and base */
#define IR_A_EXPR 128u /* expr: a postfix expression (stored in the node's name field) */

/* An arity of -1 marks a variadic op: 1..IR_MAX_INPUTS inputs, the node's n_in. */

#define IR_OPS(X)                                                              \
  /* leaves */                                                                 \
  X(INPUT, "input", 0, IR_LEAF, IR_A_NAME)       /* named value bound per call */ \
  X(WEIGHT, "weight", 0, IR_LEAF, IR_A_NAME)     /* named checkpoint tensor */    \
  X(CONST, "const", 0, IR_LEAF, IR_A_VALUE)      /* scalar f32[] constant */      \
  X(POSITIONS, "positions", 0, IR_LEAF, 0)       /* i32[T]: P, P+1, ..., P+T-1 */ \
  X(KV_CACHE, "kv_cache", 0, IR_LEAF, IR_A_NAME) /* [P,...]: rows cached so far */ \
  /* elementwise */                                                            \
  X(ADD, "add", 2, IR_ELEMENTWISE, 0)          /* a + b */                     \
  X(SUB, "sub", 2, IR_ELEMENTWISE, 0)          /* a - b */                     \
  X(MUL, "mul", 2, IR_ELEMENTWISE, 0)          /* a * b */                     \
  X(DIV, "div", 2, IR_ELEMENTWISE, 0)          /* a / b */                     \
  X(NEG, "neg", 1, IR_ELEMENTWISE, 0)          /* -a */                        \
  X(EXP, "exp", 1, IR_ELEMENTWISE, 0)          /* e^a */                       \
  X(SQRT, "sqrt", 1, IR_ELEMENTWISE, 0)        /* sqrt(a) */                   \
  X(RSQRT, "rsqrt", 1, IR_ELEMENTWISE, 0)      /* 1 / sqrt(a) */               \
  X(SIGMOID, "sigmoid", 1, IR_ELEMENTWISE, 0)  /* 1 / (1 + e^-a) */            \
  /* reductions over the last axis, which is kept with size 1 */               \
  X(REDUCE_SUM, "reduce_sum", 1, 0, 0)         /* sum over last axis */        \
  X(REDUCE_MEAN, "reduce_mean", 1, 0, 0)       /* mean over last axis */       \
  X(SOFTMAX, "softmax", 1, 0, 0)               /* softmax over last axis */    \
  /* data movement and products */                                            \
  X(GATHER, "gather", 2, 0, 0)     /* table[V,D], ids i32[...] -> [...,D] */   \
  X(MATMUL, "matmul", 2, 0, 0)     /* a[...,M,K] b[N,K] or b[...,N,K] -> [...,M,N]: a.b^T */ \
  X(SLICE, "slice", 1, 0, IR_A_AXIS | IR_A_RANGE) /* a[..., start:end, ...] */ \
  X(CONCAT, "concat", 2, 0, IR_A_AXIS)          /* a then b along axis */      \
  X(RESHAPE, "reshape", 1, 0, 0)   /* same elements, row-major, to the node's type */ \
  X(TRANSPOSE, "transpose", 1, 0, IR_A_PERM)    /* permute axes */             \
  X(REPEAT, "repeat", 1, 0, IR_A_AXIS | IR_A_TIMES) /* each index along axis repeated `times` times in a row (GQA) */ \
  /* model pieces */                                                           \
  X(ROPE_COS, "rope_cos", 1, 0, IR_A_ROPE) /* positions -> f32[T,dim]: cos(pos*theta^(-2(i mod dim/2)/dim)), frequency and angle rounded to f32 as HF does */ \
  X(ROPE_SIN, "rope_sin", 1, 0, IR_A_ROPE) /* positions -> f32[T,dim]: same with sin */ \
  X(CAUSAL_MASK, "causal_mask", 1, 0, 0) /* a[...,T,P+T]: -inf where key j > P + query i */ \
  X(KV_APPEND, "kv_append", 2, IR_EFFECT, 0) /* cache[P,...], new[T,...] -> [P+T,...]; stores new at P */ \
  X(OUTPUT, "output", 1, IR_EFFECT, IR_A_NAME) /* a named result of the call */ \
  /* fused (passes/): each equals its primitive subgraph, rounded to f32 step by step as it would be */ \
  X(RMSNORM, "rmsnorm", 2, IR_FUSED, IR_A_VALUE) /* x[...,D], w[D]: w*(x*rsqrt(mean(x^2 over last axis)+value)) */ \
  X(RMSNORM_ADD, "rmsnorm_add", 3, IR_FUSED, IR_A_VALUE) /* x, w, r (x's shape): r + rmsnorm(x, w) */ \
  X(ROPE, "rope", 3, IR_FUSED, 0) /* x[T,H,D], cos[T,1,D], sin[T,1,D]: x*cos + concat(-x[..,D/2:], x[..,:D/2])*sin */ \
  X(SWIGLU, "swiglu", 2, IR_FUSED, 0) /* g, u (same shape): (g*sigmoid(g))*u */ \
  X(MATMUL_SWIGLU, "matmul_swiglu", 3, IR_FUSED, 0) /* x[...,M,K], wg[N,K], wu[N,K]: swiglu(x.wg^T, x.wu^T) */ \
  X(MATMUL_ADD, "matmul_add", 3, IR_FUSED, 0) /* a, b, r (the product's shape): r + matmul(a, b) */ \
  X(ATTENTION, "attention", 3, IR_FUSED, IR_A_VALUE) /* q[T,H,D], k,v[P+T,KV,D]: head h: softmax(causal_mask(q_h.k_g^T*value)).v_g, g = h/(H/KV) -> [T,H,D] */ \
  X(ELTWISE, "elementwise", -1, IR_ELEMENTWISE | IR_FUSED, IR_A_EXPR) /* 1..4 inputs broadcast; expr: postfix over %i and the elementwise op names */

typedef enum ir_op {
#define X(id, name, arity, flags, attrs) IR_##id,
  IR_OPS(X)
#undef X
  IR_OP_COUNT
} ir_op;

typedef struct ir_op_info {
  const char *name;
  int arity;
  unsigned flags;
  unsigned attrs;
} ir_op_info;

extern const ir_op_info ir_op_table[IR_OP_COUNT];

/* The op named `name`, or -1. */
int ir_op_lookup(const char *name);

/* One element of a primitive elementwise op (y ignored by unary ones), in
 * double: f32 operands are exact in double and the result is rounded once, so
 * + - * / give the correctly rounded f32 answer. The interpreter and constant
 * folding both compute through it, so folding never changes a result. */
double ir_op_apply(ir_op op, double x, double y);

#endif
