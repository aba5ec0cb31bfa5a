/* olmoc quantize: a quantized checkpoint runs on the bits the source runs on
 * with the same --dtype (JIT and compiled), options it cannot honour are
 * refused by name, and every damaged or crafted model.olmoc (truncated, a
 * flipped byte, another version, dtype or shape, a section shared or of
 * another kind, a model binary's weights) is refused with a message naming
 * the file and the problem. Crafted files are rewritten with the pack writer,
 * so their checksums pass and the index's own checks are what refuse them. */
#define _GNU_SOURCE /* memmem */
#include "cli_harness.h"

#include "olmoc/pack.h"
#include "olmoc/weights.h"

#define TINY "models/olmo2-tiny"
#define PROMPT "-p \"The jury said that the city is\""

static char q4[64], q8[64];

static int setup(void **state) {
  if (make_tmpdir(state))
    return -1;
  snprintf(q4, sizeof q4, "%s/q4", tmpdir);
  snprintf(q8, sizeof q8, "%s/q8", tmpdir);
  char args[1024];
  snprintf(args, sizeof args, "quantize -m " TINY " -o %s", q4);
  if (olmoc(args))
    return -1;
  snprintf(args, sizeof args, "quantize -m " TINY " -o %s --dtype q8 -t 1", q8);
  return olmoc(args) ? -1 : 0;
}

/* The bytes of the logits `olmoc logits ARGS` writes. */
static char *logits(const char *args, size_t *n) {
  char cmd[1024], path[300];
  snprintf(path, sizeof path, "%s/logits.npy", tmpdir);
  snprintf(cmd, sizeof cmd, "logits %s " PROMPT " -o %s", args, path);
  if (olmoc(cmd))
    fail_msg("olmoc %s failed:\n%s", cmd, out);
  return slurp(path, n);
}

static void expect_same_logits(const char *a, const char *b) {
  size_t na, nb;
  char *x = logits(a, &na), *y = logits(b, &nb);
  assert_int_equal(na, nb);
  assert_memory_equal(x, y, na);
  free(x);
  free(y);
}

/* What quantize wrote: the matrices in panels (the LM head in q8), the rest as stored. */
static void test_contents(void **state) {
  (void)state;
  rt_weights *w;
  oc_error e = {{0}};
  assert_int_equal(rt_weights_open(q4, &w, &e), 0);
  assert_int_equal(rt_weights_quantized(w).dtype, IR_Q4);
  int64_t panel = rt_weights_quantized(w).panel;
  assert_true(panel == 32 || panel == 16); /* AVX-512's, AVX2's */
  assert_int_equal(rt_weights_find(w, "model.layers.0.mlp.down_proj.weight")->dtype, IR_Q4);
  assert_int_equal(rt_weights_find(w, "lm_head.weight")->dtype, IR_I8);
  assert_int_equal(rt_weights_find(w, "model.embed_tokens.weight")->dtype, IR_BF16);
  assert_int_equal(rt_weights_find(w, "model.norm.weight")->rank, 1);
  rt_weights_close(w);
  assert_int_equal(rt_weights_open(q8, &w, &e), 0);
  assert_int_equal(rt_weights_find(w, "model.layers.0.mlp.down_proj.weight")->dtype, IR_I8);
  rt_weights_close(w);
}

static void test_same_bits(void **state) {
  (void)state;
  char args[400];
  snprintf(args, sizeof args, "-m %s", q4);
  expect_same_logits("-m " TINY " --dtype q4", args);
  snprintf(args, sizeof args, "-m %s --dtype q4 -t 1", q4);
  expect_same_logits("-m " TINY " --dtype q4 -t 2", args);
  snprintf(args, sizeof args, "-m %s", q8);
  expect_same_logits("-m " TINY " --dtype q8", args);
}

/* A binary compiled from the quantized checkpoint writes what the JIT does
 * from it, and what one compiled from the source with --dtype q4 does. */
