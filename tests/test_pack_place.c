/* Where the JIT packs its weights (codegen/panel_place.c): into a deleted
 * file on disk gives the same logits bit for bit as into memory (f32, bf16,
 * q8; prompt and decode) and the same greedy text from `olmoc run`; nothing
 * is left in the directory, during the run or after; a directory that is
 * missing, not a directory, full or in memory is refused with a message
 * naming it and a non-zero exit; the rule that picks the file in auto mode,
 * and the byte counts it reads, have the values they should. */
#include <math.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "cli_harness.h"
#include "olmoc/codegen.h"
#include "olmoc/olmo2.h"
#include "olmoc/passes.h"
#include "olmoc/weights.h"
#include "program_harness.h"

#define CTX 32

static const int32_t prompt[] = {17, 200, 5, 40, 91, 33, 102}; /* < both vocabularies */
#define N_PROMPT 7

/* The pack directory of these tests: in the build tree, on disk, where
 * /tmp (tmpdir) may be tmpfs, which is refused. */
static char packs[] = OLMOC_BUILD_DIR "/pack_place.XXXXXX";

/* Entries in dir besides . and .. */
static int entries(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  for (struct dirent *x; (x = readdir(d));)
    n += strcmp(x->d_name, ".") && strcmp(x->d_name, "..");
  closedir(d);
  return n;
}

/* Lines of /proc/self/maps that map a file in dir: the unnamed pack shows
 * there as dir/#inode (deleted). */
static int mapped_from(const char *dir) {
  FILE *f = fopen("/proc/self/maps", "r");
  assert_non_null(f);
  char line[1024];
  int n = 0;
  while (fgets(line, sizeof line, f))
    n += strstr(line, dir) != NULL;
  fclose(f);
  return n;
}

static int setup(void **state) {
  return make_tmpdir(state) || !mkdtemp(packs) ? -1 : 0;
}

static int teardown(void **state) {
  return rmdir(packs) || remove_tmpdir(state) ? -1 : 0; /* rmdir: the directory is empty */
}

/* A model opened and planned for CTX positions, -O2. */
typedef struct model {
  olmo2_config config;
  rt_weights *weights;
  ir_graph *graph;
  pass_result passes;
} model;

static void open_model(model *m, const char *dir) {
  oc_error e;
  check(olmo2_config_load(dir, &m->config, &e), &e);
  check(rt_weights_open(dir, &m->weights, &e), &e);
  ir_dtype dtype = rt_weights_find(m->weights, "model.embed_tokens.weight")->dtype;
  check(olmo2_build_graph(&m->config, dtype, &m->graph, &e), &e);
  pass_options o = {.level = 2, .max_tokens = CTX, .max_ctx = CTX};
  check(pass_run_pipeline(m->graph, &o, &m->passes, &e), &e);
}

static void close_model(model *m) {
  pass_result_free(&m->passes);
  ir_graph_free(m->graph);
  rt_weights_close(m->weights);
}

/* The prompt's logits, then one decode step's, lowered with pack dir `dir`
 * (NULL: memory); checks that the program maps its panels from a file there
 * (only then) and that dir stays empty while it lives. */
static float *logits_of(model *m, bool q8, const char *dir) {
  oc_error e;
  cg_jit *j;
  rt_program *p;
  check(cg_jit_new(&j, &e), &e);
  cg_jit_set_q8(j, q8);
  check(cg_jit_set_pack_dir(j, dir, &e), &e);
  check(cg_lower(j, m->graph, &m->passes.plan, CTX, rt_weights_lookup, m->weights, &p, &e), &e);
  assert_int_equal(entries(packs), 0);
  assert_true(dir ? mapped_from(packs) > 0 : mapped_from(packs) == 0);
  float *all = prompt_then_step(p, prompt, N_PROMPT, 77, m->config.vocab_size);
  rt_program_free(p);
  assert_int_equal(mapped_from(packs), 0);
  cg_jit_free(j);
  return all;
}

static void same_logits(const char *dir, bool q8) {
  model m;
  open_model(&m, dir);
  float *in_memory = logits_of(&m, q8, NULL), *in_file = logits_of(&m, q8, packs);
  assert_memory_equal(in_memory, in_file, (size_t)((N_PROMPT + 1) * m.config.vocab_size) * sizeof *in_file);
  bool finite = true;
  for (int64_t i = 0; i < (N_PROMPT + 1) * m.config.vocab_size; i++)
    finite &= isfinite(in_file[i]);
  assert_true(finite);
  free(in_memory);
  free(in_file);
  close_model(&m);
  assert_int_equal(entries(packs), 0);
}

static void test_f32_same_bits(void **state) {
  (void)state;
  same_logits("tests/data/tiny", false); /* an f32 checkpoint */
}

