/* rt_sampler and rt_sampling_load: truncation keeps exactly the sets worked
 * out by hand below (seen as the ids drawn in many draws), the penalty and
 * greedy rules pin their formulas, the stream is pinned for fixed seeds, and
 * frequencies over 100k draws pass a chi-square test against the softmax of
 * what should remain (deterministic: fixed seeds). Loading reads files
 * written under a mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <math.h>

#include "olmoc/sampler.h"

static char tmpdir[] = "/tmp/olmoc_sampler_XXXXXX";

static rt_sampling sampling(float temperature, int top_k, float top_p, float min_p) {
  rt_sampling s = rt_sampling_default();
  s.temperature = temperature;
  s.top_k = top_k;
  s.top_p = top_p;
  s.min_p = min_p;
  s.seed = 1234;
  return s;
}

static rt_sampler *make(const rt_sampling *cfg, int32_t vocab) {
  rt_sampler *s = NULL;
  oc_error e = {{0}};
  if (rt_sampler_new(cfg, vocab, &s, &e) != 0) fail_msg("rt_sampler_new: %s", e.msg);
  return s;
}

/* n draws from logits (copied before each, since the sampler may modify
 * them); returns counts[vocab], malloc'ed. */
static long *draw_counts(const rt_sampling *cfg, const float *logits, int32_t vocab, long n,
                         const int32_t *history, size_t n_history) {
  rt_sampler *s = make(cfg, vocab);
  long *counts = calloc((size_t)vocab, sizeof *counts);
  float *buf = malloc((size_t)vocab * sizeof *buf);
  for (long i = 0; i < n; i++) {
    memcpy(buf, logits, (size_t)vocab * sizeof *buf);
    int32_t id = rt_sampler_sample(s, buf, history, n_history);
    assert_in_range(id, 0, vocab - 1);
    counts[id]++;
  }
  free(buf);
  rt_sampler_free(s);
  return counts;
}

/* The ids drawn at least once in 20000 draws must be exactly `want` (a
 * string of digits, one id each, ascending). */
static void expect_kept(const rt_sampling *cfg, const float *logits, int32_t vocab,
                        const char *want) {
  long *counts = draw_counts(cfg, logits, vocab, 20000, NULL, 0);
  char got[64] = "";
  for (int32_t i = 0, n = 0; i < vocab && n < 60; i++)
    if (counts[i]) got[n++] = (char)('0' + i);
  free(counts);
  if (strcmp(got, want) != 0)
    fail_msg("k=%d p=%g min_p=%g T=%g: kept {%s}, want {%s}", cfg->top_k, (double)cfg->top_p,
             (double)cfg->min_p, (double)cfg->temperature, got, want);
}

/* ---- a brute-force reference of the documented rules ----------------------- */

static const float *sort_keys;
static int by_key(const void *a, const void *b) {
  int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
  if (sort_keys[i] != sort_keys[j]) return sort_keys[i] > sort_keys[j] ? -1 : 1;
  return (i > j) - (i < j);
}

/* p[vocab]: the probability with which each id should be drawn (no penalty). */
static void reference(const rt_sampling *cfg, const float *logits, int32_t V, double *p) {
  float *l = malloc((size_t)V * sizeof *l);
  int32_t *order = malloc((size_t)V * sizeof *order);
  for (int32_t i = 0; i < V; i++) l[i] = logits[i] / cfg->temperature, order[i] = i;
  sort_keys = l;
  qsort(order, (size_t)V, sizeof *order, by_key); /* full sort: the slow, obvious way */
  float m = l[order[0]], kth = -INFINITY;
  if (cfg->top_k > 0 && cfg->top_k < V) kth = l[order[cfg->top_k - 1]];
  double z = 0, cum = 0, total = 0;
  for (int32_t i = 0; i < V; i++) p[i] = l[i] >= kth ? exp((double)l[i] - m) : 0, z += p[i];
  bool cut = false;
  for (int32_t r = 0; r < V; r++) {
    int32_t i = order[r];
    if (cut) p[i] = 0;
    cum += p[i] / z;
    if (cfg->top_p < 1 && cum >= (double)cfg->top_p - 1e-6) cut = true;
  }
  for (int32_t i = 0; i < V; i++) {
    if (p[i] < cfg->min_p) p[i] = 0;
    total += p[i];
  }
  for (int32_t i = 0; i < V; i++) p[i] /= total;
  free(l);
  free(order);
}

