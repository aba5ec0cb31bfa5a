/* The interpreter's op kernels, naive loops written to be read: every element
 * is read through ir_load_f32 (so f32, bf16, f16 and i32 inputs all work),
 * every sum (dot products, reductions, softmax denominators) accumulates in
 * double, and float results are rounded once to f32. Data movement copies
 * elements in their own dtype, so i32 tokens and positions stay exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp_internal.h"
#include "olmoc/alloc.h"

static float ld(const ir_value *v, int64_t i) { return ir_load_f32(v->t.dtype, v->t.data, i); }

static int32_t ld_i32(const ir_value *v, int64_t i) {
  int32_t x;
  memcpy(&x, (const unsigned char *)v->t.data + 4 * i, sizeof x);
  return x;
}

static int64_t numel(const ir_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++)
    n *= t->dims[i];
  return n;
}

/* Product of dims [from, to). */
static int64_t span(const ir_tensor *t, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; i++)
    n *= t->dims[i];
  return n;
}

void interp_copy(ir_dtype out, void *dst, int64_t to, const ir_tensor *src, int64_t from, int64_t n) {
  if (n <= 0)
    return;
  if (src->dtype == out) {
    size_t es = ir_dtype_size(out);
    memcpy((char *)dst + (size_t)to * es, (const char *)src->data + (size_t)from * es, (size_t)n * es);
    return;
  }
  float *y = (float *)dst + to; /* a float value stored as f32 */
  for (int64_t i = 0; i < n; i++)
    y[i] = ir_load_f32(src->dtype, src->data, from + i);
}

/* ---- elementwise ---- */

/* Strides that read t as if broadcast to the output's `rank` axes, aligned from
 * the right: 0 along axes t lacks or has size 1. */
static void broadcast_strides(const ir_tensor *t, int rank, int64_t *st) {
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    int j = i - (rank - t->rank);
    st[i] = j < 0 || t->dims[j] == 1 ? 0 : s;
    if (j >= 0)
      s *= t->dims[j];
  }
}

static void binary(ir_op op, const ir_value *a, const ir_value *b, ir_value *out) {
  const ir_tensor *o = &out->t;
  int64_t sa[IR_MAX_DIMS], sb[IR_MAX_DIMS], n = numel(o);
  broadcast_strides(&a->t, o->rank, sa);
  broadcast_strides(&b->t, o->rank, sb);
  float *y = out->buf;
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, ia = 0, ib = 0;
    for (int d = o->rank - 1; d >= 0; d--) {
      int64_t c = rem % o->dims[d];
      rem /= o->dims[d];
      ia += c * sa[d];
      ib += c * sb[d];
    }
    y[i] = (float)ir_op_apply(op, ld(a, ia), ld(b, ib));
  }
}

static void unary(ir_op op, const ir_value *a, ir_value *out) {
  float *y = out->buf;
  for (int64_t i = 0, n = numel(&out->t); i < n; i++)
    y[i] = (float)ir_op_apply(op, ld(a, i), 0);
}

/* ---- reductions over the last axis ---- */

static void reduce(ir_op op, const ir_value *a, ir_value *out) {
  int64_t len = a->t.dims[a->t.rank - 1], rows = span(&a->t, 0, a->t.rank - 1);
  float *y = out->buf;
  for (int64_t r = 0; r < rows; r++) {
    double s = 0;
    for (int64_t j = 0; j < len; j++)
      s += ld(a, r * len + j);
    y[r] = (float)(op == IR_REDUCE_MEAN ? s / (double)len : s);
  }
}

/* Subtracting the row max keeps exp in range; -inf entries become 0. */
static void softmax(const ir_value *a, ir_value *out) {
  int64_t len = a->t.dims[a->t.rank - 1], rows = span(&a->t, 0, a->t.rank - 1);
  float *y = out->buf;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t row = r * len;
    float max = -INFINITY;
    for (int64_t j = 0; j < len; j++)
      max = fmaxf(max, ld(a, row + j));
    double sum = 0;
    for (int64_t j = 0; j < len; j++)
      sum += exp((double)ld(a, row + j) - max);
    for (int64_t j = 0; j < len; j++)
      y[row + j] = (float)(exp((double)ld(a, row + j) - max) / sum);
  }
}

