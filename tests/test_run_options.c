/* olmoc run's llama.cpp-style options, end to end on the bundled model: the
 * aliases give what the long options give; stop strings end the output right
 * before them, even split across tokens, and hold back nothing that cannot
 * stop; --n-probs reports the model's own log-softmax (what `olmoc logits`
 * gives) of each generated token and its top alternatives, sorted; the
 * timings carry the time to the first token; --verbose-prompt, --ignore-eos,
 * --mlock and --no-mmap do what they say. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>

#include "cli_harness.h"

#define GREEDY "run -p 'The jury said' --temp 0 --repeat-penalty 1"

/* stdout of `olmoc ARGS` alone (stderr dropped), malloc'ed; the exit code must be 0. */
static char *stdout_of(const char *fmt, ...) {
  char args[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  strncat(args, " 2>/dev/null", sizeof args - strlen(args) - 1);
  if (olmoc(args))
    fail_msg("olmoc %s failed:\n%s", args, out);
  char *copy = strdup(out);
  assert_non_null(copy);
  return copy;
}

/* s quoted for the shell, in a static buffer (one at a time). */
static const char *quoted(const char *s) {
  static char buf[2][1024];
  static int which;
  char *q = buf[which ^= 1];
  size_t n = 0;
  q[n++] = '\'';
  for (; *s && n + 5 < sizeof buf[0]; s++)
    n += (size_t)(*s == '\'' ? snprintf(q + n, 5, "'\\''") : snprintf(q + n, 2, "%c", *s));
  q[n++] = '\'';
  q[n] = '\0';
  return q;
}

static void expect_same(const char *want, const char *args) {
  char *got = stdout_of("%s", args);
  if (strcmp(got, want))
    fail_msg("olmoc %s wrote\n%s\ninstead of\n%s", args, got, want);
  free(got);
}

static char *write_file(const char *name, const char *text) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static void test_aliases(void **state) {
  (void)state;
  char *base = stdout_of(GREEDY " -n 12 --ctx 64");
  assert_true(strlen(base) > strlen("The jury said") + 10);
  expect_same(base, GREEDY " -n 12 -c 64");
  expect_same(base, GREEDY " -n 12 --ctx-size 64");
  expect_same(base, GREEDY " --n-predict 12 --ctx 64");
  char args[1024];
  snprintf(args, sizeof args, "run -f %s --temp 0 --repeat-penalty 1 -n 12 -c 64",
           write_file("prompt.txt", "The jury said\n")); /* the editor's final newline goes */
  expect_same(base, args);
  expect_same(base + strlen("The jury said"), GREEDY " -n 12 --no-display-prompt");
  free(base);

  char *system = stdout_of("run --chat-template olmo2 -p Hi -n 8 --temp 0 --system 'Be brief.'");
  snprintf(args, sizeof args, "run --chat-template olmo2 -p Hi -n 8 --temp 0 --system-prompt-file %s",
           write_file("system.txt", "Be brief.\n"));
  expect_same(system, args);
  strncat(args, " --verbose-prompt", sizeof args - strlen(args) - 1);
  assert_int_equal(olmoc(args), 0);
  expect_output("<|system|>\\nBe brief.\\n<|user|>"); /* the rendered prompt, as a JSON string */
  free(system);

  assert_int_equal(olmoc("run -p 'The jury said' -c 2"), 1);
  expect_output("the context holds 2 positions");
  snprintf(args, sizeof args, "run -p x -f %s/prompt.txt", tmpdir);
  assert_int_equal(olmoc(args), 1);
  expect_output("-p and -f both give the prompt: give one");
  assert_int_equal(olmoc("run -f /nonexistent.txt"), 1);
  expect_output("-f: /nonexistent.txt: cannot open");
  assert_int_equal(olmoc("run -p x --system a --system-prompt-file /dev/null"), 1);
  expect_output("--system and --system-prompt-file both give the system message");
  assert_int_equal(olmoc("run -p x --stop ''"), 1);
  expect_output("the empty string would stop before any text");
  assert_int_equal(olmoc("run -p x --n-probs 101"), 2);
  expect_output("--n-probs: expected an integer in [0, 100]");
}

/* The generated tokens of a --json run, as a cJSON array of its lines. */
static cJSON *json_lines(const char *text) {
  cJSON *all = cJSON_CreateArray();
  for (const char *line = text; *line;) {
    const char *end = strchr(line, '\n');
    assert_non_null(end);
    cJSON *j = cJSON_ParseWithLength(line, (size_t)(end - line));
    if (!j)
      fail_msg("not JSON: %.*s", (int)(end - line), line);
    cJSON_AddItemToArray(all, j);
    line = end + 1;
  }
  return all;
}

static const char *text_of(const cJSON *j) { return cJSON_GetObjectItem(j, "text")->valuestring; }

static void test_stop_strings(void **state) {
  (void)state;
  char *full = stdout_of(GREEDY " -n 24"), *json = stdout_of(GREEDY " -n 24 --json");
  const char *generated = full + strlen("The jury said");
  cJSON *tokens = json_lines(json);
  int n = cJSON_GetArraySize(tokens);
  assert_int_equal(n, 24);
  /* a stop string of two bytes, the last of one token and the first of the
   * next, at its first occurrence in the generated text, after some of it */
  char stop[3] = "";
  size_t at = 0, end = 0;
  int k = 0;
  for (; k + 1 < n && !stop[0]; k++) {
    const char *a = text_of(cJSON_GetArrayItem(tokens, k)), *b = text_of(cJSON_GetArrayItem(tokens, k + 1));
    end += strlen(a);
    if (!*a || !*b)
      continue;
    char s[3] = {a[strlen(a) - 1], b[0], 0};
    const char *first = strstr(generated, s);
    if (first && (size_t)(first - generated) == end - 1 && end > 8)
      memcpy(stop, s, 3), at = end - 1;
  }
  assert_true(stop[0]);
  print_message("stop string '%s' between tokens %d and %d\n", stop, k - 1, k);
  char args[256], want[4096];
  snprintf(want, sizeof want, "The jury said%.*s", (int)at, generated);
  snprintf(args, sizeof args, GREEDY " -n 24 --stop %s", quoted(stop));
  expect_same(want, args);
  assert_int_equal(olmoc(args), 0);
  expect_output("stop: stop string");
  /* -r is the same list; the earliest match wins; with --json only the
   * tokens wholly before the stop string are reported */
  snprintf(args, sizeof args, GREEDY " -n 24 -r zzz --reverse-prompt %s --stop %s", quoted(generated + at + 1),
           quoted(stop));
  expect_same(want, args);
  snprintf(args, sizeof args, GREEDY " -n 24 --json --stop %s", quoted(stop));
  char *cut = stdout_of("%s", args);
  cJSON *reported = json_lines(cut);
  assert_int_equal(cJSON_GetArraySize(reported), k - 1);
  cJSON_Delete(reported);
  free(cut);
  /* never matched: nothing changes, even a string whose start ends the text */
  expect_same(full, GREEDY " -n 24 --stop 'zzzqqq'");
  size_t len = strlen(full);
  char tail[8];
  snprintf(tail, sizeof tail, "%c%cqqq", full[len - 2], full[len - 1]);
  snprintf(args, sizeof args, GREEDY " -n 24 --stop %s", quoted(tail));
  expect_same(full, args);
  cJSON_Delete(tokens);
  free(json);
  free(full);
}

/* The model's log-softmax of one row of logits, in double. */
static void log_softmax(const float *row, int64_t vocab, double *out) {
  double max = row[0], sum = 0;
  for (int64_t i = 1; i < vocab; i++)
    max = fmax(max, row[i]);
  for (int64_t i = 0; i < vocab; i++)
    sum += exp(row[i] - max);
  for (int64_t i = 0; i < vocab; i++)
    out[i] = row[i] - max - log(sum);
}

static void test_n_probs(void **state) {
  (void)state;
  enum { N = 6, TOP = 5 };
  char *json = stdout_of(GREEDY " --backend interp -t 1 -n %d --json --n-probs %d", N, TOP);
  cJSON *tokens = json_lines(json);
  assert_int_equal(cJSON_GetArraySize(tokens), N);
  /* the logits of every position: the prompt, then all generated tokens but the last */
  char ids[512] = "459,504,1145,556", args[1024], path[256];
  int n_prompt = 4;
  for (int i = 0; i + 1 < N; i++)
    snprintf(ids + strlen(ids), sizeof ids - strlen(ids), ",%d",
             cJSON_GetObjectItem(cJSON_GetArrayItem(tokens, i), "token")->valueint);
  snprintf(path, sizeof path, "%s/l.npy", tmpdir);
  snprintf(args, sizeof args, "logits --backend interp -t 1 --ids %s -o %s", ids, path);
  assert_int_equal(olmoc(args), 0);
  size_t bytes;
  char *npy = slurp(path, &bytes);
  size_t header = 10 + (size_t)(unsigned char)npy[8] + 256u * (unsigned char)npy[9];
  int64_t vocab = (int64_t)((bytes - header) / sizeof(float)) / (n_prompt + N - 1);
  assert_int_equal(vocab, 4096);
  double *lp = malloc((size_t)vocab * sizeof *lp);
  float *row = malloc((size_t)vocab * sizeof *row);
  for (int i = 0; i < N; i++) {
    memcpy(row, npy + header + (size_t)(n_prompt - 1 + i) * (size_t)vocab * sizeof(float),
           (size_t)vocab * sizeof(float));
    log_softmax(row, vocab, lp);
    const cJSON *t = cJSON_GetArrayItem(tokens, i), *top = cJSON_GetObjectItem(t, "top");
    int id = cJSON_GetObjectItem(t, "token")->valueint;
    assert_int_equal(cJSON_GetArraySize(top), TOP);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(top, 0), "token")->valueint, id); /* greedy */
    assert_true(fabs(cJSON_GetObjectItem(t, "logprob")->valuedouble - lp[id]) <= 1e-5);
    double previous = 0;
    for (int j = 0; j < TOP; j++) {
      const cJSON *alt = cJSON_GetArrayItem(top, j);
      int alt_id = cJSON_GetObjectItem(alt, "token")->valueint;
      double x = cJSON_GetObjectItem(alt, "logprob")->valuedouble;
      assert_true(fabs(x - lp[alt_id]) <= 1e-5);
      assert_true(j == 0 || x <= previous);
      previous = x;
    }
  }
  free(lp), free(row), free(npy);
  cJSON_Delete(tokens);
  free(json);
  /* without --json: the text on stdout as always, a line per token on stderr */
  char *text = stdout_of(GREEDY " -n %d", N);
  expect_same(text, GREEDY " -n 6 --n-probs 2");
  assert_int_equal(olmoc(GREEDY " -n 6 --n-probs 2 2>&1 >/dev/null"), 0);
  int lines = 0;
  for (const char *p = out; (p = strstr(p, "\ntoken ")) || (p == out && !strncmp(out, "token ", 6)); p++)
    lines++;
  assert_int_equal(lines + !strncmp(out, "token ", 6), N);
  expect_output(": logprob -");
  expect_output("| top: ");
  free(text);
}