static void test_compiled(void **state) {
  (void)state;
  char cmd[1024], *text[3];
  const char *gen = PROMPT " -n 24 --temp 0";
  snprintf(cmd, sizeof cmd, "compile -m %s -o %s/from_q4 -q", q4, tmpdir);
  assert_int_equal(olmoc(cmd), 0);
  snprintf(cmd, sizeof cmd, "compile -m " TINY " --dtype q4 -o %s/from_f32 -q", tmpdir);
  assert_int_equal(olmoc(cmd), 0);
  snprintf(cmd, sizeof cmd, "run -m %s %s 2>/dev/null", q4, gen);
  assert_int_equal(olmoc(cmd), 0);
  text[0] = strdup(out);
  for (int i = 1; i < 3; i++) {
    snprintf(cmd, sizeof cmd, "%s/%s %s 2>/dev/null", tmpdir, i == 1 ? "from_q4" : "from_f32", gen);
    assert_int_equal(shell(cmd), 0);
    text[i] = strdup(out);
    assert_string_equal(text[i], text[0]);
  }
  assert_true(strlen(text[0]) > strlen("The jury said that the city is"));
  for (int i = 0; i < 3; i++)
    free(text[i]);
}

static void expect_refused(const char *args, const char *words) {
  if (olmoc(args) != 1)
    fail_msg("olmoc %s did not fail as it should:\n%s", args, out);
  expect_output(words);
}

static void test_options_refused(void **state) {
  (void)state;
  char args[1024];
  snprintf(args, sizeof args, "run -m %s --dtype f32 -p x -n 1", q4);
  expect_refused(args, "q4 weights (quantized by olmoc quantize), so --dtype q4, or none");
  snprintf(args, sizeof args, "logits -m %s --dtype q8 -p x -o /dev/null", q4);
  expect_refused(args, "so --dtype q4, or none");
  snprintf(args, sizeof args, "perplexity -m %s --backend interp -f " TINY "/heldout.txt", q4);
  expect_refused(args, "the interpreter reads f32, bf16 or f16 checkpoints");
  snprintf(args, sizeof args, "run -m %s --target avx2 -p x -n 1", q4);
  if (olmoc(args)) { /* an AVX-512 host: its panels are twice AVX2's */
    expect_refused(args, "model.olmoc is quantized for kernels that read panels of 32 columns; these read 16 (AVX2)");
    snprintf(args, sizeof args, "compile -m %s --target avx2 -o %s/x", q4, tmpdir);
    expect_refused(args, "panels of 32 columns; these read 16");
  }
  snprintf(args, sizeof args, "quantize -m %s -o %s/again", q4, tmpdir);
  expect_refused(args, "already quantized (by olmoc quantize)");
  snprintf(args, sizeof args, "quantize -m " TINY " -o %s/bf --dtype bf16", tmpdir);
  expect_refused(args, "olmoc quantize writes q4 or q8 weights");
  expect_refused("quantize -m " TINY " -o " TINY, "holds a safetensors checkpoint");
  assert_int_equal(olmoc("quantize -m " TINY), 2);
  expect_output("give the checkpoint (-m DIR) and where to write (-o DIR)");
}

/* dir (made) holding q4's small files and a copy of its model.olmoc with
 * every section as it was except the index, whose first `from` becomes `to`. */