/* ---- products and lookups ---- */

/* n elements of t from element `from`, as f32. */
static void load_row(const ir_tensor *t, int64_t from, int64_t n, float *dst) {
  for (int64_t i = 0; i < n; i++)
    dst[i] = ir_load_f32(t->dtype, t->data, from + i);
}

/* out[...,m,n] = sum_k a[...,m,k] * b[(...,)n,k]. Each row of b is converted
 * to f32 once and dotted with every row of a. */
static int matmul(const ir_value *a, const ir_value *b, ir_value *out, oc_error *e) {
  int ra = a->t.rank;
  int64_t M = a->t.dims[ra - 2], K = a->t.dims[ra - 1], N = out->t.dims[ra - 1];
  int64_t batch = span(&a->t, 0, ra - 2);
  bool shared = b->t.rank == 2; /* b[N,K] serves every batch */
  float *arows = oc_malloc((size_t)(M * K + K + 1) * sizeof *arows);
  if (!arows)
    return oc_fail(e, "out of memory for a %lldx%lld matmul operand", (long long)M, (long long)K);
  float *brow = arows + M * K, *y = out->buf;
  for (int64_t bt = 0; bt < batch; bt++) {
    load_row(&a->t, bt * M * K, M * K, arows);
    for (int64_t n = 0; n < N; n++) {
      load_row(&b->t, ((shared ? 0 : bt) * N + n) * K, K, brow);
      for (int64_t m = 0; m < M; m++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++)
          s += (double)arows[m * K + k] * brow[k];
        y[(bt * M + m) * N + n] = (float)s;
      }
    }
  }
  free(arows);
  return 0;
}

static int gather(const ir_value *table, const ir_value *ids, ir_value *out, oc_error *e) {
  int64_t V = table->t.dims[0], D = table->t.dims[1];
  for (int64_t i = 0, n = numel(&ids->t); i < n; i++) {
    int32_t id = ld_i32(ids, i);
    if (id < 0 || id >= V)
      return oc_fail(e, "id %d at index %lld is outside the table's %lld rows (valid: 0..%lld)",
                     (int)id, (long long)i, (long long)V, (long long)V - 1);
    interp_copy(IR_F32, out->buf, i * D, &table->t, id * D, D);
  }
  return 0;
}

/* ---- data movement: elements keep their dtype (or become f32 if float) ---- */

static void slice(const ir_node *n, const ir_value *a, ir_value *out) {
  int64_t outer = span(&a->t, 0, n->axis), inner = span(&a->t, n->axis + 1, a->t.rank);
  int64_t dim = a->t.dims[n->axis], len = n->end - n->start;
  for (int64_t o = 0; o < outer; o++)
    interp_copy(out->t.dtype, out->buf, o * len * inner, &a->t, (o * dim + n->start) * inner,
                len * inner);
}

static void concat(const ir_node *n, const ir_value *a, const ir_value *b, ir_value *out) {
  int64_t outer = span(&a->t, 0, n->axis), inner = span(&a->t, n->axis + 1, a->t.rank);
  int64_t la = a->t.dims[n->axis] * inner, lb = b->t.dims[n->axis] * inner;
  for (int64_t o = 0; o < outer; o++) {
    interp_copy(out->t.dtype, out->buf, o * (la + lb), &a->t, o * la, la);
    interp_copy(out->t.dtype, out->buf, o * (la + lb) + la, &b->t, o * lb, lb);
  }
}

/* Output axis d is input axis perm[d]. */
static void transpose(const ir_node *n, const ir_value *a, ir_value *out) {
  const ir_tensor *o = &out->t;
  int64_t st[IR_MAX_DIMS], s = 1;
  for (int d = a->t.rank - 1; d >= 0; d--) {
    st[d] = s;
    s *= a->t.dims[d];
  }
  for (int64_t i = 0, total = numel(o); i < total; i++) {
    int64_t rem = i, from = 0;
    for (int d = o->rank - 1; d >= 0; d--) {
      from += (rem % o->dims[d]) * st[n->perm[d]];
      rem /= o->dims[d];
    }
    interp_copy(o->dtype, out->buf, i, &a->t, from, 1);
  }
}

