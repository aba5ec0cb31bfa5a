/* plan-memory: liveness over the graph's order (the schedule), views aliased
 * to their source, elementwise ops computed in place over an input that dies
 * at them, then every buffer placed in one arena greedily by size (largest
 * first, into the best-fitting gap free for its whole lifetime, as TFLite and
 * TVM do). Invariant: buffers whose lifetimes intersect never share a byte,
 * except an in-place op and the input that dies at it (pass_plan_check). */
#include <stdbool.h>
#include <stdlib.h>

#include "olmoc/alloc.h"
#include "olmoc/plan.h"

/* A buffer of the arena: a value with its own storage plus the values computed
 * in place over it, live from `start` to `end` (node ids, inclusive). */
typedef struct buffer {
  int id;         /* its index before sorting */
  int start, end;
  int64_t size; /* aligned */
  int64_t offset;
} buffer;

/* The sum of every value's aligned bytes may not exceed it, so that no
 * offset, arena size or total below can overflow int64_t. */
#define MAX_TOTAL (INT64_C(1) << 62)

static int64_t align_up(int64_t x) { return (x + PASS_PLAN_ALIGN - 1) / PASS_PLAN_ALIGN * PASS_PLAN_ALIGN; }

/* Bytes of type ty at T, P, or -1 when a dim is negative or the size overflows. */
static int64_t bytes_at(const ir_type *ty, int64_t T, int64_t P) {
  int64_t n = (int64_t)ir_dtype_size(ty->dtype);
  for (int i = 0; i < ty->shape.rank; i++) {
    int64_t d = ir_dim_eval(ty->shape.dim[i], T, P);
    if (d < 0 || (d && n > INT64_MAX / 16 / d))
      return -1;
    n *= d;
  }
  return n;
}

/* The most bytes the value takes in any call the plan allows: T in
 * [1, max_tokens], P in [0, max_ctx - T]. Dims grow with P, so P = max_ctx - T,
 * and each dim is linear in T. Where none is negative (checked at both ends:
 * a linear dim negative inside is negative at an end) their product is
 * log-concave, so unimodal in T (T*(P+T) peaks inside the range): a ternary
 * search finds the peak in O(log max_tokens) steps, where trying every T
 * took max_tokens (up to 2^24, from config.json) per node. */
static int64_t worst_bytes(const ir_type *ty, int64_t max_tokens, int64_t max_ctx) {
  int64_t lo = 1, hi = max_tokens, worst = 0;
  if (bytes_at(ty, lo, max_ctx - lo) < 0 || bytes_at(ty, hi, max_ctx - hi) < 0)
    return -1;
  while (hi - lo > 2) { /* the peak stays in [lo, hi] */
    int64_t m1 = lo + (hi - lo) / 3, m2 = hi - (hi - lo) / 3;
    int64_t b1 = bytes_at(ty, m1, max_ctx - m1), b2 = bytes_at(ty, m2, max_ctx - m2);
    if (b1 < 0 || b2 < 0)
      return -1;
    if (b1 < b2)
      lo = m1 + 1;
    else
      hi = m2;
  }
  for (int64_t T = lo; T <= hi; T++) {
    int64_t b = bytes_at(ty, T, max_ctx - T);
    if (b < 0)
      return -1;
    worst = b > worst ? b : worst;
  }
  return worst;
}

/* Values with storage outside the arena: weights, inputs, constants, caches. */
static bool lives_elsewhere(ir_op op) {
  return ((ir_op_table[op].flags & IR_LEAF) && op != IR_POSITIONS) || op == IR_KV_APPEND;
}

/* The input whose bytes node n's value is, or -1: a reshape is its input
 * (row-major, same bytes), an f32 output is its input, kv_append's result is
 * its cache's storage. */
static int view_source(const ir_graph *g, const ir_node *n) {
  if (n->op == IR_RESHAPE || n->op == IR_KV_APPEND)
    return n->in[0];
  if (n->op == IR_OUTPUT && g->nodes[n->in[0]].type.dtype == IR_F32)
    return n->in[0];
  return -1;
}

/* The best-fitting gap for b among the already placed buffers whose lifetimes
 * intersect b's: the smallest hole that holds it, else the end of the last. */
static int64_t place(const buffer *placed, int n_placed, const buffer *b, int64_t *scratch_off,
                     int64_t *scratch_end) {
  int k = 0;
  for (int i = 0; i < n_placed; i++) {
    const buffer *o = &placed[i];
    if (o->start <= b->end && b->start <= o->end) {
      /* insertion by offset keeps the conflicts sorted */
      int j = k++;
      for (; j > 0 && scratch_off[j - 1] > o->offset; j--) {
        scratch_off[j] = scratch_off[j - 1];
        scratch_end[j] = scratch_end[j - 1];
      }
      scratch_off[j] = o->offset;
      scratch_end[j] = o->offset + o->size;
    }
  }
  int64_t cur = 0, best = -1, best_gap = INT64_MAX;
  for (int i = 0; i < k; i++) {
    int64_t gap = scratch_off[i] - cur;
    if (gap >= b->size && gap < best_gap) {
      best = cur;
      best_gap = gap;
    }
    if (scratch_end[i] > cur)
      cur = scratch_end[i];
  }
  return best >= 0 ? best : cur;
}

