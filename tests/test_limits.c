/* Limits on what files may ask for, at their exact edges. Every JSON file
 * olmoc reads (config.json, tokenizer.json, a safetensors header, the shard
 * index, tokenizer_config.json, generation_config.json) nests at most 1000
 * levels deep: cJSON's CJSON_NESTING_LIMIT, so parsing and freeing, both
 * recursive, stay far from the end of the stack; 1000 levels parse, 1001
 * and 100000 are malformed JSON. The memory planner's sizes come from
 * config.json (context up to 2^24) and flags: its search for each value's
 * largest call takes O(log T) steps and agrees with trying every T, and a
 * plan whose values would total more than 2^62 bytes is an error, not an
 * int64_t overflow. tokenizer.json's Sequences (of pre-tokenizers, of
 * post-processors), read recursively, nest at most 4 deep. (Other limits have their tests beside their loaders:
 * the 100 MB safetensors header in test_weights.c, config sizes in
 * test_olmo2_config.c, IR dims in test_ir_text.c, token ids and texts in
 * test_tokenizer.c.) A FIFO where a file is expected is refused, not
 * waited on; standard input is read up to CLI_TEXT_MAX_BYTES. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "cli_harness.h"
#include "olmoc/args.h"
#include "olmoc/chat.h"
#include "olmoc/machine.h"
#include "olmoc/olmo2.h"
#include "olmoc/plan.h"
#include "olmoc/sampler.h"
#include "olmoc/tokenizer.h"
#include "olmoc/weights.h"

/* printf into a malloc'ed string. */
__attribute__((format(printf, 1, 2))) static char *str(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = malloc((size_t)n + 1);
  assert_non_null(s);
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* `depth` arrays, one inside the other: [[[...]]]. */
static char *nested(int depth) {
  char *s = malloc(2 * (size_t)depth + 1);
  assert_non_null(s);
  memset(s, '[', (size_t)depth);
  memset(s + depth, ']', (size_t)depth);
  s[2 * depth] = '\0';
  return s;
}

static void expect(int rc, const oc_error *e, const char *part) {
  if (!part) {
    if (rc)
      fail_msg("unexpected error: %s", e->msg);
    return;
  }
  assert_int_equal(rc, -1);
  if (!strstr(e->msg, part))
    fail_msg("error \"%s\" does not mention \"%s\"", e->msg, part);
}

/* A JSON file olmoc reads, the text written to it around a value ("%s"),
 * and what loading it says at 1000 levels of nesting and past them (NULL:
 * it loads). */
typedef struct loader {
  const char *file, *format;
  int (*load)(const char *path, const char *json, oc_error *e);
  const char *at_limit, *past_limit;
} loader;

static int load_config(const char *path, const char *json, oc_error *e) {
  (void)path;
  olmo2_config c;
  return olmo2_config_parse(json, "config.json", &c, e);
}

static int load_tokenizer(const char *path, const char *json, oc_error *e) {
  (void)path;
  rt_tokenizer *t = NULL;
  int rc = rt_tokenizer_parse(json, strlen(json), "tokenizer.json", &t, e);
  rt_tokenizer_free(t);
  return rc;
}

static int load_weights(const char *path, const char *json, oc_error *e) {
  (void)json;
  rt_weights *w = NULL;
  int rc = rt_weights_open(path, &w, e);
  rt_weights_close(w);
  return rc;
}

static int load_chat(const char *path, const char *json, oc_error *e) {
  (void)json;
  rt_chat_template t;
  return rt_chat_template_load(path, &t, e);
}

static int load_generation(const char *path, const char *json, oc_error *e) {
  (void)json;
  rt_sampling s = rt_sampling_default();
  bool found;
  return rt_sampling_load(path, &s, &found, e);
}

static const loader loaders[] = {
    {"config.json", "{\"x\": %s}", load_config, "key 'architectures' is missing",
     "malformed JSON at line 1"},
    {"tokenizer.json", "{\"x\": %s}", load_tokenizer, "model is missing", "malformed JSON at line 1"},
    {"x.safetensors", "{\"x\": %s}", load_weights, "tensor 'x': entry is not a JSON object",
     "header is not valid JSON"},
    {"model.safetensors.index.json", "{\"x\": %s, \"weight_map\": {}}", load_weights,
     "\"weight_map\" lists no tensors", "index is not valid JSON"},
    {"tokenizer_config.json", "{\"x\": %s}", load_chat, "no chat_template", "malformed JSON at line 1"},
    {"generation_config.json", "{\"x\": %s}", load_generation, NULL, "malformed JSON at line 1"},
};

/* Writes l's file around value and loads it. */
static int load(const loader *l, const char *value, oc_error *e) {
  char *json = str(l->format, value);
  size_t n = strlen(json), header = strstr(l->file, ".safetensors") == l->file + 1 ? 8 : 0;
  char *file = malloc(n + header);
  assert_non_null(file);
  for (size_t i = 0; i < header; i++) /* a safetensors header's length, little-endian */
    file[i] = (char)((uint64_t)n >> (8 * i));
  memcpy(file + header, json, n);
  int rc = l->load(tmp_file(l->file, file, n + header), json, e);
  free(file);
  free(json);
  return rc;
}

/* The top object and 999 arrays are 1000 levels; one more is refused, and
 * 100000 are refused as quickly, without recursing that deep. */
static void test_json_nesting(void **state) {
  (void)state;
  char *at = nested(999), *past = nested(1000), *deep = nested(100000);
  for (size_t i = 0; i < sizeof loaders / sizeof *loaders; i++) {
    const loader *l = &loaders[i];
    oc_error e = {{0}};
    print_message("%s\n", l->file);
    expect(load(l, at, &e), &e, l->at_limit);
    expect(load(l, past, &e), &e, l->past_limit);
    expect(load(l, deep, &e), &e, l->past_limit);
  }
  free(at);
  free(past);
  free(deep);
}

/* ---- tokenizer.json's own nesting: Sequences of pre-tokenizers and of
 * post-processors (each read recursively) nest at most 4 deep ---- */

/* The bundled tokenizer.json with its pre_tokenizer (a Sequence) inside
 * `wrap` more Sequences, and a post_processor of `post` Sequences around a
 * ByteLevel; what loading it says. */
static int load_nested_tokenizer(int wrap, int post, oc_error *e) {
  FILE *f = fopen("models/olmo2-tiny/tokenizer.json", "rb");
  assert_non_null(f);
  static char text[1 << 20];
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  cJSON *root = cJSON_Parse(text), *pt = cJSON_DetachItemFromObject(root, "pre_tokenizer");
  assert_non_null(pt);
  for (int i = 0; i < wrap; i++) {
    cJSON *seq = cJSON_CreateObject();
    cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(seq, "pretokenizers"), pt);
    pt = seq;
  }
  cJSON_AddItemToObject(root, "pre_tokenizer", pt);
  cJSON *pp = cJSON_CreateObject();
  cJSON_AddStringToObject(pp, "type", "ByteLevel");
  for (int i = 0; i < post; i++) {
    cJSON *seq = cJSON_CreateObject();
    cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(seq, "processors"), pp);
    pp = seq;
  }
  cJSON_ReplaceItemInObject(root, "post_processor", pp);
  char *json = cJSON_PrintUnformatted(root);
  rt_tokenizer *t = NULL;
  int rc = rt_tokenizer_parse(json, strlen(json), "tokenizer.json", &t, e);
  rt_tokenizer_free(t);
  cJSON_free(json);
  cJSON_Delete(root);
  return rc;
}

