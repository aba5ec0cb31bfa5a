/* The interpreter's kernels for fused ops. Each computes exactly what its
 * primitive subgraph computes in interp_ops.c: every intermediate the
 * subgraph would store is rounded to f32 at the same step, every sum runs in
 * double in the same order, so a fusion pass changes no bit of the result. */
#include <math.h>
#include <stdlib.h>

#include "interp_internal.h"
#include "olmoc/alloc.h"

static float ld(const ir_value *v, int64_t i) { return ir_load_f32(v->t.dtype, v->t.data, i); }

static int64_t numel(const ir_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++)
    n *= t->dims[i];
  return n;
}

/* (float)sum_k a[ai+k] * b[bi+k], accumulated in double as matmul does. */
static float dot(const ir_value *a, int64_t ai, const ir_value *b, int64_t bi, int64_t K) {
  double s = 0;
  for (int64_t k = 0; k < K; k++)
    s += (double)ld(a, ai + k) * ld(b, bi + k);
  return (float)s;
}

static float silu_times(float g, float u) {
  float sig = (float)ir_op_apply(IR_SIGMOID, g, 0);
  float silu = (float)((double)g * sig);
  return (float)((double)silu * u);
}

/* rmsnorm, plus r when r is given (rmsnorm_add). */
static void rmsnorm(const ir_node *n, const ir_value *x, const ir_value *w, const ir_value *r,
                    ir_value *out) {
  int64_t D = x->t.dims[x->t.rank - 1], rows = numel(&x->t) / D;
  float eps = (float)n->value, *y = out->buf;
  for (int64_t row = 0; row < rows; row++) {
    const int64_t at = row * D;
    double s = 0;
    for (int64_t j = 0; j < D; j++)
      s += (float)((double)ld(x, at + j) * ld(x, at + j));
    float mean = (float)(s / (double)D);
    float inv = (float)ir_op_apply(IR_RSQRT, (float)((double)mean + eps), 0);
    for (int64_t j = 0; j < D; j++) {
      float normed = (float)((double)ld(x, at + j) * inv);
      float v = (float)((double)ld(w, j) * normed);
      y[at + j] = r ? (float)((double)ld(r, at + j) + v) : v;
    }
  }
}

/* x[T,H,D], cos and sin [T,1,D]. */
static void rope(const ir_value *x, const ir_value *cos, const ir_value *sin, ir_value *out) {
  int64_t T = x->t.dims[0], H = x->t.dims[1], D = x->t.dims[2], half = D / 2;
  float *y = out->buf;
  for (int64_t t = 0; t < T; t++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t d = 0; d < D; d++) {
        int64_t at = (t * H + h) * D;
        float rot = d < half ? -ld(x, at + d + half) : ld(x, at + d - half);
        float a = (float)((double)ld(x, at + d) * ld(cos, t * D + d));
        float b = (float)((double)rot * ld(sin, t * D + d));
        y[at + d] = (float)((double)a + b);
      }
}

/* x[...,M,K] with b[N,K] or b[...,N,K]: out[...,m,n] from dot(x row m, b row n). */
static void matmul_epilogue(const ir_node *n, const ir_value *const *in, ir_value *out) {
  const ir_value *x = in[0], *b = in[1];
  int r = x->t.rank;
  int64_t M = x->t.dims[r - 2], K = x->t.dims[r - 1], N = out->t.dims[r - 1];
  int64_t batch = numel(&x->t) / (M * K);
  float *y = out->buf;
  for (int64_t bt = 0; bt < batch; bt++)
    for (int64_t m = 0; m < M; m++)
      for (int64_t j = 0; j < N; j++) {
        int64_t xi = (bt * M + m) * K, bi = ((b->t.rank == 2 ? 0 : bt) * N + j) * K;
        int64_t at = (bt * M + m) * N + j;
        float v = dot(x, xi, b, bi, K);
        if (n->op == IR_MATMUL_SWIGLU)
          y[at] = silu_times(v, dot(x, xi, in[2], j * K, K));
        else
          y[at] = (float)((double)ld(in[2], at) + v);
      }
}