/* Pearson's chi-square of counts (n draws) against p; ids with an expected
 * count < 5 are pooled. The limit is the chi-square quantile at 1 - 1e-6
 * (Wilson-Hilferty): a correct sampler fails it once in a million seeds. */
static void expect_frequencies(const long *counts, const double *p, int32_t V, long n,
                               const char *what) {
  double stat = 0, pool_e = 0, pool_o = 0;
  int bins = 0;
  for (int32_t i = 0; i < V; i++) {
    if (p[i] == 0 && counts[i])
      fail_msg("%s: id %d drawn %ld times, should be cut", what, i, counts[i]);
    double e = (double)n * p[i];
    if (e >= 5) stat += (counts[i] - e) * (counts[i] - e) / e, bins++;
    else pool_e += e, pool_o += (double)counts[i];
  }
  if (pool_e > 0) stat += (pool_o - pool_e) * (pool_o - pool_e) / pool_e, bins++;
  double df = bins - 1, z = 4.753, h = 2 / (9 * df);
  double limit = df * pow(1 - h + z * sqrt(h), 3);
  printf("  %-40s chi2 = %7.2f  df = %3.0f  limit = %6.2f\n", what, stat, df, limit);
  if (!(stat < limit)) fail_msg("%s: chi2 %.2f >= %.2f (df %.0f)", what, stat, limit, df);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_greedy(void **state) {
  (void)state;
  rt_sampling g = sampling(0, 1, 0.1f, 0.5f); /* truncation is ignored when greedy */
  rt_sampler *s = make(&g, 5);
  float a[] = {1, 3, 2, 3, -1};
  assert_int_equal(rt_sampler_sample(s, a, NULL, 0), 1); /* ties: the lowest id */
  float b[] = {NAN, 1, 3, NAN, 3};
  assert_int_equal(rt_sampler_sample(s, b, NULL, 0), 2);
  float c[] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -1e30f};
  assert_int_equal(rt_sampler_sample(s, c, NULL, 0), 4);
  float d[] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  assert_int_equal(rt_sampler_sample(s, d, NULL, 0), 0);
  rt_sampler_free(s);
}

/* One token penalized against a rival just above or below the exact HF value. */
static int32_t penalized_vs(float logit, float penalty, float rival, const int32_t *hist,
                            size_t n) {
  rt_sampling g = rt_sampling_default();
  g.repetition_penalty = penalty;
  rt_sampler *s = make(&g, 3);
  float l[] = {logit, rival, -100};
  int32_t id = rt_sampler_sample(s, l, hist, n);
  rt_sampler_free(s);
  return id;
}

static void test_repetition_penalty(void **state) {
  (void)state;
  const int32_t h0[] = {0}, h000[] = {0, 0, 0, 2, -5, 7, 100000};
  assert_int_equal(penalized_vs(3.0f, 1.5f, 1.999f, h0, 1), 0); /* 3 / 1.5 = 2 */
  assert_int_equal(penalized_vs(3.0f, 1.5f, 2.001f, h0, 1), 1);
  assert_int_equal(penalized_vs(-3.0f, 1.5f, -4.501f, h0, 1), 0); /* -3 * 1.5 = -4.5 */
  assert_int_equal(penalized_vs(-3.0f, 1.5f, -4.499f, h0, 1), 1);
  assert_int_equal(penalized_vs(0.0f, 4.0f, -0.001f, h0, 1), 0); /* 0 stays 0 */
  assert_int_equal(penalized_vs(2.0f, 0.5f, 3.999f, h0, 1), 0);  /* p < 1 boosts: 4 */
  /* a repeated id is penalized once; ids outside the vocabulary are ignored */
  assert_int_equal(penalized_vs(3.0f, 1.5f, 1.999f, h000, 7), 0);
  assert_int_equal(penalized_vs(3.0f, 1.5f, 2.001f, h000, 7), 1);
  assert_int_equal(penalized_vs(3.0f, 1.5f, 2.001f, NULL, 0), 0); /* no history */
}