static void test_tokenizer_sequences(void **state) {
  (void)state;
  oc_error e;
  expect(load_nested_tokenizer(3, 4, &e), &e, NULL); /* Sequences at depths 0 to 3 */
  expect(load_nested_tokenizer(4, 0, &e), &e,
         "tokenizer.json: pre_tokenizer.pretokenizers[0].pretokenizers[0].pretokenizers[0]"
         ".pretokenizers[0]: Sequences nested more than 4 deep (not supported)");
  expect(load_nested_tokenizer(0, 5, &e), &e,
         "tokenizer.json: post_processor: Sequences nested more than 4 deep (not supported)");
}

/* ---- the memory planner ---- */

static int64_t brute_force(const ir_type *t, int64_t max_tokens, int64_t max_ctx) {
  int64_t worst = 0;
  for (int64_t T = 1; T <= max_tokens; T++) {
    int64_t n = 4;
    for (int i = 0; i < t->shape.rank; i++)
      n *= ir_dim_eval(t->shape.dim[i], T, max_ctx - T);
    worst = n > worst ? n : worst;
  }
  return worst;
}

/* Random shapes of dims c + t*T + p*P, each non-negative over the range
 * (some shrinking with T, so a product peaks inside it): the planner's
 * bytes for each value are the most any allowed call takes. */
