/* `olmoc perplexity` and `olmoc logits` on the bundled model: both run on
 * the JIT by default (its bits, not the interpreter's); perplexity's figure,
 * its ± and the running figure after each window equal what this test
 * computes itself from the logits `olmoc logits` writes for the same
 * windows, with the standard error written out from its definition. */
#include <math.h>

#include "cli_harness.h"

#define MODEL "models/olmo2-tiny"
#define VOCAB 4096
#define CTX 512 /* the model's context: perplexity's window, logits' largest call */
#define HELDOUT MODEL "/heldout.txt"

/* The f32 rows of the .npy file `olmoc logits ARGS -o FILE` writes. */
static float *logits_of(const char *args, size_t *rows) {
  char cmd[3400], path[256]; /* room for a window's ids, and for cli_harness' command around them */
  snprintf(path, sizeof path, "%s/l.npy", tmpdir);
  snprintf(cmd, sizeof cmd, "logits -m " MODEL " %s -o %s", args, path);
  if (olmoc(cmd))
    fail_msg("olmoc %.200s...:\n%s", cmd, out);
  size_t n;
  char *npy = slurp(path, &n);
  size_t header = 10 + (size_t)(unsigned char)npy[8] + 256u * (unsigned char)npy[9];
  assert_int_equal((n - header) % (VOCAB * sizeof(float)), 0);
  *rows = (n - header) / (VOCAB * sizeof(float));
  float *x = malloc(n - header);
  memcpy(x, npy + header, n - header);
  free(npy);
  return x;
}

/* The number after `prefix` in `out`. */
static double printed(const char *prefix) {
  const char *at = strstr(out, prefix);
  if (!at)
    fail_msg("no \"%s\" in:\n%s", prefix, out);
  return atof(at + strlen(prefix));
}

/* Without --backend, logits are the JIT's bits, not the interpreter's. */
static void test_logits_default_jit(void **state) {
  (void)state;
  size_t n;
  float *jit = logits_of("--backend jit -p 'The jury said that the city is'", &n);
  float *interp = logits_of("--backend interp -p 'The jury said that the city is'", &n);
  float *plain = logits_of("-p 'The jury said that the city is'", &n);
  assert_memory_equal(plain, jit, n * VOCAB * sizeof(float));
  assert_true(memcmp(plain, interp, n * VOCAB * sizeof(float)) != 0);
  free(jit), free(interp), free(plain);
}

/* Without --backend, perplexity runs where only the JIT can (q8 weights)
 * and prints what --backend jit prints. */
static void test_perplexity_default_jit(void **state) {
  (void)state;
  assert_int_equal(olmoc("perplexity -f " HELDOUT " --max-tokens 1024 --dtype q8 --backend jit"), 0);
  double ppl = printed("perplexity: "), error = printed(" ± ");
  assert_int_equal(olmoc("perplexity -f " HELDOUT " --max-tokens 1024 --dtype q8"), 0);
  assert_true(printed("perplexity: ") == ppl && printed(" ± ") == error);
  assert_int_equal(olmoc("perplexity -f " HELDOUT " --max-tokens 1024 --dtype q8 --backend interp"), 1);
}

/* The first n ids of the held-out text, as "1,2,3" per window of CTX. */
static char (*windows_of(int n))[CTX * 6] {
  assert_int_equal(olmoc("tokenize --ids-only -f " HELDOUT), 0);
  char (*w)[CTX * 6] = calloc((size_t)(n / CTX), sizeof *w);
  const char *p = out;
  for (int i = 0; i < n; i++) {
    char *end;
    long id = strtol(p, &end, 10);
    assert_true(end > p && id >= 0 && id < VOCAB);
    size_t len = strlen(w[i / CTX]);
    snprintf(w[i / CTX] + len, sizeof *w - len, "%s%ld", i % CTX ? "," : "", id);
    p = end + 1;
  }
  return w;
}

/* -log softmax(row)[target], in double. */
static double nll(const float *row, long target) {
  double max = row[0], sum = 0;
  for (int v = 1; v < VOCAB; v++)
    max = fmax(max, row[v]);
  for (int v = 0; v < VOCAB; v++)
    sum += exp((double)row[v] - max);
  return log(sum) + max - (double)row[target];
}

/* Perplexity, ± and the figure after the first window against the same
 * computed here from `olmoc logits` of each window (JIT, the same program):
 * NLL of tokens 1..CTX-1 given the ones before; ppl = exp(mean NLL); its
 * standard error by the delta method, ppl * sd(NLL) / sqrt(N - 1) with
 * sd over the N tokens (two passes here: mean, then squared deviations). */
static void test_standard_error(void **state) {
  (void)state;
  enum { WINDOWS = 2, N = WINDOWS * (CTX - 1) };
  char (*w)[CTX * 6] = windows_of(WINDOWS * CTX);
  static double x[N];
  double sum = 0, first = 0;
  for (int k = 0; k < WINDOWS; k++) {
    char args[CTX * 6 + 32];
    snprintf(args, sizeof args, "--ids %s", w[k]);
    size_t rows;
    float *l = logits_of(args, &rows);
    assert_int_equal(rows, CTX);
    const char *p = w[k];
    strtol(p, (char **)&p, 10);
    for (int i = 1; i < CTX; i++) {
      long target = strtol(p + 1, (char **)&p, 10);
      x[k * (CTX - 1) + i - 1] = nll(l + (size_t)(i - 1) * VOCAB, target);
      sum += x[k * (CTX - 1) + i - 1];
    }
    if (k == 0)
      first = exp(sum / (CTX - 1));
    free(l);
  }
  double mean = sum / N, squares = 0;
  for (int i = 0; i < N; i++)
    squares += (x[i] - mean) * (x[i] - mean);
  double ppl = exp(mean), error = ppl * sqrt(squares / N) / sqrt(N - 1.0);

  assert_int_equal(olmoc_after("OLMOC_PROGRESS_DELAY=0", "perplexity -f " HELDOUT " --max-tokens 1024"), 0);
  expect_output("over 1022 predicted tokens (2 windows of 512 tokens)");
  printf("perplexity %.4f ± %.4f (computed %.6f ± %.6f), first window %.4f\n", printed("perplexity: "),
         printed(" ± "), ppl, error, first);
  assert_true(fabs(printed("perplexity: ") - ppl) <= 0.6e-4);
  assert_true(fabs(printed(" ± ") - error) <= 0.6e-4);
  assert_true(error > 0.01 * ppl && error < 0.2 * ppl); /* ~1000 tokens of ~2.4 nats' spread */
  /* the running figures, through a pipe: after the first window, and the last */
  assert_true(fabs(printed("perplexity [1/2 windows] ") - first) <= 0.6e-4);
  assert_true(fabs(printed("perplexity [2/2 windows] ") - ppl) <= 0.6e-4);
  assert_int_equal(olmoc_after("OLMOC_PROGRESS_DELAY=0", "perplexity -q -f " HELDOUT " --max-tokens 1024"), 0);
  assert_null(strstr(out, "perplexity ["));
  assert_true(fabs(printed("perplexity: ") - ppl) <= 0.6e-4);
  free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_logits_default_jit),
      cmocka_unit_test(test_perplexity_default_jit),
      cmocka_unit_test(test_standard_error),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