static void test_top_k(void **state) {
  (void)state;
  float l[] = {5, 4, 3, 2, 1, 0};
  rt_sampling s = sampling(1, 3, 1, 0);
  expect_kept(&s, l, 6, "012");
  s.top_k = 1;
  expect_kept(&s, l, 6, "0");
  s.top_k = 6;
  expect_kept(&s, l, 6, "012345");
  s.top_k = 100;
  expect_kept(&s, l, 6, "012345");
  float ties[] = {3, 2, 2, 2, 1}; /* HF keeps every logit >= the k-th largest */
  s.top_k = 2;
  expect_kept(&s, ties, 5, "0123");
  float top_ties[] = {2, 1, 2};
  s.top_k = 1;
  expect_kept(&s, top_ties, 3, "02");
}

static void test_top_p(void **state) {
  (void)state;
  float flat[] = {0, 0, 0, 0}; /* probabilities exactly 1/4: cumulative 1/4, 1/2, 3/4, 1 */
  rt_sampling s = sampling(1, 0, 0.5f, 0);
  expect_kept(&s, flat, 4, "01"); /* cumulative == top_p exactly: that token ends the prefix */
  s.top_p = 0.75f;
  expect_kept(&s, flat, 4, "012");
  s.top_p = 0.751f;
  expect_kept(&s, flat, 4, "0123");
  s.top_p = 0.25f;
  expect_kept(&s, flat, 4, "0");
  s.top_p = 0.2499f;
  expect_kept(&s, flat, 4, "0");
  s.top_p = 0.2501f;
  expect_kept(&s, flat, 4, "01");
  float holes[] = {0, -INFINITY, 0, 0, 0}; /* -inf has probability 0 and is never kept */
  s.top_p = 0.5f;
  expect_kept(&s, holes, 5, "02");
  float ten[10] = {0}; /* 0.3f is 0.30000001: within the tolerance, three tokens */
  s.top_p = 0.3f;
  expect_kept(&s, ten, 10, "012");
  float l[] = {2, 1, 0, -1}; /* p = .6439 .2369 .0871 .0321, cumulative .6439 .8808 .9679 */
  float want_p[] = {0.6f, 0.65f, 0.88f, 0.89f, 0.96f, 0.97f, 0};
  const char *want[] = {"0", "01", "01", "012", "012", "0123", "0"};
  for (int i = 0; i < 7; i++) {
    s.top_p = want_p[i];
    expect_kept(&s, l, 4, want[i]);
  }
  float unsorted[] = {0, 2, 1}; /* p = .0900 .6652 .2447 */
  s.top_p = 0.7f;
  expect_kept(&s, unsorted, 3, "12");
}

static void test_min_p(void **state) {
  (void)state;
  float l[] = {0, -1, -2, -3}; /* relative to the top: 1 .368 .135 .0498 */
  rt_sampling s = sampling(1, 0, 1, 0.1f);
  expect_kept(&s, l, 4, "012");
  s.min_p = 0.05f;
  expect_kept(&s, l, 4, "012");
  s.min_p = 0.04f;
  expect_kept(&s, l, 4, "0123");
  s.min_p = 1;
  float ties[] = {0, 0, -0.001f};
  expect_kept(&s, ties, 3, "01");
  float pair[] = {0, -1}; /* after temperature 2 the second weighs .607 */
  s = sampling(2, 0, 1, 0.5f);
  expect_kept(&s, pair, 2, "01");
  s.temperature = 1;
  expect_kept(&s, pair, 2, "0");
}