static void test_plan_peak(void **state) {
  (void)state;
  const int64_t max_tokens = 300, max_ctx = 500;
  uint64_t rng = 42;
  for (int trial = 0; trial < 200; trial++) {
    ir_graph *g = ir_graph_new();
    assert_non_null(g);
    ir_type types[8];
    for (int v = 0; v < 8; v++) {
      ir_type *t = &types[v];
      *t = (ir_type){IR_F32, {.rank = 1 + (int)(rng % 4)}};
      for (int i = 0; i < t->shape.rank; i++) {
        rng = rng * 6364136223846793005u + 1442695040888963407u;
        int32_t tc = (int32_t)(rng >> 40) % 5 - 2, pc = (int32_t)(rng >> 50) % 3;
        /* at P = max_ctx - T the dim is c + pc*max_ctx + (tc - pc)*T: c keeps
         * it >= 0 at T = 1 and T = max_tokens, so everywhere between */
        int64_t slope = tc - pc, lowest = pc * max_ctx + (slope < 0 ? slope * max_tokens : slope);
        int64_t c = (int64_t)(rng >> 33) % 7 + (lowest < 0 ? -lowest : 0);
        t->shape.dim[i] = (ir_dim){c, tc, pc};
      }
      char name[16];
      snprintf(name, sizeof name, "x%d", v);
      ir_input(g, name, *t);
    }
    oc_error e;
    assert_int_equal(ir_graph_status(g, &e), 0);
    pass_plan p;
    expect(pass_plan_memory(g, max_tokens, max_ctx, &p, &e), &e, NULL);
    for (int id = 0; id < g->n; id++) {
      char type[128];
      int64_t want = brute_force(&types[id], max_tokens, max_ctx);
      if (p.bytes[id] != want)
        fail_msg("%s: planned %lld bytes, the largest call takes %lld",
                 ir_type_str(&types[id], type, sizeof type), (long long)p.bytes[id], (long long)want);
    }
    pass_plan_free(&p);
    ir_graph_free(g);
  }
}

/* Each value fits (2^58 bytes at T = 2^20, P + T = 2^24), 17 of them do not:
 * the plan says so instead of overflowing its sums. (This context, 2^24
 * positions, with T up to 2^20, took minutes when every T was tried.) */
static void test_plan_total(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new();
  assert_non_null(g);
  ir_type big = {IR_F32, {3, {ir_const_dim(4096), IR_DIM_T, {0, 1, 1}}}}; /* [4096, T, P+T] */
  pass_plan p;
  oc_error e;
  for (int v = 0; v < 17; v++) {
    char name[16];
    snprintf(name, sizeof name, "x%d", v);
    ir_input(g, name, big);
    if (v == 15) { /* 16 values: 2^62 bytes, exactly the limit */
      expect(pass_plan_memory(g, 1 << 20, 1 << 24, &p, &e), &e, NULL);
      assert_int_equal(p.bytes[0], INT64_C(1) << 58);
      pass_plan_free(&p);
    }
  }
  expect(pass_plan_memory(g, 1 << 20, 1 << 24, &p, &e), &e,
         "plan-memory: the values up to node %16 (input) take more than 2^62 bytes in all at "
         "T <= 1048576, P + T <= 16777216");
  ir_graph_free(g);
}

/* Each command given a FIFO for a file ends within its timeout with "not a
 * regular file" (it waited for a writer forever). */
static void test_fifo_inputs(void **state) {
  (void)state;
  char cmd[2048], fifo[128], model[128];
  snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
  snprintf(model, sizeof model, "%s/fifo_model", tmpdir);
  snprintf(cmd, sizeof cmd, "mkfifo %s && mkdir -p %s && cp models/olmo2-tiny/* %s/ && %s/olmoc compile -q -o %s/bin",
           fifo, model, model, OLMOC_BUILD_DIR, tmpdir);
  assert_int_equal(system(cmd), 0);
  const char *const uses[] = {"run -f FIFO -n 1", "perplexity -f FIFO", "tokenize -f FIFO", "ir FIFO"};
  for (size_t i = 0; i < sizeof uses / sizeof *uses; i++) {
    char args[512];
    const char *at = strstr(uses[i], "FIFO");
    snprintf(args, sizeof args, "%.*s%s%s", (int)(at - uses[i]), uses[i], fifo, at + 4);
    assert_int_equal(olmoc_after("timeout 60", args), 1);
    expect_output("fifo: not a regular file");
  }
  const char *const files[] = {"config.json", "tokenizer.json", "generation_config.json", "tokenizer_config.json"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    snprintf(cmd, sizeof cmd, "rm -f %s/* && cp models/olmo2-tiny/* %s/ && rm %s/%s && mkfifo %s/%s", model, model,
             model, files[i], model, files[i]); /* cp would wait on the last FIFO */
    assert_int_equal(system(cmd), 0);
    char args[512], says[256];
    snprintf(args, sizeof args, "run -m %s --chat -p x -n 1", model); /* --chat reads tokenizer_config.json */
    assert_int_equal(olmoc_after("timeout 60", args), 1);
    snprintf(says, sizeof says, "%s: not a regular file", files[i]);
    expect_output(says);
  }
  for (int mmap = 0; mmap < 2; mmap++) {
    snprintf(cmd, sizeof cmd, "timeout 60 %s/bin --weights %s %s -p x", tmpdir, fifo, mmap ? "--mmap" : "");
    assert_int_equal(shell(cmd), 1);
    expect_output("fifo: not a regular file");
  }
}