static void test_bf16_same_bits(void **state) {
  (void)state;
  same_logits("models/olmo2-tiny", false); /* the bundled bf16 checkpoint */
}

static void test_q8_same_bits(void **state) {
  (void)state;
  same_logits("models/olmo2-tiny", true);
  same_logits("tests/data/tiny", true);
}

/* cg_lower with pack dir `dir` fails naming it and the words. */
static void expect_refused(const char *dir, const char *words) {
  model m;
  open_model(&m, "tests/data/tiny");
  oc_error e = {{0}};
  cg_jit *j;
  rt_program *p = NULL;
  check(cg_jit_new(&j, &e), &e);
  check(cg_jit_set_pack_dir(j, dir, &e), &e);
  assert_int_equal(cg_lower(j, m.graph, &m.passes.plan, CTX, rt_weights_lookup, m.weights, &p, &e), -1);
  assert_null(p);
  expect_error(e.msg, dir);
  expect_error(e.msg, words);
  cg_jit_free(j);
  close_model(&m);
}

static void test_bad_directories(void **state) {
  (void)state;
  char path[400];
  snprintf(path, sizeof path, "%s/missing", tmpdir);
  expect_refused(path, "No such file or directory");
  snprintf(path, sizeof path, "%s/file", tmpdir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fclose(f);
  expect_refused(path, "Not a directory");
  expect_refused("/proc", "GB free, but the packed weights need"); /* no room at all */
  struct statfs fs;
  if (statfs("/dev/shm", &fs) == 0 && fs.f_type == 0x01021994) /* TMPFS_MAGIC */
    expect_refused("/dev/shm", "in memory (tmpfs or ramfs)");
  if (geteuid() != 0) { /* root writes anywhere */
    snprintf(path, sizeof path, "%s/locked", tmpdir);
    assert_int_equal(mkdir(path, 0500), 0);
    expect_refused(path, "Permission denied");
  }
}

/* ---- the rule and its inputs ---- */

static void test_rule(void **state) {
  (void)state;
  const uint64_t GB = 1000000000, GiB = (uint64_t)1 << 30;
  uint64_t avail = 24 * GB, margin = GiB + avail / 16;
  assert_true(cg_pack_fits(10 * GB, GB, avail));
  assert_false(cg_pack_fits(28 * GB, 6 * GB, avail)); /* the 7B in f32 on this machine class */
  assert_true(cg_pack_fits(avail - margin - GB, GB, avail)); /* exactly at the margin */
  assert_false(cg_pack_fits(avail - margin - GB + 1, GB, avail));
  assert_true(cg_pack_fits(1000 * GB, 0, 0)); /* MemAvailable unknown: memory, as before */
}

/* Packed bytes: the matmul matrices of the tiny model, each once, in panels
 * of the kernels' width; the rest at least the arena and the KV caches, and
 * the embedding table when it is copied, rounded to bf16 from f32. */
static void test_program_bytes(void **state) {
  (void)state;
  model m;
  open_model(&m, "tests/data/tiny");
  oc_error e;
  cg_jit *j;
  check(cg_jit_new(&j, &e), &e);
  const olmo2_config *c = &m.config;
  int64_t H = c->hidden_size, I = c->intermediate_size, hd = c->head_dim, q = c->num_attention_heads * hd,
          kv = c->num_key_value_heads * hd;
  for (int q8 = 0; q8 < 2; q8++) {
    cg_jit_set_q8(j, q8);
    ir_dtype wt = q8 ? IR_I8 : IR_F32;
    uint64_t want = (uint64_t)c->num_hidden_layers *
                        (cg_packed_bytes(j, wt, q, H) + 2 * cg_packed_bytes(j, wt, kv, H) +
                         cg_packed_bytes(j, wt, H, q) + 2 * cg_packed_bytes(j, wt, I, H) +
                         cg_packed_bytes(j, wt, H, I)) +
                    cg_packed_bytes(j, wt, c->vocab_size, H);
    uint64_t packed, other, caches = (uint64_t)(2 * c->num_hidden_layers * CTX * kv) * sizeof(float);
    cg_program_bytes(j, m.graph, &m.passes.plan, CTX, NULL, NULL, &packed, &other);
    assert_int_equal(packed, want);
    assert_true(other >= (uint64_t)m.passes.plan.arena_bytes + caches);
    assert_true(other < (uint64_t)m.passes.plan.arena_bytes + 2 * caches); /* plus small tables */
    uint64_t with_lookup;
    cg_program_bytes(j, m.graph, &m.passes.plan, CTX, rt_weights_lookup, m.weights, &packed, &with_lookup);
    assert_int_equal(with_lookup, other); /* f32 read as f32: the table in place */
  }
  cg_jit_set_q8(j, false);
  ir_graph *g;
  pass_result r;
  pass_options o = {.level = 2, .max_tokens = CTX, .max_ctx = CTX};
  check(olmo2_build_graph(c, IR_BF16, &g, &e), &e);
  check(pass_run_pipeline(g, &o, &r, &e), &e);
  uint64_t packed, in_place, rounded;
  cg_program_bytes(j, g, &r.plan, CTX, NULL, NULL, &packed, &in_place);
  cg_program_bytes(j, g, &r.plan, CTX, rt_weights_lookup, m.weights, &packed, &rounded);
  assert_int_equal(rounded - in_place, (uint64_t)(c->vocab_size * H) * sizeof(uint16_t));
  pass_result_free(&r);
  ir_graph_free(g);
  cg_pack_place at;
  check(cg_jit_place_weights(j, m.graph, &m.passes.plan, CTX, NULL, NULL, "file", &at, &e), &e);
  assert_true(at.file && at.packed > 0);
  check(cg_jit_place_weights(j, m.graph, &m.passes.plan, CTX, NULL, NULL, NULL, &at, &e), &e);
  assert_false(at.file); /* kilobytes fit */
  assert_int_equal(cg_jit_place_weights(j, m.graph, &m.passes.plan, CTX, NULL, NULL, "disk", &at, &e), -1);
  expect_error(e.msg, "--pack-weights: expected auto, memory or file, found 'disk'");
  cg_jit_free(j);
  close_model(&m);
}

/* ---- the command line ---- */

static char *generated(const char *mode) {
  char args[600];
  snprintf(args, sizeof args, "run -p 'Language modeling is ' -n 16 --temp 0 --pack-weights %s 2>/dev/null", mode);
  char prefix[400];
  snprintf(prefix, sizeof prefix, "OLMOC_PACK_DIR=%s", packs);
  assert_int_equal(olmoc_after(prefix, args), 0);
  return strdup(out);
}

static void test_run_same_text(void **state) {
  (void)state;
  char *memory = generated("memory"), *file = generated("file");
  assert_true(strlen(memory) > strlen("Language modeling is "));
  assert_string_equal(memory, file);
  free(memory);
  free(file);
  char prefix[400];
  snprintf(prefix, sizeof prefix, "OLMOC_PACK_DIR=%s", packs);
  assert_int_equal(olmoc_after(prefix, "run -p Hi -n 2 --temp 0 --pack-weights file"), 0);
  expect_output("into a deleted file in ");
  expect_output(packs);
  assert_int_equal(entries(packs), 0);
}

/* `olmoc logits` in both places writes the same file, for each dtype. */
static void test_logits_same_file(void **state) {
  (void)state;
  const char *models[] = {"-m tests/data/tiny", "", "--dtype q8"};
  for (int i = 0; i < 3; i++) {
    char args[800], prefix[400], path[2][300];
    snprintf(prefix, sizeof prefix, "OLMOC_PACK_DIR=%s", packs);
    for (int k = 0; k < 2; k++) {
      snprintf(path[k], sizeof path[k], "%s/%d.npy", tmpdir, k);
      snprintf(args, sizeof args, "logits %s --backend jit --ids 104,59,101,250,152,19,148 --pack-weights %s -o %s",
               models[i], k ? "file" : "memory", path[k]);
      assert_int_equal(olmoc_after(prefix, args), 0);
    }
    size_t n0, n1;
    char *a = slurp(path[0], &n0), *b = slurp(path[1], &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(a, b, n0);
    free(a);
    free(b);
  }
  assert_int_equal(entries(packs), 0);
}

static void test_cli_refusals(void **state) {
  (void)state;
  char prefix[400];
  snprintf(prefix, sizeof prefix, "OLMOC_PACK_DIR=%s/nowhere", tmpdir);
  assert_int_equal(olmoc_after(prefix, "run -p Hi -n 2 --pack-weights file"), 1);
  expect_output("/nowhere: cannot hold the packed weights' file: No such file or directory");
  assert_int_equal(olmoc("run -p Hi -n 2 --pack-weights disk"), 1);
  expect_output("--pack-weights: expected auto, memory or file, found 'disk'");
  assert_int_equal(olmoc("logits --backend interp --ids 1,2 -o /dev/null --pack-weights file"), 1);
  expect_output("--pack-weights places the JIT's packed weights: it needs --backend jit");
  assert_int_equal(olmoc("bench -m models/olmo2-tiny --pack-weights disk"), 2); /* before probing */
  expect_output("--pack-weights: expected auto, memory or file, found 'disk'");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_f32_same_bits),   cmocka_unit_test(test_bf16_same_bits),
      cmocka_unit_test(test_q8_same_bits),    cmocka_unit_test(test_bad_directories),
      cmocka_unit_test(test_rule),            cmocka_unit_test(test_program_bytes),
      cmocka_unit_test(test_run_same_text),   cmocka_unit_test(test_logits_same_file),
      cmocka_unit_test(test_cli_refusals),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