static void test_combined(void **state) {
  (void)state;
  float l[] = {3, 2.5f, 2, 1, 0.5f, 0, -1, -2};
  rt_sampling s = sampling(1, 5, 1, 0);
  expect_kept(&s, l, 8, "01234");
  s.top_p = 0.85f; /* over the top 5: .4562 .2767 .1678 .0617 .0374 */
  expect_kept(&s, l, 8, "012");
  s.min_p = 0.5f; /* then relative weights 1 .607 .368 */
  expect_kept(&s, l, 8, "01");
  /* top-p sees the distribution renormalized after top-k: over {2, 1}
   * p(0) = .731 >= .7, over all four it would be .644 < .7 */
  float m[] = {2, 1, 0, -1};
  s = sampling(1, 2, 0.7f, 0);
  expect_kept(&s, m, 4, "0");
  s.top_k = 0;
  expect_kept(&s, m, 4, "01");
  s = sampling(1, 3, 0.6f, 0.7f); /* k: {0,1,2}; p: {0,1}; min-p: .607 < .7 */
  expect_kept(&s, l, 8, "0");
}

static void test_degenerate_logits(void **state) {
  (void)state;
  float nan_l[] = {NAN, 0, NAN, 0};
  rt_sampling s = sampling(1, 0, 1, 0);
  expect_kept(&s, nan_l, 4, "13");
  float inf_l[] = {1, INFINITY, 2, INFINITY};
  expect_kept(&s, inf_l, 4, "13");
  float dead[] = {-INFINITY, -INFINITY};
  expect_kept(&s, dead, 2, "0");
  s.temperature = 1e-37f; /* 200 / T overflows to +inf: still a valid draw */
  float big[] = {1, 200, 200, 1};
  expect_kept(&s, big, 4, "12");
}

static void test_seeds(void **state) {
  (void)state;
  enum { V = 1000 };
  static float flat[V];
  /* Equal logits weigh exactly 1, so the draw is floor(u * 1000) with u the
   * 53-bit uniform of xoshiro256** seeded by splitmix64: these ids come from
   * an independent transcription checked against the published vectors
   * (xoshiro256** from state {1,2,3,4}: 11520, 0, 1509978240, ...). */
  static const int32_t want42[] = {83, 378, 680, 924, 991, 769, 719, 850, 761, 583, 682, 290};
  static const int32_t want0[] = {601, 747, 103, 416, 732, 999, 422, 535, 855, 918, 114, 67};
  rt_sampling cfg = sampling(1, 0, 1, 0);
  for (int k = 0; k < 2; k++) {
    cfg.seed = k ? 0 : 42;
    rt_sampler *s = make(&cfg, V);
    for (int i = 0; i < 12; i++) {
      float buf[V];
      memcpy(buf, flat, sizeof buf);
      assert_int_equal(rt_sampler_sample(s, buf, NULL, 0), (k ? want0 : want42)[i]);
    }
    rt_sampler_free(s);
  }

  float l[50];
  for (int i = 0; i < 50; i++) l[i] = (float)((i * 37) % 11) * 0.3f;
  rt_sampling a = sampling(0.8f, 20, 0.9f, 0.01f);
  rt_sampler *s1 = make(&a, 50), *s2 = make(&a, 50);
  a.seed++;
  rt_sampler *s3 = make(&a, 50);
  int differ = 0;
  for (int i = 0; i < 1000; i++) {
    float b1[50], b2[50], b3[50];
    memcpy(b1, l, sizeof l), memcpy(b2, l, sizeof l), memcpy(b3, l, sizeof l);
    int32_t t1 = rt_sampler_sample(s1, b1, NULL, 0), t2 = rt_sampler_sample(s2, b2, NULL, 0);
    assert_int_equal(t1, t2);
    differ += t1 != rt_sampler_sample(s3, b3, NULL, 0);
  }
  assert_true(differ > 100);
  rt_sampler_free(s1), rt_sampler_free(s2), rt_sampler_free(s3);
}