/* `yes | olmoc run` read until the OOM killer came: now up to the limit. */
static void test_endless_stdin(void **state) {
  (void)state;
  assert_int_equal(olmoc_after("yes 'The jury said' | timeout 120", "run -n 1"), 1);
  char says[128];
  snprintf(says, sizeof says, "standard input: more than the %zu MiB olmoc reads as a text", CLI_TEXT_MAX_BYTES >> 20);
  expect_output(says);
}

/* A context the KV caches alone cannot fit in memory is refused at once,
 * before the planner (2^24 positions took 11 s to be found too large). */
static void test_context_too_large(void **state) {
  (void)state;
  if (rt_memory_available() > (uint64_t)70e9) {
    print_message("skipped: this machine has room for 68.7 GB of KV cache\n");
    skip();
  }
  char cmd[1024], args[512];
  snprintf(cmd, sizeof cmd, "mkdir -p %s/big && cp models/olmo2-tiny/* %s/big/ && sed -i "
           "'s/\"max_position_embeddings\": [0-9]*/\"max_position_embeddings\": 16777216/' %s/big/config.json",
           tmpdir, tmpdir, tmpdir);
  assert_int_equal(system(cmd), 0);
  snprintf(args, sizeof args, "run -m %s/big -p x -n 1", tmpdir);
  assert_int_equal(olmoc_after("timeout 60", args), 1);
  expect_output("a context of 16777216 positions needs 68.7 GB of KV cache, more than the");
  expect_output("give a shorter --ctx");
  snprintf(args, sizeof args, "run -m %s/big -p x -n 1 --ctx 64", tmpdir);
  assert_int_equal(olmoc_after("timeout 60", args), 0);
}

/* LLVM aborts the process when an allocation fails (std::bad_alloc under
 * `ulimit -v 250000` once), so olmoc calls it only with room for it: under
 * address-space limits from where the program cannot even load to where it
 * runs, every run ends in a message (exit 1) or in text (exit 0), never in
 * a signal, and some limit in between is refused for LLVM's sake by name.
 * AddressSanitizer maps terabytes of shadow: no limit fits it. */
static void test_address_space_limits(void **state) {
  (void)state;
#ifdef __SANITIZE_ADDRESS__
  print_message("skipped: AddressSanitizer's shadow memory exceeds any address-space limit\n");
  skip();
#endif
  bool refused_for_llvm = false, ran = false;
  for (int mib = 200; mib <= 400; mib += 6) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "ulimit -v %d;", mib * 1024);
    int rc = olmoc_after(prefix, "run -m models/olmo2-tiny -p Hi -n 2 -t 1");
    if (rc != 0 && rc != 1)
      fail_msg("under ulimit -v %d MiB olmoc ended with status %d:\n%s", mib, rc, out);
    refused_for_llvm |= rc == 1 && strstr(out, "more address space for LLVM") && strstr(out, "ulimit -v");
    ran |= rc == 0;
  }
  assert_true(refused_for_llvm);
  assert_true(ran);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_context_too_large),
      cmocka_unit_test(test_address_space_limits),
      cmocka_unit_test(test_fifo_inputs),
      cmocka_unit_test(test_endless_stdin),
      cmocka_unit_test(test_json_nesting),
      cmocka_unit_test(test_tokenizer_sequences),
      cmocka_unit_test(test_plan_peak),
      cmocka_unit_test(test_plan_total),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
