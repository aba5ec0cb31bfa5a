/* The sampler: Hugging Face transformers' order and rules (repetition penalty,
 * temperature, top-k, top-p, min-p, then a draw from the softmax of what
 * remains), made exact where HF leaves ties to its sort, over an
 * xoshiro256** stream seeded by splitmix64. Invariant: after truncation the
 * candidates hold the top logit (weight exactly 1) and only weights > 0, so a
 * draw always lands on a token; one draw of the stream per sampled token. */
#include "olmoc/alloc.h"
#include "olmoc/sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#define MAX_VOCAB (INT32_C(1) << 24)
/* top-p stops once the cumulative probability is within this of top_p: it
 * absorbs float rounding of top_p and of the logits (0.3f with ten equal
 * tokens keeps three, not four), far below any probability that matters. */
#define TOP_P_TOL 1e-6

typedef struct cand {
  float logit; /* after penalty and temperature */
  float w;     /* exp(logit - max logit) in (0, 1] */
  int32_t id;
} cand;

struct rt_sampler {
  rt_sampling cfg;
  int32_t vocab;
  uint64_t rng[4]; /* xoshiro256** state */
  uint32_t epoch;  /* stamp of the current call in seen[] */
  uint32_t *seen;  /* [vocab]: epoch at which id was last penalized */
  cand *c;         /* [vocab]: candidates (id order until top-p moves them) */
  float *heap;     /* [min(top_k, vocab)]: min-heap for the k-th largest logit */
};

rt_sampling rt_sampling_default(void) {
  return (rt_sampling){.temperature = 0, .top_k = 0, .top_p = 1, .min_p = 0,
                       .repetition_penalty = 1, .seed = 0};
}

/* ---- generator: splitmix64 seeds xoshiro256** (Blackman and Vigna) ------ */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform(uint64_t s[4]) { return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53; }

/* ---- construction --------------------------------------------------------- */

int rt_sampler_new(const rt_sampling *cfg, int32_t vocab, rt_sampler **out, oc_error *e) {
  *out = NULL;
  if (vocab < 1 || vocab > MAX_VOCAB)
    return oc_fail(e, "sampler: vocab must be in [1, %d], found %d", (int)MAX_VOCAB, (int)vocab);
  if (!(cfg->temperature >= 0) || !isfinite(cfg->temperature))
    return oc_fail(e, "sampler: temperature must be a finite number >= 0 (0: greedy), found %g",
                   (double)cfg->temperature);
  if (cfg->top_k < 0)
    return oc_fail(e, "sampler: top_k must be >= 0 (0: off), found %d", cfg->top_k);
  if (!(cfg->top_p >= 0 && cfg->top_p <= 1))
    return oc_fail(e, "sampler: top_p must be in [0, 1] (1: off), found %g", (double)cfg->top_p);
  if (!(cfg->min_p >= 0 && cfg->min_p <= 1))
    return oc_fail(e, "sampler: min_p must be in [0, 1] (0: off), found %g", (double)cfg->min_p);
  if (!(cfg->repetition_penalty > 0) || !isfinite(cfg->repetition_penalty))
    return oc_fail(e, "sampler: repetition_penalty must be a finite number > 0 (1: off), found %g",
                   (double)cfg->repetition_penalty);

  rt_sampler *s = oc_calloc(1, sizeof *s);
  int32_t nheap = cfg->top_k > 0 && cfg->top_k < vocab ? cfg->top_k : 1;
  if (s) {
    s->seen = oc_calloc((size_t)vocab, sizeof *s->seen);
    s->c = oc_malloc((size_t)vocab * sizeof *s->c);
    s->heap = oc_malloc((size_t)nheap * sizeof *s->heap);
  }
  if (!s || !s->seen || !s->c || !s->heap) {
    rt_sampler_free(s);
    return oc_fail(e, "sampler: out of memory for a vocabulary of %d", (int)vocab);
  }
  s->cfg = *cfg;
  s->vocab = vocab;
  uint64_t x = cfg->seed;
  for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
  *out = s;
  return 0;
}

void rt_sampler_free(rt_sampler *s) {
  if (!s) return;
  free(s->seen);
  free(s->c);
  free(s->heap);
  free(s);
}

/* ---- the steps ------------------------------------------------------------ */

/* HF's RepetitionPenaltyLogitsProcessor: once per distinct id of the history
 * (ids outside the vocabulary are ignored), logit < 0 ? logit * p : logit / p. */
static void penalize(rt_sampler *s, float *logits, const int32_t *history, size_t n) {
  float p = s->cfg.repetition_penalty;
  if (++s->epoch == 0) { /* wrapped: forget every old stamp */
    for (int32_t i = 0; i < s->vocab; i++) s->seen[i] = 0;
    s->epoch = 1;
  }
  for (size_t i = 0; i < n; i++) {
    int32_t id = history[i];
    if (id < 0 || id >= s->vocab || s->seen[id] == s->epoch) continue;
    s->seen[id] = s->epoch;
    logits[id] = logits[id] < 0 ? logits[id] * p : logits[id] / p;
  }
}

/* The first index of the largest logit; NaN is never chosen. */
static int32_t argmax(const float *logits, int32_t n) {
  int32_t best = 0;
  float m = -INFINITY;
  for (int32_t i = 0; i < n; i++)
    if (logits[i] > m) m = logits[best = i];
  return best;
}