static void test_frequencies(void **state) {
  (void)state;
  enum { V = 10, N = 100000 };
  const float l[V] = {1.5f, 0.2f, -0.7f, 2.0f, 1.1f, -2.5f, 0.0f, 0.9f, -1.2f, 1.4f};
  static const struct { const char *what; rt_sampling cfg; } cases[] = {
      {"T=1", {1, 0, 1, 0, 1, 7}},
      {"T=0.7", {0.7f, 0, 1, 0, 1, 8}},
      {"T=1.8", {1.8f, 0, 1, 0, 1, 9}},
      {"top_k=4", {1, 4, 1, 0, 1, 10}},
      {"top_p=0.8", {1, 0, 0.8f, 0, 1, 11}},
      {"min_p=0.2", {1, 0, 1, 0.2f, 1, 12}},
      {"T=0.9 top_k=6 top_p=0.9 min_p=0.1", {0.9f, 6, 0.9f, 0.1f, 1, 13}},
  };
  double p[V];
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    long *counts = draw_counts(&cases[c].cfg, l, V, N, NULL, 0);
    reference(&cases[c].cfg, l, V, p);
    expect_frequencies(counts, p, V, N, cases[c].what);
    free(counts);
  }
  /* penalty then temperature: ids 0 (1.5 -> 1.0) and 2 (-0.7 -> -1.05) */
  const int32_t hist[] = {0, 2, 0};
  rt_sampling pen = {0.5f, 0, 1, 0, 1.5f, 14};
  float lp[V];
  memcpy(lp, l, sizeof lp);
  lp[0] = 1.5f / 1.5f, lp[2] = -0.7f * 1.5f;
  long *counts = draw_counts(&pen, l, V, N, hist, 3);
  reference(&pen, lp, V, p);
  expect_frequencies(counts, p, V, N, "penalty 1.5, T=0.5");
  free(counts);
}

/* Top-p's selection over a few thousand candidates of similar weight, with
 * every logit shared by two ids so that ties straddle the boundary: the
 * kept set must be exactly the reference's (a cut id drawn fails, a kept one
 * never drawn blows the chi-square). */
static void test_top_p_selection(void **state) {
  (void)state;
  enum { V = 2003, N = 25000 };
  float l[V];
  double p[V];
  for (int32_t i = 0; i < V; i++) l[i] = -0.006f * (float)((i * 7919) % 1000);
  static const float ps[] = {0.05f, 0.3f, 0.5f, 0.77f, 0.95f};
  for (int k = 0; k < 5; k++) {
    rt_sampling cfg = sampling(1, 0, ps[k], 0);
    char what[64];
    snprintf(what, sizeof what, "V=2003, ties, top_p=%g", (double)ps[k]);
    long *counts = draw_counts(&cfg, l, V, N, NULL, 0);
    reference(&cfg, l, V, p);
    expect_frequencies(counts, p, V, N, what);
    free(counts);
  }
}

/* OLMo 2's vocabulary: a head of likely tokens over a long flat tail, so that
 * top-p's boundary falls in the head on one setting and deep in the tail on
 * the other; checked against the full-sort reference. */