static void craft(const char *dir, const char *from, const char *to) {
  char cmd[1024], path[128], src[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s && cp %s/*.json %s/", dir, dir, q4, dir);
  assert_int_equal(system(cmd), 0);
  snprintf(src, sizeof src, "%s/" RT_QUANTIZED_FILE, q4);
  snprintf(path, sizeof path, "%s/" RT_QUANTIZED_FILE, dir);
  rt_pack *p;
  oc_error e = {{0}};
  assert_int_equal(rt_pack_open(src, 0, NULL, RT_PACK_READ, NULL, &p, &e), 0);
  rt_pack_target t = {"", "", 0, rt_pack_header_of(p)->dtype};
  rt_pack_writer *w;
  assert_int_equal(rt_pack_create(path, &t, &w, &e), 0);
  for (int i = 0; i < rt_pack_count(p); i++) {
    const rt_pack_section *s = rt_pack_section_at(p, i);
    if (s->kind != RT_PACK_TENSORS) {
      assert_int_equal(rt_pack_add(w, s->kind, s->name, rt_pack_data(p, i), s->bytes, NULL, &e), 0);
      continue;
    }
    char *json = malloc(s->bytes + strlen(to) + 1);
    const char *data = rt_pack_data(p, i), *at = memmem(data, s->bytes, from, strlen(from));
    assert_non_null(at);
    size_t head = (size_t)(at - data), tail = s->bytes - head - strlen(from);
    memcpy(json, data, head);
    memcpy(json + head, to, strlen(to));
    memcpy(json + head + strlen(to), at + strlen(from), tail);
    assert_int_equal(rt_pack_add(w, s->kind, s->name, json, head + strlen(to) + tail, NULL, &e), 0);
    free(json);
  }
  assert_int_equal(rt_pack_finish(w, &e), 0);
  rt_pack_close(p);
}

static void expect_file_refused(const char *dir, const char *words) {
  char args[1024];
  snprintf(args, sizeof args, "run -m %s -p x -n 1", dir);
  expect_refused(args, words);
  expect_output(RT_QUANTIZED_FILE);
}

static void test_crafted_index(void **state) {
  (void)state;
  char dir[64];
  snprintf(dir, sizeof dir, "%s/crafted", tmpdir);
  static const struct {
    const char *from, *to, *says;
  } cases[] = {
      {"\"version\":1", "\"version\":2",
       "quantized-checkpoint version 2, but this olmoc reads version 1: quantize the checkpoint again"},
      {"\"quantization\":\"q4\"", "\"quantization\":\"q8\"",
       "the index says the weights are q8, the header says q4"},
      {"\"group_size\":32", "\"group_size\":64",
       "\"group_size\" is out of range"},
      {"\"shape\":[256,256]", "\"shape\":[256,224]",
       "(q4 [256,224]) needs 32256 bytes, its section holds 36864"},
      {"\"dtype\":\"q4\",\"shape\":[256,256]", "\"dtype\":\"F32\",\"shape\":[256,256]",
       "(F32 [256,256]) needs 262144 bytes"},
      {"\"dtype\":\"q4\"", "\"dtype\":\"q2\"",
       "\"dtype\" is not one of q4, q8, F32, BF16, F16"},
      {"\"section\":1}", "\"section\":0}",
       "section 0 is not a buffer of its own"},
      {"\"section\":1}", "\"section\":99999}",
       "\"section\" is out of range"},
      {"\"format\":\"olmoc quantized checkpoint\"", "\"format\":\"gguf\"",
       "the tensor index is not an olmoc quantized checkpoint's"},
      {"{", "[",
       "the tensor index is not JSON"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    craft(dir, cases[i].from, cases[i].to);
    expect_file_refused(dir, cases[i].says);
  }
}

/* dir, a fresh copy of q4, with `damage` run on its model.olmoc (the shell
 * command's %s). */
static void damaged_copy(const char *dir, const char *damage) {
  char file[128], cmd[4096];
  snprintf(file, sizeof file, "%s/" RT_QUANTIZED_FILE, dir);
  int n = snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s && ", dir, q4, dir);
  snprintf(cmd + n, sizeof cmd - (size_t)n, damage, file);
  assert_int_equal(system(cmd), 0);
}

/* The file itself damaged: the pack's checks name it. */
static void test_damaged_file(void **state) {
  (void)state;
  char dir[64], args[256], damage[256];
  snprintf(dir, sizeof dir, "%s/damaged", tmpdir);
  damaged_copy(dir, "truncate -s -100 %s");
  expect_file_refused(dir, "truncated");
  /* one byte of the first tensor's codes, after the 4096-byte header */
  damaged_copy(dir, "printf '\\377' | dd of=%s bs=1 seek=5000 conv=notrunc status=none");
  expect_file_refused(dir, "fails its checksum: the file is damaged");
  damaged_copy(dir, "printf 'X' | dd of=%s bs=1 seek=0 conv=notrunc status=none");
  expect_file_refused(dir, "not an olmoc packed weights file");
  /* a model binary's weights, put where a quantized checkpoint's go */
  snprintf(args, sizeof args, "compile -m " TINY " --dtype q4 -o %s/bin -q", tmpdir);
  assert_int_equal(olmoc(args), 0);
  snprintf(damage, sizeof damage, "cp %s/bin.weights %%s", tmpdir);
  damaged_copy(dir, damage);
  expect_file_refused(dir, "a model binary's weights file, not a quantized checkpoint");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_contents),        cmocka_unit_test(test_same_bits),
      cmocka_unit_test(test_compiled),
      cmocka_unit_test(test_options_refused), cmocka_unit_test(test_crafted_index),
      cmocka_unit_test(test_damaged_file),
  };
  return cmocka_run_group_tests(tests, setup, remove_tmpdir);
}