static void test_timings_and_prompt(void **state) {
  (void)state;
  assert_int_equal(olmoc(GREEDY " -n 4 --verbose-prompt"), 0);
  expect_output("| ttft: ");
  expect_output(" ms | generation: 4 tokens");
  expect_output("prompt: \"The jury said\"\nprompt: 4 tokens, 0 of them already in the KV cache\n");
  expect_output("     459 \"The\"\n     504 \" j\"\n    1145 \"ury\"\n     556 \" said\"\n");
}

/* Sampling that ends on the end-of-sequence token within 200 tokens does not
 * with --ignore-eos (a seed that does is looked for, so no seed is baked in). */
static void test_ignore_eos(void **state) {
  (void)state;
  char args[256];
  int seed = 1;
  for (; seed <= 40; seed++) {
    snprintf(args, sizeof args, "run -p 'The jury said.' -n 200 --temp 1.5 --seed %d", seed);
    assert_int_equal(olmoc(args), 0);
    if (strstr(out, "stop: end of sequence"))
      break;
  }
  assert_true(seed <= 40);
  strncat(args, " --ignore-eos", sizeof args - strlen(args) - 1);
  assert_int_equal(olmoc(args), 0);
  expect_output("generation: 200 tokens");
  expect_output("stop: token limit");
  assert_null(strstr(out, "<|endoftext|>"));
}