static void sift_down(float *h, int32_t n, int32_t i) {
  for (;;) {
    int32_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && h[l] < h[m]) m = l;
    if (r < n && h[r] < h[m]) m = r;
    if (m == i) return;
    float t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

/* The k-th largest of logits[0..n) counted with multiplicity (0 < k < n), by
 * a min-heap of the k largest seen so far: O(n log k), no worst case. */
static float kth_largest(float *h, const float *logits, int32_t n, int32_t k) {
  for (int32_t i = 0; i < k; i++) h[i] = logits[i];
  for (int32_t i = k / 2 - 1; i >= 0; i--) sift_down(h, k, i);
  for (int32_t i = k; i < n; i++)
    if (logits[i] > h[0]) {
      h[0] = logits[i];
      sift_down(h, k, 0);
    }
  return h[0];
}

/* The order top-p cuts along, a strict total order: higher logit first, then
 * lower id. */
static bool before(const cand *a, const cand *b) {
  return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int by_before(const void *a, const void *b) {
  return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

static void swap(cand *a, cand *b) {
  cand t = *a;
  *a = *b;
  *b = t;
}

/* Moves the shortest prefix, in `before` order, of c[0..n) whose weight
 * reaches target (> 0) to c[0..r), in no particular order, and returns r >= 1.
 * A quickselect on the weight: O(n) expected, no sort; after 64 rounds (bad
 * pivots) what is left is sorted. Invariant: c[0..lo) is kept and weighs
 * acc < target, c[hi..n) is cut, the boundary lies in c[lo..hi). */
static int32_t top_p(cand *c, int32_t n, double target) {
  int32_t lo = 0, hi = n;
  double acc = 0;
  for (int round = 0; hi - lo > 16 && round < 64; round++) {
    int32_t mid = lo + (hi - lo) / 2, k = lo;
    if (before(&c[mid], &c[lo])) swap(&c[mid], &c[lo]);
    if (before(&c[hi - 1], &c[lo])) swap(&c[hi - 1], &c[lo]);
    if (before(&c[hi - 1], &c[mid])) swap(&c[hi - 1], &c[mid]);
    swap(&c[mid], &c[hi - 1]); /* the median of three is the pivot */
    cand pivot = c[hi - 1];
    double upper = 0; /* weight of the candidates before the pivot */
    for (int32_t i = lo; i < hi - 1; i++)
      if (before(&c[i], &pivot)) {
        upper += c[i].w;
        swap(&c[i], &c[k++]);
      }
    swap(&c[k], &c[hi - 1]);
    if (acc + upper >= target) { /* upper > 0, so k > lo */
      hi = k;
    } else if (acc + upper + pivot.w >= target) {
      return k + 1;
    } else {
      acc += upper + pivot.w;
      lo = k + 1;
    }
  }
  qsort(c + lo, (size_t)(hi - lo), sizeof *c, by_before);
  for (int32_t i = lo; i < hi; i++) {
    acc += c[i].w;
    if (acc >= target) return i + 1;
  }
  return hi; /* only by rounding: all that is left */
}

/* Draws from the candidates in proportion to their weights, summed in their
 * order so that the draw u < total always lands. */
static int32_t draw(uint64_t rng[4], const cand *c, int32_t n) {
  double total = 0, acc = 0;
  for (int32_t i = 0; i < n; i++) total += c[i].w;
  double u = uniform(rng) * total;
  for (int32_t i = 0; i < n; i++) {
    acc += c[i].w;
    if (u < acc) return c[i].id;
  }
  return c[n - 1].id;
}

int32_t rt_sampler_sample(rt_sampler *s, float *logits, const int32_t *history, size_t n_history) {
  const rt_sampling *cfg = &s->cfg;
  int32_t V = s->vocab;
  if (cfg->repetition_penalty != 1 && history) penalize(s, logits, history, n_history);
  if (cfg->temperature == 0) return argmax(logits, V);

  /* Temperature; NaN becomes -inf (never drawn). */
  float m = -INFINITY;
  for (int32_t i = 0; i < V; i++) {
    float l = isnan(logits[i]) ? -INFINITY : logits[i] / cfg->temperature;
    logits[i] = l;
    if (l > m) m = l;
  }
  if (m == -INFINITY) return 0; /* nothing can be drawn: the lowest id */

  /* Top-k: keep logits >= the k-th largest, so ties at the boundary all stay. */
  float thr = -INFINITY;
  if (cfg->top_k > 0 && cfg->top_k < V) thr = kth_largest(s->heap, logits, V, cfg->top_k);

  /* Candidates with weight exp(l - m) > 0; with m = +inf the +inf logits
   * weigh 1 and the rest 0, the limit of the softmax. */
  cand *c = s->c;
  int32_t n = 0;
  double z = 0;
  for (int32_t i = 0; i < V; i++) {
    float l = logits[i];
    if (l < thr || l == -INFINITY) continue;
    float w = l == m ? 1.0f : expf(l - m);
    if (w > 0) {
      c[n++] = (cand){l, w, i};
      z += w;
    }
  }

  /* Top-p: the shortest prefix in `before` order whose probability reaches
   * top_p, i.e. >= top_p - TOP_P_TOL; at least the top token. */
  if (cfg->top_p < 1) n = top_p(c, n, fmax((cfg->top_p - TOP_P_TOL) * z, DBL_MIN));

  /* Min-p: the top token has weight 1, so prob >= min_p * max prob is
   * w >= min_p. */
  if (cfg->min_p > 0) {
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++)
      if ((double)c[i].w >= (double)cfg->min_p) c[k++] = c[i];
    n = k;
  }
  return draw(s->rng, c, n);
}
