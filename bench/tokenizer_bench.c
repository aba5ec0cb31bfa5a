/* Tokenizer throughput on a text file, one thread: encode the whole text in
 * one call, then one call per line (as prompts arrive), then decode; each the
 * best of RUNS, in MB/s of text by the wall clock and by the thread's CPU
 * time (steadier on a busy machine). bench/tokenizer_bench.sh runs it beside
 * the reference tokenizers on the same text.
 *
 *   tokenizer_bench TEXT_FILE [RUNS [TOKENIZER_JSON]]
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "olmoc/tokenizer.h"

typedef struct bench {
  const rt_tokenizer *t;
  const char *text;
  size_t len;
  int32_t *ids; /* the whole text's, kept for decoding */
  size_t n_ids;
  size_t calls;
} bench;

static double clock_s(clockid_t which) {
  struct timespec ts;
  clock_gettime(which, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int encode_whole(bench *b, oc_error *e) {
  free(b->ids);
  b->calls = 1;
  return rt_tokenizer_encode(b->t, b->text, b->len, &b->ids, &b->n_ids, e);
}

static int encode_lines(bench *b, oc_error *e) {
  b->calls = 0;
  for (size_t at = 0; at < b->len; b->calls++) {
    const char *nl = memchr(b->text + at, '\n', b->len - at);
    size_t end = nl ? (size_t)(nl - b->text) + 1 : b->len, n;
    int32_t *ids;
    if (rt_tokenizer_encode(b->t, b->text + at, end - at, &ids, &n, e) != 0) return -1;
    free(ids);
    at = end;
  }
  return 0;
}

static int decode(bench *b, oc_error *e) {
  char *back;
  size_t len;
  if (rt_tokenizer_decode(b->t, b->ids, b->n_ids, &back, &len, e) != 0) return -1;
  int same = len == b->len && memcmp(back, b->text, len) == 0;
  free(back);
  if (!same) snprintf(e->msg, sizeof e->msg, "does not give the text back (is it UTF-8?)");
  return same ? 0 : -1;
}

/* Best wall and CPU seconds of runs calls of fn. */
static int measure(int (*fn)(bench *, oc_error *), bench *b, int runs, double *wall, double *cpu,
                   oc_error *e) {
  *wall = *cpu = 1e30;
  for (int r = 0; r < runs; r++) {
    double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    if (fn(b, e) != 0) return -1;
    double w = clock_s(CLOCK_MONOTONIC) - w0, c = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    if (w < *wall) *wall = w;
    if (c < *cpu) *cpu = c;
  }
  return 0;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) free(buf), buf = NULL;
  fclose(f);
  if (buf) buf[n] = 0, *len = (size_t)n;
  return buf;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: %s TEXT_FILE [RUNS [TOKENIZER_JSON]]\n", argv[0]);
    return 2;
  }
  const char *text_path = argv[1];
  int runs = argc > 2 && atoi(argv[2]) > 0 ? atoi(argv[2]) : 5;
  const char *tok_path = argc > 3 ? argv[3] : "models/olmo2-tokenizer/tokenizer.json";

  oc_error e;
  rt_tokenizer *t;
  double w0 = clock_s(CLOCK_MONOTONIC);
  if (rt_tokenizer_load(tok_path, &t, &e) != 0) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  double load = clock_s(CLOCK_MONOTONIC) - w0;
  bench b = {.t = t};
  if (!(b.text = read_file(text_path, &b.len))) {
    fprintf(stderr, "%s: cannot read\n", text_path);
    rt_tokenizer_free(t);
    return 1;
  }
  double mb = b.len / 1e6;
  printf("tokenizer %s (loaded in %.0f ms)\ntext %s: %.2f MB; best of %d runs\n", tok_path,
         load * 1e3, text_path, mb, runs);

  static const struct {
    const char *name;
    int (*fn)(bench *, oc_error *);
  } steps[] = {{"encode, whole text", encode_whole}, {"encode, per line", encode_lines},
               {"decode", decode}};
  int rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++) {
    double wall, cpu;
    if (measure(steps[i].fn, &b, runs, &wall, &cpu, &e) != 0) {
      fprintf(stderr, "%s: %s\n", steps[i].name, e.msg);
      rc = 1;
      break;
    }
    printf("%-20s %7.1f MB/s wall  %7.1f MB/s cpu", steps[i].name, mb / wall, mb / cpu);
    if (i == 0)
      printf("  (%zu tokens, %.2f bytes/token)", b.n_ids, (double)b.len / b.n_ids);
    if (i == 1) printf("  (%zu calls)", b.calls);
    printf("\n");
  }
  free(b.ids);
  free((char *)b.text);
  rt_tokenizer_free(t);
  return rc;
}