static void test_memory_options(void **state) {
  (void)state;
  char *base = stdout_of(GREEDY " -n 8");
  expect_same(base, GREEDY " -n 8 --no-mmap");
  expect_same(base, GREEDY " -n 8 --no-mmap --backend interp");
  expect_same(base, GREEDY " -n 8 --mlock");
  /* a lock refused names the limit; the run goes on (root is refused only
   * without CAP_IPC_LOCK: setpriv drops it) */
  const char *prefix = getuid() == 0 ? "setpriv --bounding-set -ipc_lock sh -c 'ulimit -l 0; exec \"$0\" \"$@\"'"
                                     : "ulimit -l 0;";
#ifdef __SANITIZE_ADDRESS__
  bool asan = true; /* its mlockall is a no-op that succeeds: it would lock the shadow memory */
#else
  bool asan = false;
#endif
  if (asan || (getuid() == 0 && system("setpriv --bounding-set -ipc_lock true 2>/dev/null"))) {
    print_message("skipped the refused lock: %s\n", asan ? "AddressSanitizer's mlockall never refuses" : "no setpriv here");
  } else {
    assert_int_equal(olmoc_after(prefix, GREEDY " -n 8 --mlock"), 0);
    expect_output("warning: --mlock: cannot lock the model in memory");
    expect_output("`ulimit -l`, is 0 KiB");
  }
  free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_aliases),
      cmocka_unit_test(test_stop_strings),
      cmocka_unit_test(test_n_probs),
      cmocka_unit_test(test_timings_and_prompt),
      cmocka_unit_test(test_ignore_eos),
      cmocka_unit_test(test_memory_options),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