/* q[T,H,D], k and v [S,KV,D] with S = P+T; query i sees keys j <= P+i. */
static int attention(const ir_node *n, const ir_value *const *in, int64_t P, ir_value *out,
                     oc_error *e) {
  const ir_value *q = in[0], *k = in[1], *v = in[2];
  int64_t T = q->t.dims[0], H = q->t.dims[1], D = q->t.dims[2];
  int64_t S = k->t.dims[0], KV = k->t.dims[1], group = H / KV;
  float scale = (float)n->value, *y = out->buf;
  float *p = oc_malloc((size_t)S * sizeof *p);
  if (!p)
    return oc_fail(e, "out of memory for %lld attention scores", (long long)S);
  for (int64_t h = 0; h < H; h++)
    for (int64_t i = 0; i < T; i++) {
      int64_t g = h / group;
      float max = -INFINITY;
      for (int64_t j = 0; j < S; j++) {
        float s = (float)((double)dot(q, (i * H + h) * D, k, (j * KV + g) * D, D) * scale);
        p[j] = j > P + i ? -INFINITY : s;
        max = fmaxf(max, p[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < S; j++)
        sum += exp((double)p[j] - max);
      for (int64_t j = 0; j < S; j++)
        p[j] = (float)(exp((double)p[j] - max) / sum);
      for (int64_t d = 0; d < D; d++) {
        double s = 0;
        for (int64_t j = 0; j < S; j++)
          s += (double)p[j] * ld(v, (j * KV + g) * D + d);
        y[(i * H + h) * D + d] = (float)s;
      }
    }
  free(p);
  return 0;
}

/* The expr per output element, each input read through broadcast strides. */
static void elementwise(const ir_node *n, const ir_value *const *in, ir_value *out) {
  ir_expr_tok tok[IR_EXPR_MAX];
  int count = ir_expr_parse(n->name, n->n_in, tok, NULL); /* verified: well-formed */
  const ir_tensor *o = &out->t;
  int64_t st[IR_MAX_INPUTS][IR_MAX_DIMS];
  for (int i = 0; i < n->n_in; i++) {
    const ir_tensor *t = &in[i]->t;
    int64_t s = 1;
    for (int d = o->rank - 1; d >= 0; d--) {
      int j = d - (o->rank - t->rank);
      st[i][d] = j < 0 || t->dims[j] == 1 ? 0 : s;
      if (j >= 0)
        s *= t->dims[j];
    }
  }
  float *y = out->buf, stack[IR_EXPR_MAX];
  for (int64_t at = 0, total = numel(o); at < total; at++) {
    int64_t idx[IR_MAX_INPUTS] = {0}, rem = at;
    for (int d = o->rank - 1; d >= 0; d--) {
      int64_t c = rem % o->dims[d];
      rem /= o->dims[d];
      for (int i = 0; i < n->n_in; i++)
        idx[i] += c * st[i][d];
    }
    int sp = 0;
    for (int t = 0; t < count; t++) {
      if (tok[t].op == IR_INPUT) {
        stack[sp++] = ld(in[tok[t].input], idx[tok[t].input]);
        continue;
      }
      int arity = ir_op_table[tok[t].op].arity;
      sp -= arity;
      stack[sp] = (float)ir_op_apply(tok[t].op, stack[sp], arity > 1 ? stack[sp + 1] : 0);
      sp++;
    }
    y[at] = stack[0];
  }
}

int interp_eval_fused(const ir_node *n, const ir_value *const *in, int64_t P, ir_value *out,
                      oc_error *e) {
  switch (n->op) {
  case IR_RMSNORM: case IR_RMSNORM_ADD:
    rmsnorm(n, in[0], in[1], n->op == IR_RMSNORM_ADD ? in[2] : NULL, out);
    return 0;
  case IR_ROPE:
    rope(in[0], in[1], in[2], out);
    return 0;
  case IR_SWIGLU: {
    float *y = out->buf;
    for (int64_t i = 0, total = numel(&out->t); i < total; i++)
      y[i] = silu_times(ld(in[0], i), ld(in[1], i));
    return 0;
  }
  case IR_MATMUL_SWIGLU: case IR_MATMUL_ADD:
    matmul_epilogue(n, in, out);
    return 0;
  case IR_ATTENTION:
    return attention(n, in, P, out, e);
  case IR_ELTWISE:
    elementwise(n, in, out);
    return 0;
  default:
    return oc_fail(e, "the interpreter has no kernel for op %s", ir_op_table[n->op].name);
  }
}