static void test_large_vocab(void **state) {
  (void)state;
  enum { V = 100352 };
  float *l = malloc(V * sizeof *l);
  double *p = malloc(V * sizeof *p);
  uint64_t x = 88172645463325252u;
  for (int32_t i = 0; i < V; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    l[i] = (float)(x >> 40) / (float)(1 << 24) * 4 - 2; /* uniform in [-2, 2) */
  }
  for (int32_t i = 0; i < 40; i++) l[(i * 2503) % V] = 14 - 0.25f * (float)i;
  static const struct { const char *what; rt_sampling cfg; long n; } cases[] = {
      {"V=100352 top_p=0.9 (head)", {1, 0, 0.9f, 0, 1, 21}, 1000},
      {"V=100352 top_p=0.995 (tail)", {1, 0, 0.995f, 0, 1, 22}, 1000},
      {"V=100352 top_k=30", {1, 30, 1, 0, 1, 23}, 1000},
      {"V=100352 T=1.3 k=64 p=0.8 min_p=0.05", {1.3f, 64, 0.8f, 0.05f, 1, 24}, 1000},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    long *counts = draw_counts(&cases[c].cfg, l, V, cases[c].n, NULL, 0);
    reference(&cases[c].cfg, l, V, p);
    expect_frequencies(counts, p, V, cases[c].n, cases[c].what);
    free(counts);
  }
  free(l);
  free(p);
}

static void test_invalid_settings(void **state) {
  (void)state;
  static const struct { rt_sampling cfg; int32_t vocab; const char *needle; } bad[] = {
      {{1, 0, 1, 0, 1, 0}, 0, "vocab"},          {{-1, 0, 1, 0, 1, 0}, 5, "temperature"},
      {{NAN, 0, 1, 0, 1, 0}, 5, "temperature"},  {{1, -3, 1, 0, 1, 0}, 5, "top_k"},
      {{1, 0, 1.5f, 0, 1, 0}, 5, "top_p"},       {{1, 0, -0.1f, 0, 1, 0}, 5, "top_p"},
      {{1, 0, 1, 2, 1, 0}, 5, "min_p"},          {{1, 0, 1, 0, 0, 0}, 5, "repetition_penalty"},
      {{1, 0, 1, 0, INFINITY, 0}, 5, "repetition_penalty"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rt_sampler *s = (rt_sampler *)&s;
    oc_error e = {{0}};
    assert_int_equal(rt_sampler_new(&bad[i].cfg, bad[i].vocab, &s, &e), -1);
    assert_null(s);
    if (!strstr(e.msg, bad[i].needle))
      fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, bad[i].needle);
  }
}

/* ---- generation_config.json ------------------------------------------------- */

static const char *write_config(const char *text) {
  static char path[512];
  snprintf(path, sizeof path, "%s/generation_config.json", tmpdir);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
  return path;
}

static void test_load(void **state) {
  (void)state;
  rt_sampling s = rt_sampling_default(), before;
  bool found = true;
  oc_error e = {{0}};
  s.seed = 99;
  before = s;
  char missing[600];
  snprintf(missing, sizeof missing, "%s/absent", tmpdir);
  assert_int_equal(rt_sampling_load(tmpdir, &s, &found, &e), 0); /* dir without the file */
  assert_false(found);
  assert_int_equal(rt_sampling_load(missing, &s, &found, &e), 0);
  assert_false(found);
  assert_memory_equal(&s, &before, sizeof s);

  const char *path = write_config("{\"do_sample\": true, \"temperature\": 0.6, \"top_k\": 20, "
                                  "\"top_p\": 0.95, \"min_p\": 0.05, \"repetition_penalty\": 1.1,"
                                  " \"eos_token_id\": 100257}");
  assert_int_equal(rt_sampling_load(tmpdir, &s, &found, &e), 0);
  assert_true(found);
  assert_float_equal(s.temperature, 0.6f, 0), assert_int_equal(s.top_k, 20);
  assert_float_equal(s.top_p, 0.95f, 0), assert_float_equal(s.min_p, 0.05f, 0);
  assert_float_equal(s.repetition_penalty, 1.1f, 0), assert_int_equal(s.seed, 99);

  /* absent keys take transformers' defaults: do_sample false, top_k 50 */
  write_config("{\"temperature\": 0.6, \"top_p\": 0.9, \"repetition_penalty\": 1.2}");
  assert_int_equal(rt_sampling_load(path, &s, &found, &e), 0);
  assert_true(found);
  assert_float_equal(s.temperature, 0, 0), assert_int_equal(s.top_k, 50);
  assert_float_equal(s.top_p, 0.9f, 0), assert_float_equal(s.repetition_penalty, 1.2f, 0);
  write_config("{\"do_sample\": true}");
  assert_int_equal(rt_sampling_load(path, &s, &found, &e), 0);
  assert_float_equal(s.temperature, 1, 0), assert_int_equal(s.top_k, 50);
  assert_float_equal(s.top_p, 1, 0), assert_float_equal(s.min_p, 0, 0);
  /* null switches a step off */
  write_config("{\"do_sample\": true, \"top_k\": null, \"temperature\": null, \"min_p\": null}");
  assert_int_equal(rt_sampling_load(path, &s, &found, &e), 0);
  assert_int_equal(s.top_k, 0), assert_float_equal(s.temperature, 1, 0);
  write_config("{\"do_sample\": false, \"temperature\": 0.7, \"top_k\": 5}");
  assert_int_equal(rt_sampling_load(path, &s, &found, &e), 0);
  assert_float_equal(s.temperature, 0, 0), assert_int_equal(s.top_k, 5);
}