/* Index j along the axis reads input index j / times (repeat_interleave). */
static void repeat(const ir_node *n, const ir_value *a, ir_value *out) {
  int64_t outer = span(&a->t, 0, n->axis), inner = span(&a->t, n->axis + 1, a->t.rank);
  int64_t len = a->t.dims[n->axis], out_len = len * n->times;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < out_len; j++)
      interp_copy(out->t.dtype, out->buf, (o * out_len + j) * inner, &a->t,
                  (o * len + j / n->times) * inner, inner);
}

/* ---- model pieces ---- */

/* (t, i) = cos or sin of pos_t * theta^(-2*(i mod dim/2)/dim). The frequency
 * and the angle are rounded to f32 step by step as Hugging Face computes them
 * (inv_freq = 1 / theta^(2i/dim) in f32, then one f32 product), because at
 * positions in the thousands the f32 angle differs from the exact one by
 * ~1e-4 rad, and the oracle must agree with the reference model. */
static void rope_table(const ir_node *n, const ir_value *pos, ir_value *out) {
  int64_t rows = pos->t.dims[0], half = n->dim / 2;
  float *y = out->buf;
  for (int64_t t = 0; t < rows; t++)
    for (int64_t i = 0; i < n->dim; i++) {
      float exponent = (float)(2 * (i % half)) / (float)n->dim;
      float inv_freq = 1.0f / powf((float)n->theta, exponent);
      float angle = (float)ld_i32(pos, t) * inv_freq;
      y[t * n->dim + i] = (float)(n->op == IR_ROPE_COS ? cos(angle) : sin(angle));
    }
}

/* a[...,T,P+T]: query i sees keys j <= P + i. */
static void causal_mask(const ir_value *a, int64_t P, ir_value *out) {
  int r = a->t.rank;
  int64_t rows = a->t.dims[r - 2], keys = a->t.dims[r - 1], mats = span(&a->t, 0, r - 2);
  float *y = out->buf;
  for (int64_t m = 0; m < mats; m++)
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < keys; j++) {
        int64_t at = (m * rows + i) * keys + j;
        y[at] = j > P + i ? -INFINITY : ld(a, at);
      }
}

int interp_eval(const ir_node *n, const ir_value *a, const ir_value *b, int64_t P, ir_value *out,
                oc_error *e) {
  switch (n->op) {
  case IR_ADD: case IR_SUB: case IR_MUL: case IR_DIV:
    binary(n->op, a, b, out);
    return 0;
  case IR_NEG: case IR_EXP: case IR_SQRT: case IR_RSQRT: case IR_SIGMOID:
    unary(n->op, a, out);
    return 0;
  case IR_REDUCE_SUM: case IR_REDUCE_MEAN:
    reduce(n->op, a, out);
    return 0;
  case IR_SOFTMAX:
    softmax(a, out);
    return 0;
  case IR_GATHER:
    return gather(a, b, out, e);
  case IR_MATMUL:
    return matmul(a, b, out, e);
  case IR_SLICE:
    slice(n, a, out);
    return 0;
  case IR_CONCAT:
    concat(n, a, b, out);
    return 0;
  case IR_RESHAPE:
    interp_copy(out->t.dtype, out->buf, 0, &a->t, 0, numel(&a->t));
    return 0;
  case IR_TRANSPOSE:
    transpose(n, a, out);
    return 0;
  case IR_REPEAT:
    repeat(n, a, out);
    return 0;
  case IR_ROPE_COS: case IR_ROPE_SIN:
    rope_table(n, a, out);
    return 0;
  case IR_CAUSAL_MASK:
    causal_mask(a, P, out);
    return 0;
  default:
    return oc_fail(e, "the interpreter has no kernel for op %s", ir_op_table[n->op].name);
  }
}