/* Largest first; ties: longer lifetime, then earlier start. */
static int by_size_then_lifetime(const void *pa, const void *pb) {
  const buffer *a = pa, *b = pb;
  if (a->size != b->size)
    return a->size > b->size ? -1 : 1;
  int la = a->end - a->start, lb = b->end - b->start;
  if (la != lb)
    return la > lb ? -1 : 1;
  return (a->start > b->start) - (a->start < b->start);
}

/* Largest first; ties: earlier start (a chain of equal buffers ping-pongs). */
static int by_size_then_start(const void *pa, const void *pb) {
  const buffer *a = pa, *b = pb;
  if (a->size != b->size)
    return a->size > b->size ? -1 : 1;
  return (a->start > b->start) - (a->start < b->start);
}

/* Places the buffers in the order `cmp` gives; returns the arena's size and
 * leaves each buffer's offset in bufs when it beats `best` (else untouched). */
static int64_t place_all(buffer *bufs, buffer *sorted, int nb, int (*cmp)(const void *, const void *),
                         int64_t best, int64_t *s_off, int64_t *s_end) {
  for (int b = 0; b < nb; b++)
    sorted[b] = bufs[b];
  qsort(sorted, (size_t)nb, sizeof *sorted, cmp);
  int64_t arena = 0;
  for (int k = 0; k < nb; k++) {
    sorted[k].offset = place(sorted, k, &sorted[k], s_off, s_end);
    if (sorted[k].offset + sorted[k].size > arena)
      arena = sorted[k].offset + sorted[k].size;
  }
  if (arena < best)
    for (int k = 0; k < nb; k++)
      bufs[sorted[k].id].offset = sorted[k].offset;
  return arena;
}

/* Lifetimes: the last node reading each value through any view of it; an
 * output is read after the call, so it lives to the end (node n). */
static void lifetimes(const ir_graph *g, const int *root, int *end) {
  for (int i = 0; i < g->n; i++)
    end[i] = g->nodes[i].op == IR_OUTPUT ? g->n : i;
  for (int i = 0; i < g->n; i++)
    for (int k = 0; k < ir_arity(&g->nodes[i]); k++)
      if (end[root[g->nodes[i].in[k]]] < i)
        end[root[g->nodes[i].in[k]]] = i;
  for (int i = 0; i < g->n; i++)
    if (end[root[i]] < end[i])
      end[root[i]] = end[i];
}

/* The buffer node i (elementwise, with its own storage) may reuse in place:
 * an input of the same type whose buffer dies at i, else -1. */
static int in_place_buffer(const ir_graph *g, int i, const int *root, const int *buf_of,
                           const buffer *bufs, const pass_plan *p) {
  const ir_node *n = &g->nodes[i];
  if (!(ir_op_table[n->op].flags & IR_ELEMENTWISE))
    return -1;
  for (int k = 0; k < ir_arity(n); k++) {
    const ir_node *in = &g->nodes[n->in[k]];
    int r = root[n->in[k]], b = buf_of[r];
    if (b >= 0 && bufs[b].end == i && in->type.dtype == n->type.dtype &&
        ir_shape_eq(&in->type.shape, &n->type.shape) && p->bytes[r] == p->bytes[i])
      return b;
  }
  return -1;
}

/* Numbers the buffers and fills buf_of[i] for each value with arena storage. */
static int make_buffers(const ir_graph *g, const pass_plan *p, const int *root, const int *end,
                        int *buf_of, buffer *bufs) {
  int nb = 0;
  for (int i = 0; i < g->n; i++) {
    buf_of[i] = -1;
    if (lives_elsewhere(g->nodes[i].op) || p->alias_of[i] >= 0)
      continue;
    int b = in_place_buffer(g, i, root, buf_of, bufs, p);
    if (b < 0) {
      b = nb++;
      bufs[b] = (buffer){.id = b, .start = i, .end = i, .size = align_up(p->bytes[i])};
    }
    buf_of[i] = b;
    if (bufs[b].end < end[i])
      bufs[b].end = end[i];
  }
  return nb;
}

static void summarize(const ir_graph *g, pass_plan *p, const buffer *bufs, int nb, int64_t *live) {
  for (int t = 0; t <= g->n + 1; t++)
    live[t] = 0;
  for (int b = 0; b < nb; b++) {
    live[bufs[b].start] += bufs[b].size;
    live[bufs[b].end + 1] -= bufs[b].size;
    if (bufs[b].offset + bufs[b].size > p->arena_bytes)
      p->arena_bytes = bufs[b].offset + bufs[b].size;
  }
  for (int t = 0; t <= g->n; t++) {
    if (t > 0)
      live[t] += live[t - 1];
    if (live[t] > p->lower_bound)
      p->lower_bound = live[t];
  }
  for (int i = 0; i < g->n; i++)
    if (!lives_elsewhere(g->nodes[i].op) && p->alias_of[i] < 0)
      p->naive_bytes += p->bytes[i];
}