static void test_load_errors(void **state) {
  (void)state;
  static const char *const bad[][3] = {
      {"{\"do_sample\": \"yes\"}", "key 'do_sample': expected true or false", "\"yes\" (a string)"},
      {"{\"temperature\": \"0.7\"}", "key 'temperature': expected a number >= 0", "a string"},
      {"{\"temperature\": -1}", "key 'temperature'", "found -1"},
      {"{\"top_k\": 1.5}", "key 'top_k': expected an integer >= 0", "found 1.5"},
      {"{\"top_k\": -2}", "key 'top_k'", "found -2"},
      {"{\"top_k\": [40]}", "key 'top_k'", "an array"},
      {"{\"top_p\": 1.5}", "key 'top_p': expected a number in [0, 1]", "found 1.5"},
      {"{\"min_p\": true}", "key 'min_p'", "true (a boolean)"},
      {"{\"repetition_penalty\": 0}", "key 'repetition_penalty': expected a number > 0", "found 0"},
      {"{\"repetition_penalty\": 1e-60}", "key 'repetition_penalty'", "found 1e-60"},
      {"{\"temperature\": 1e39}", "key 'temperature'", "found 1e+39"},
      {"[1, 2]", "expected a JSON object", "an array"},
      {"{\"do_sample\": true,\n \"top_p\": 0.9,,}", "malformed JSON at line 2", NULL},
      {"", "malformed JSON", NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rt_sampling s = rt_sampling_default(), before = s;
    bool found = false;
    oc_error e = {{0}};
    const char *path = write_config(bad[i][0]);
    assert_int_equal(rt_sampling_load(tmpdir, &s, &found, &e), -1);
    assert_memory_equal(&s, &before, sizeof s); /* untouched on error */
    if (strncmp(e.msg, path, strlen(path)) != 0 || !strstr(e.msg, bad[i][1]) ||
        (bad[i][2] && !strstr(e.msg, bad[i][2])))
      fail_msg("case %zu: message '%s'", i, e.msg);
  }
}

static int setup(void **state) {
  (void)state;
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char path[600];
  snprintf(path, sizeof path, "%s/generation_config.json", tmpdir);
  unlink(path);
  rmdir(tmpdir);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_greedy),          cmocka_unit_test(test_repetition_penalty),
      cmocka_unit_test(test_top_k),           cmocka_unit_test(test_top_p),
      cmocka_unit_test(test_min_p),           cmocka_unit_test(test_combined),
      cmocka_unit_test(test_degenerate_logits), cmocka_unit_test(test_seeds),
      cmocka_unit_test(test_frequencies),     cmocka_unit_test(test_top_p_selection),
      cmocka_unit_test(test_large_vocab),
      cmocka_unit_test(test_invalid_settings), cmocka_unit_test(test_load),
      cmocka_unit_test(test_load_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