int pass_plan_memory(const ir_graph *g, int64_t max_tokens, int64_t max_ctx, pass_plan *plan,
                     oc_error *e) {
  *plan = (pass_plan){.n = g->n, .max_tokens = max_tokens, .max_ctx = max_ctx};
  if (max_tokens < 1 || max_ctx < max_tokens)
    return oc_fail(e, "plan-memory: need 1 <= max_tokens <= max_ctx, found max_tokens = %lld, "
                   "max_ctx = %lld", (long long)max_tokens, (long long)max_ctx);
  size_t n = (size_t)g->n;
  plan->bytes = oc_calloc(n + 1, sizeof *plan->bytes);
  plan->offset = oc_calloc(n + 1, sizeof *plan->offset);
  plan->alias_of = oc_calloc(n + 1, sizeof *plan->alias_of);
  int *root = oc_calloc(n + 1, sizeof *root), *end = oc_calloc(n + 1, sizeof *end);
  int *buf_of = oc_calloc(n + 1, sizeof *buf_of);
  buffer *bufs = oc_calloc(n + 1, sizeof *bufs), *sorted = oc_calloc(n + 1, sizeof *sorted);
  int64_t *s_off = oc_calloc(n + 2, sizeof *s_off), *s_end = oc_calloc(n + 2, sizeof *s_end);
  int rc = -1;
  if (!plan->bytes || !plan->offset || !plan->alias_of || !root || !end || !buf_of || !sorted ||
      !bufs || !s_off || !s_end) {
    oc_fail(e, "plan-memory: out of memory for %d nodes", g->n);
    goto done;
  }
  int64_t total = 0; /* aligned bytes of every value: bounds the arena, offsets and sums */
  for (int i = 0; i < g->n; i++) {
    const ir_node *nd = &g->nodes[i];
    plan->bytes[i] = worst_bytes(&nd->type, max_tokens, max_ctx);
    if (plan->bytes[i] < 0) {
      oc_fail(e, "plan-memory: node %%%d (%s) has a negative dim or too many bytes at T <= %lld, "
              "P + T <= %lld", i, ir_op_table[nd->op].name, (long long)max_tokens, (long long)max_ctx);
      goto done;
    }
    if ((total += align_up(plan->bytes[i])) > MAX_TOTAL) { /* no overflow: bytes < 2^59 */
      oc_fail(e, "plan-memory: the values up to node %%%d (%s) take more than 2^62 bytes in all "
              "at T <= %lld, P + T <= %lld", i, ir_op_table[nd->op].name, (long long)max_tokens,
              (long long)max_ctx);
      goto done;
    }
    plan->alias_of[i] = view_source(g, nd);
    root[i] = plan->alias_of[i] >= 0 ? root[plan->alias_of[i]] : i;
  }
  lifetimes(g, root, end);
  int nb = make_buffers(g, plan, root, end, buf_of, bufs);
  /* greedy by size is a heuristic: two tie-breaks, keep the smaller arena */
  int64_t best = place_all(bufs, sorted, nb, by_size_then_lifetime, INT64_MAX, s_off, s_end);
  place_all(bufs, sorted, nb, by_size_then_start, best, s_off, s_end);
  for (int i = 0; i < g->n; i++) /* views after their sources: ids only grow */
    plan->offset[i] = plan->alias_of[i] >= 0 ? plan->offset[plan->alias_of[i]]
                      : buf_of[i] >= 0       ? bufs[buf_of[i]].offset
                                             : -1;
  summarize(g, plan, bufs, nb, s_off);
  rc = 0;
done:
  free(root);
  free(end);
  free(buf_of);
  free(sorted);
  free(bufs);
  free(s_off);
  free(s_end);
  if (rc)
    pass_plan_free(plan);
  return rc;
}

void pass_plan_free(pass_plan *plan) {
  free(plan->bytes);
  free(plan->offset);
  free(plan->alias_of);
  *plan = (pass_plan){0};
}

void pass_plan_report(FILE *f, const char *const *labels, const pass_plan *plans, int n) {
  const double MiB = 1024.0 * 1024.0;
  fprintf(f, "| %-22s | %12s | %12s | %12s | %10s |\n", "graph", "naive MiB", "planned MiB",
          "lower bd MiB", "planned/lb");
  fprintf(f, "|%s|%s|%s|%s|%s|\n", "------------------------", "-------------:", "-------------:",
          "-------------:", "-----------:");
  for (int i = 0; i < n; i++) {
    const pass_plan *p = &plans[i];
    fprintf(f, "| %-22s | %12.2f | %12.2f | %12.2f | %10.4f |\n", labels[i],
            (double)p->naive_bytes / MiB, (double)p->arena_bytes / MiB,
            (double)p->lower_bound / MiB,
            p->lower_bound ? (double)p->arena_bytes / (double)p->lower_bound : 1.0);
  }
}
