/* `olmoc compile` end to end: the bundled model compiled to an executable
 * (weights beside it, embedded, mmap'ed) writes the same greedy text as
 * `olmoc run`; the library's logits are the JIT's bit for bit; the C example
 * builds against libNAME.so and NAME.h and writes the same text; ldd shows no
 * LLVM, cJSON or PCRE2; damaged or mismatched weights are refused with a
 * message naming the file; an AVX2 build runs here; --dtype q8 gives what
 * `olmoc run --dtype q8` gives (text, and logits bit for bit, native and
 * AVX2); failed links say which command failed and leave nothing behind. */
#include <dirent.h>
#include <dlfcn.h>

#include "cli_harness.h"
#include "olmoc/codegen.h"
#include "olmoc/model_api.h"
#include "olmoc/olmo2.h"
#include "olmoc/passes.h"
#include "olmoc/weights.h"

#define MODEL "models/olmo2-tiny"
#define PROMPT "-p \"Language modeling is \" -n 16 --temp 0 -t 1"

static char stdout_text[1 << 16], stderr_text[1 << 16], reference[1 << 16], reference_q8[1 << 16];
static char dir[512]; /* tmpdir/out: what compile writes */

static void read_into(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  buf[fread(buf, 1, cap - 1, f)] = '\0';
  fclose(f);
}

/* Runs a shell command with stdout and stderr captured apart; the exit code. */
static int sh(const char *fmt, ...) {
  char cmd[4096], redirected[4600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  snprintf(redirected, sizeof redirected, "%s >%s/stdout 2>%s/stderr", cmd, tmpdir, tmpdir);
  int status = system(redirected);
  char path[600];
  snprintf(path, sizeof path, "%s/stdout", tmpdir);
  read_into(path, stdout_text, sizeof stdout_text);
  snprintf(path, sizeof path, "%s/stderr", tmpdir);
  read_into(path, stderr_text, sizeof stderr_text);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect_stderr(const char *words) {
  if (!strstr(stderr_text, words))
    fail_msg("stderr lacks \"%s\":\n%.3000s", words, stderr_text);
}

static void must(int rc) {
  if (rc)
    fail_msg("exit %d\nstdout: %.2000s\nstderr: %.3000s", rc, stdout_text, stderr_text);
}

/* A transcript without its timings: every figure in ms or tok/s becomes N. */
static void untimed(const char *in, char *out, size_t cap) {
  size_t n = 0;
  while (*in && n + 2 < cap) {
    size_t digits = strspn(in, "0123456789.");
    if (digits && (!strncmp(in + digits, " ms", 3) || !strncmp(in + digits, " tok/s", 6)))
      in += digits, out[n++] = 'N';
    else
      out[n++] = *in++;
  }
  out[n] = '\0';
}

static int compile(const char *args) {
  return sh("%s/olmoc compile -m " MODEL " %s", OLMOC_BUILD_DIR, args);
}

static int setup(void **state) {
  if (make_tmpdir(state))
    return -1;
  snprintf(dir, sizeof dir, "%s/out", tmpdir);
  setenv("OUT_DIR", dir, 1); /* compile's -o $OUT_DIR/... */
  char cmd[700];
  snprintf(cmd, sizeof cmd, "mkdir -p %s/out %s/scratch", tmpdir, tmpdir);
  if (system(cmd))
    return -1;
  if (sh("%s/olmoc run -m " MODEL " " PROMPT, OLMOC_BUILD_DIR))
    return -1;
  snprintf(reference, sizeof reference, "%s", stdout_text);
  if (sh("%s/olmoc run -m " MODEL " " PROMPT " --dtype q8", OLMOC_BUILD_DIR))
    return -1;
  snprintf(reference_q8, sizeof reference_q8, "%s", stdout_text);
  return strstr(reference, "Language modeling is ") == reference &&
                 strstr(reference_q8, "Language modeling is ") == reference_q8
             ? 0
             : -1;
}

static void test_exe_matches_run(void **state) {
  (void)state;
  must(compile("-o $OUT_DIR/tiny"));
  must(sh("%s/tiny " PROMPT, dir));
  assert_string_equal(stdout_text, reference);
  expect_stderr("stop: token limit");
  must(sh("%s/tiny " PROMPT " --mmap", dir));
  assert_string_equal(stdout_text, reference);
  must(sh("%s/tiny " PROMPT " --no-mmap -c 64", dir)); /* llama.cpp's spellings */
  assert_string_equal(stdout_text, reference);
  assert_int_equal(sh("%s/tiny " PROMPT " --mmap --no-mmap", dir), 2);
  expect_stderr("--mmap and --no-mmap: give one");
  /* a copy elsewhere finds its weights beside itself, by its own name */
  must(sh("cp %s/tiny %s/scratch/renamed", dir, tmpdir));
  assert_int_equal(sh("%s/scratch/renamed " PROMPT, tmpdir), 1);
  expect_stderr("renamed.weights: cannot open");
  must(sh("%s/scratch/renamed " PROMPT " --weights %s/tiny.weights", tmpdir, dir));
  assert_string_equal(stdout_text, reference);
  must(sh("rm %s/scratch/renamed", tmpdir));
  /* run's options, and its errors */
  assert_int_equal(sh("%s/tiny --bogus", dir), 2);
  expect_stderr("tiny: unknown option '--bogus'\nsee `");
  expect_stderr("tiny --help` for the options\n");
  if (strstr(stderr_text, "usage:"))
    fail_msg("a usage error prints the whole help:\n%s", stderr_text);
  /* more threads than processors: the processors, and a warning */
  must(sh("%s/tiny " PROMPT " -t 1000", dir));
  assert_string_equal(stdout_text, reference);
  expect_stderr("warning: -t 1000: this machine runs ");
  must(sh("%s/tiny --help", dir));
  if (!strstr(stdout_text, "--mmap") || !strstr(stdout_text, "--chat"))
    fail_msg("help lacks options:\n%s", stdout_text);
  assert_int_equal(sh("%s/tiny -p hi --chat", dir), 1);
  expect_stderr("use --chat-template olmo2");
  must(sh("%s/tiny -p hi --chat-template olmo2 -n 4 --temp 0 -t 1", dir));
  /* interactive chat on a terminal (script gives it one): the same turns
   * and the same tokens fed per turn as olmoc run (-q: their loads differ,
   * and a slow one would draw its progress) */
  static char transcript[2][1 << 14];
  const char *chat = "printf 'Hello\\nAgain\\n' | script -qec '%s -q --chat-template olmo2 -n 3 --temp 0 -t 1' "
                     "/dev/null";
  char command[700];
  snprintf(command, sizeof command, "%s/olmoc run -m " MODEL, OLMOC_BUILD_DIR);
  must(sh(chat, command));
  untimed(stdout_text, transcript[0], sizeof transcript[0]);
  snprintf(command, sizeof command, "%s/tiny", dir);
  must(sh(chat, command));
  untimed(stdout_text, transcript[1], sizeof transcript[1]);
  assert_string_equal(transcript[1], transcript[0]);
  if (!strstr(transcript[1], "prompt: 20 tokens") || !strstr(transcript[1], "prompt: 22 tokens"))
    fail_msg("not two turns:\n%s\nstderr: %s", transcript[1], stderr_text);
  must(sh("echo 'The jury said' | %s/tiny -n 4 --temp 0 --ctx 32 -t 1", dir));
  if (strncmp(stdout_text, "The jury said", 13))
    fail_msg("piped prompt not continued: %s", stdout_text);
  assert_int_equal(sh("%s/tiny " PROMPT " --ctx 0", dir), 2);
  assert_int_equal(sh("%s/tiny " PROMPT " --ctx 600", dir), 1);
  expect_stderr("exceeds the 512 the model was compiled for");
}

static void test_embedded(void **state) {
  (void)state;
  must(compile("-o $OUT_DIR/tinye --embed-weights"));
  char path[600];
  snprintf(path, sizeof path, "%s/tinye.weights", dir);
  assert_int_not_equal(access(path, F_OK), 0); /* one file */
  snprintf(path, sizeof path, "%s/tinye.weights.embed", dir);
  assert_int_not_equal(access(path, F_OK), 0);
  must(sh("mv %s/tinye %s/scratch/alone && %s/scratch/alone " PROMPT, dir, tmpdir, tmpdir));
  assert_string_equal(stdout_text, reference);
  must(sh("%s/scratch/alone " PROMPT " --mmap", tmpdir));
  assert_string_equal(stdout_text, reference);
  must(sh("rm %s/scratch/alone", tmpdir));
}

static void test_ldd(void **state) {
  (void)state;
  must(sh("ldd %s/tiny", dir));
  static const char *const allowed[] = {"linux-vdso", "libc.so", "libm.so", "libgomp.so",
                                        "libpthread.so", "ld-linux", "libdl.so"};
  for (char *line = strtok(stdout_text, "\n"); line; line = strtok(NULL, "\n")) {
    bool ok = false;
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
      ok |= strstr(line, allowed[i]) != NULL;
    if (!ok)
      fail_msg("the model binary links more than libc, libm and libgomp: %s", line);
    assert_null(strstr(line, "LLVM"));
    assert_null(strstr(line, "cjson"));
    assert_null(strstr(line, "pcre2"));
  }
}

/* A byte flipped, the file cut short, another version: refused by name. */
static void test_damaged_weights(void **state) {
  (void)state;
  size_t n;
  char path[600], bad[600];
  snprintf(path, sizeof path, "%s/tiny.weights", dir);
  snprintf(bad, sizeof bad, "%s/scratch/bad.weights", tmpdir);
  char *data = slurp(path, &n);
  FILE *f;
  data[8192] ^= 0x40; /* inside the first weight */
  assert_non_null(f = fopen(bad, "wb"));
  fwrite(data, 1, n, f);
  fclose(f);
  assert_int_equal(sh("%s/tiny " PROMPT " --weights %s", dir, bad), 1);
  expect_stderr("bad.weights: section 0 (model.layers.0.self_attn.q_proj.weight, packed) fails its checksum: "
                "the file is damaged");
  data[8192] ^= 0x40;
  assert_non_null(f = fopen(bad, "wb"));
  fwrite(data, 1, n - 100, f);
  fclose(f);
  assert_int_equal(sh("%s/tiny " PROMPT " --weights %s", dir, bad), 1);
  expect_stderr("bad.weights: truncated");
  data[8] = 1; /* the version field: a pack of an older olmoc */
  assert_non_null(f = fopen(bad, "wb"));
  fwrite(data, 1, n, f);
  fclose(f);
  assert_int_equal(sh("%s/tiny " PROMPT " --weights %s", dir, bad), 1);
  expect_stderr("bad.weights: packed-file version 1, but this binary reads version 3");
  free(data);
  /* weights compiled with another binary */
  must(compile("-o $OUT_DIR/other"));
  assert_int_equal(sh("%s/tiny " PROMPT " --weights %s/other.weights", dir, dir), 1);
  expect_stderr("written by another `olmoc compile`");
}

/* Compiles with args (compile saying `says`); the binary `name` must
 * continue the prompt (other kernels: not necessarily with run's words). */
static void compile_and_continue(const char *args, const char *says, const char *name) {
  must(compile(args));
  expect_stderr(says);
  must(sh("%s/%s " PROMPT, dir, name));
  if (strncmp(stdout_text, "Language modeling is ", 21) || strlen(stdout_text) < 40)
    fail_msg("%s wrote: %s", name, stdout_text);
}

/* Bytes of the packed weights file dir/NAME.weights. */
static size_t weights_bytes(const char *name) {
  char path[600];
  size_t n;
  snprintf(path, sizeof path, "%s/%s.weights", dir, name);
  free(slurp(path, &n));
  return n;
}

/* The bundled checkpoint is bf16: --dtype f32 widens it while compiling.
 * -O0 keeps the unfused graph: its shaped kernels compile and run too. */
static void test_dtype(void **state) {
  (void)state;
  compile_and_continue("-O0 -o $OUT_DIR/tiny0", "(bf16 weights", "tiny0");
  compile_and_continue("--dtype f32 -o $OUT_DIR/tiny32", "(f32 weights", "tiny32");
  assert_true(weights_bytes("tiny32") > weights_bytes("tiny") * 19 / 10); /* weights twice the bytes */
}


typedef struct api {
  void *so;
  olmoc_status (*open)(const olmoc_params *, olmoc_model **);
  olmoc_status (*eval)(olmoc_model *, const int32_t *, size_t, const float **);
  olmoc_status (*rewind)(olmoc_model *, int64_t);
  const char *(*errmsg)(const olmoc_model *);
  void (*free)(olmoc_model *);
  int32_t (*vocab)(const olmoc_model *);
} api;

static void load_api(api *a, const char *path) {
  a->so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!a->so)
    fail_msg("dlopen: %s", dlerror());
  *(void **)&a->open = dlsym(a->so, "olmoc_open");
  *(void **)&a->eval = dlsym(a->so, "olmoc_eval");
  *(void **)&a->rewind = dlsym(a->so, "olmoc_rewind");
  *(void **)&a->errmsg = dlsym(a->so, "olmoc_errmsg");
  *(void **)&a->free = dlsym(a->so, "olmoc_free");
  *(void **)&a->vocab = dlsym(a->so, "olmoc_vocab_size");
  assert_true(a->open && a->eval && a->rewind && a->errmsg && a->free && a->vocab);
}

static void check(int rc, const oc_error *e) {
  if (rc)
    fail_msg("%s", e->msg);
}

/* The JIT's modes a binary is compiled in: --dtype q8 or q4, --compute bf16, --kv-cache bf16. */
typedef struct mode {
  bool q8, q4, bf16_compute, kv_bf16;
} mode;

/* The JIT's logits for the same tokens, as olmoc run computes them in mode m. */
static float *jit_logits(const char *target, mode m, const int32_t *ids, int n, int32_t next, int64_t *vocab) {
  oc_error e;
  olmo2_config c;
  rt_weights *w;
  ir_graph *g;
  pass_result r;
  cg_jit *j;
  rt_program *p;
  check(olmo2_config_load(MODEL, &c, &e), &e);
  check(rt_weights_open(MODEL, &w, &e), &e);
  check(olmo2_build_graph(&c, IR_BF16, &g, &e), &e);
  int64_t ctx = c.max_position_embeddings;
  pass_options o = {.level = 2, .max_tokens = ctx, .max_ctx = ctx};
  check(pass_run_pipeline(g, &o, &r, &e), &e);
  check(cg_jit_new_for_target(target, &j, &e), &e);
  cg_jit_set_q8(j, m.q8);
  if (m.q4)
    cg_jit_set_q4(j, true);
  check(cg_jit_set_bf16_compute(j, m.bf16_compute, &e), &e);
  check(cg_jit_set_kv_bf16(j, m.kv_bf16, &e), &e);
  check(cg_lower(j, g, &r.plan, ctx, rt_weights_lookup, w, &p, &e), &e);
  *vocab = c.vocab_size;
  float *all = malloc((size_t)((n + 1) * c.vocab_size) * sizeof *all);
  const float *l = rt_program_run(p, ids, n, 2, &e);
  assert_non_null(l);
  memcpy(all, l, (size_t)(n * c.vocab_size) * sizeof *all);
  assert_non_null(l = rt_program_run(p, &next, 1, 1, &e));
  memcpy(all + n * c.vocab_size, l, (size_t)c.vocab_size * sizeof *all);
  rt_program_free(p);
  cg_jit_free(j);
  pass_result_free(&r);
  ir_graph_free(g);
  rt_weights_close(w);
  return all;
}

/* Opens the library at so and checks its logits against the JIT's for the
 * same target, bit for bit; returns the open model. */
static olmoc_model *library_matches_jit(api *a, const char *so, const char *target, mode m) {
  static const int32_t ids[] = {5, 1200, 77, 4000, 13, 2};
  int64_t vocab;
  float *want = jit_logits(target, m, ids, 6, 999, &vocab);
  load_api(a, so);
  olmoc_model *model;
  olmoc_params p = {.threads = 2};
  if (a->open(&p, &model) != OLMOC_OK)
    fail_msg("olmoc_open: %s", a->errmsg(model));
  assert_int_equal(a->vocab(model), vocab);
  const float *got;
  assert_int_equal(a->eval(model, ids, 6, &got), OLMOC_OK);
  assert_memory_equal(got, want, (size_t)(6 * vocab) * sizeof *got);
  int32_t next = 999;
  assert_int_equal(a->eval(model, &next, 1, &got), OLMOC_OK);
  assert_memory_equal(got, want + 6 * vocab, (size_t)vocab * sizeof *got);
  free(want);
  return model;
}

/* `olmoc compile --emit lib ARGS` into dir/SUB, its logits the JIT's. */
static void lib_matches_jit(const char *sub, const char *args, const char *target, mode mode) {
  must(sh("mkdir -p %s/%s && %s/olmoc compile -m " MODEL " --emit lib %s -o %s/%s/tiny", dir, sub, OLMOC_BUILD_DIR,
          args, dir, sub));
  char so[600];
  snprintf(so, sizeof so, "%s/%s/libtiny.so", dir, sub);
  api a;
  olmoc_model *m = library_matches_jit(&a, so, target, mode);
  a.free(m);
  dlclose(a.so);
}

static void test_avx2(void **state) {
  (void)state;
  compile_and_continue("--target avx2 -o $OUT_DIR/tiny2", "for haswell", "tiny2");
  assert_int_equal(sh("%s/tiny " PROMPT " --weights %s/tiny2.weights", dir, dir), 1);
  expect_stderr("tiny2.weights: packed for target CPU haswell");
  lib_matches_jit("avx2", "--target avx2", "avx2", (mode){0}); /* the kernels of olmoc run --target avx2 */
}

/* --compute bf16: the prompt's matmuls on vdpbf16ps, the same logits as the
 * JIT's in that mode; f32 weights and a target without AVX512_BF16 refused. */
static void test_bf16_compute(void **state) {
  (void)state;
  assert_int_equal(compile("-o $OUT_DIR/x --dtype f32 --compute bf16"), 1);
  expect_stderr("--compute bf16 needs bf16 weights, and these are f32: give --dtype bf16 or none");
  assert_int_equal(compile("-o $OUT_DIR/x --target avx2 --compute bf16"), 1);
  expect_stderr("the target CPU lacks AVX512_BF16");
  cg_host h;
  cg_host_detect(&h);
  if (!h.avx512bf16) {
    print_message("skipped: this CPU has no AVX512_BF16\n");
    skip();
  }
  compile_and_continue("--compute bf16 -o $OUT_DIR/tinyb", "bf16 compute", "tinyb");
  lib_matches_jit("bf16c", "--compute bf16", "native", (mode){.bf16_compute = true});
}

/* --kv-cache bf16: the caches in bf16 in the binary too, the same logits as
 * the JIT's in that mode, on both targets; -O0 refused. */
static void test_kv_bf16(void **state) {
  (void)state;
  assert_int_equal(compile("-o $OUT_DIR/x -O0 --kv-cache bf16"), 1);
  expect_stderr("--kv-cache bf16 needs the fused attention to be all that reads the cache");
  compile_and_continue("--kv-cache bf16 -o $OUT_DIR/tinykv", "bf16 KV cache", "tinykv");
  lib_matches_jit("kv", "--kv-cache bf16", "native", (mode){.kv_bf16 = true});
  lib_matches_jit("kv2", "--kv-cache bf16 --target avx2", "avx2", (mode){.kv_bf16 = true});
}

static void test_library(void **state) {
  (void)state;
  must(compile("--emit lib -o $OUT_DIR/tiny"));
  char so[600];
  snprintf(so, sizeof so, "%s/libtiny.so", dir);
  must(sh("ldd %s", so));
  assert_null(strstr(stdout_text, "LLVM"));
  assert_null(strstr(stdout_text, "cjson"));
  assert_null(strstr(stdout_text, "pcre2"));
  /* the example, built as a user would */
  must(sh("cc -Wall -Wextra -Werror -I%s -DMODEL_HEADER='\"tiny.h\"' examples/generate.c -L%s -ltiny "
          "-Wl,-rpath,%s -o %s/generate",
          dir, dir, dir, dir));
  must(sh("%s/generate 'Language modeling is ' 16", dir));
  size_t len = strlen(stdout_text);
  assert_true(len > 0 && stdout_text[len - 1] == '\n');
  stdout_text[len - 1] = '\0';
  assert_string_equal(stdout_text, reference);

  /* the logits, bit for bit */
  api a;
  olmoc_model *m = library_matches_jit(&a, so, "native", (mode){0});
  /* errors are codes with messages */
  const float *got;
  int32_t out_of_range = 5000;
  assert_int_equal(a.eval(m, &out_of_range, 1, &got), OLMOC_ERROR_ARGUMENT);
  if (!strstr(a.errmsg(m), "outside the model's vocabulary"))
    fail_msg("errmsg: %s", a.errmsg(m));
  assert_int_equal(a.rewind(m, 100), OLMOC_ERROR_ARGUMENT);
  a.free(m);
  olmoc_params p = {.weights = "/nonexistent.weights"};
  assert_int_equal(a.open(&p, &m), OLMOC_ERROR_WEIGHTS);
  if (!strstr(a.errmsg(m), "/nonexistent.weights: cannot open"))
    fail_msg("errmsg: %s", a.errmsg(m));
  a.free(m);
  dlclose(a.so);

  /* a library with its weights inside finds them through its own path */
  must(sh("mkdir -p %s/lib && %s/olmoc compile -m " MODEL " --emit lib --embed-weights -o %s/lib/tiny",
          dir, OLMOC_BUILD_DIR, dir));
  must(sh("ls %s/lib", dir));
  assert_null(strstr(stdout_text, ".weights"));
  must(sh("cc -I%s/lib -DMODEL_HEADER='\"tiny.h\"' examples/generate.c -L%s/lib -ltiny -Wl,-rpath,%s/lib "
          "-o %s/lib/generate && %s/lib/generate 'Language modeling is ' 16", dir, dir, dir, dir, dir));
  stdout_text[strlen(stdout_text) - 1] = '\0';
  assert_string_equal(stdout_text, reference);
}

/* --dtype q8: matmul weights quantized while compiling, as olmoc run
 * --dtype q8 quantizes them at load; the binary's quantize step gets its
 * scratch rows from the loader. The same text as run (weights read, mapped,
 * embedded), the same logits bit for bit (library, native and AVX2, whose
 * kernels take the vpmaddubsw path), and a pack refused by a binary of
 * another dtype. */
static void test_q8(void **state) {
  (void)state;
  must(compile("--dtype q8 -o $OUT_DIR/tinyq8"));
  expect_stderr("(q8 weights");
  must(sh("%s/tinyq8 " PROMPT, dir));
  assert_string_equal(stdout_text, reference_q8);
  must(sh("%s/tinyq8 " PROMPT " --mmap", dir));
  assert_string_equal(stdout_text, reference_q8);
  must(sh("%s/tinyq8 " PROMPT " --ctx 64", dir)); /* a smaller context: the same scratch rows suffice */
  assert_string_equal(stdout_text, reference_q8);
  assert_true(weights_bytes("tinyq8") < weights_bytes("tiny") * 3 / 4); /* the bf16 embedding is in both */
  /* a q8 pack is refused by a bf16 binary, and the other way round */
  assert_int_equal(sh("%s/tiny " PROMPT " --weights %s/tinyq8.weights", dir, dir), 1);
  expect_stderr("tinyq8.weights: q8 weights, but this binary's kernels were compiled for bf16 weights");
  assert_int_equal(sh("%s/tinyq8 " PROMPT " --weights %s/tiny.weights", dir, dir), 1);
  expect_stderr("tiny.weights: bf16 weights, but this binary's kernels were compiled for q8 weights");

  must(compile("--dtype q8 --embed-weights -o $OUT_DIR/tinyq8e"));
  must(sh("%s/tinyq8e " PROMPT " --mmap", dir));
  assert_string_equal(stdout_text, reference_q8);

  const char *targets[] = {"native", "avx2"};
  for (int t = 0; t < 2; t++) {
    must(sh("mkdir -p %s/q8%s && %s/olmoc compile -m " MODEL " --emit lib --dtype q8 --target %s -o "
            "%s/q8%s/tiny", dir, targets[t], OLMOC_BUILD_DIR, targets[t], dir, targets[t]));
    char so[600];
    snprintf(so, sizeof so, "%s/q8%s/libtiny.so", dir, targets[t]);
    api a;
    olmoc_model *m = library_matches_jit(&a, so, targets[t], (mode){.q8 = true});
    /* and the logits of the command line's JIT, as olmoc logits writes them */
    must(sh("%s/olmoc logits -m " MODEL " --backend jit --dtype q8 --target %s -t 1 --ids 9,300,4001 -o "
            "%s/q8%s/want.npy", OLMOC_BUILD_DIR, targets[t], dir, targets[t]));
    snprintf(so, sizeof so, "%s/q8%s/want.npy", dir, targets[t]);
    size_t n;
    char *npy = slurp(so, &n);
    size_t data = 10 + (size_t)(unsigned char)npy[8] + 256 * (size_t)(unsigned char)npy[9]; /* NPY 1.0 */
    assert_int_equal(n, data + 3 * 4096 * sizeof(float));
    const int32_t ids[] = {9, 300, 4001};
    const float *got;
    assert_int_equal(a.rewind(m, 0), OLMOC_OK);
    assert_int_equal(a.eval(m, ids, 3, &got), OLMOC_OK);
    assert_memory_equal(got, npy + data, 3 * 4096 * sizeof *got);
    free(npy);
    a.free(m);
    dlclose(a.so);
  }
}

/* --dtype q4: the library's logits are the JIT's bit for bit, the binary
 * writes what `olmoc run --dtype q4` writes, its weights are smaller than
 * q8's, and a q8 binary refuses its pack by name. */
static void test_q4(void **state) {
  (void)state;
  must(sh("mkdir -p %s/q4 && %s/olmoc compile -m " MODEL " --emit lib --dtype q4 -o %s/q4/tiny", dir,
          OLMOC_BUILD_DIR, dir));
  expect_stderr("(q4 weights");
  char so[600];
  snprintf(so, sizeof so, "%s/q4/libtiny.so", dir);
  api a;
  olmoc_model *m = library_matches_jit(&a, so, "native", (mode){.q4 = true});
  a.free(m);
  dlclose(a.so);

  must(sh("%s/olmoc run -m " MODEL " " PROMPT " --dtype q4", OLMOC_BUILD_DIR));
  char want[sizeof stdout_text];
  snprintf(want, sizeof want, "%s", stdout_text);
  must(compile("--dtype q4 -o $OUT_DIR/tinyq4"));
  must(sh("%s/tinyq4 " PROMPT, dir));
  assert_string_equal(stdout_text, want);
  must(compile("--dtype q8 -o $OUT_DIR/tinyq8b"));
  assert_true(weights_bytes("tinyq4") < weights_bytes("tinyq8b"));
  assert_int_equal(sh("%s/tinyq8b " PROMPT " --weights %s/tinyq4.weights", dir, dir), 1);
  expect_stderr("tinyq4.weights: q4 weights, but this binary's kernels were compiled for q8 weights");
}

static int entries(const char *path) {
  DIR *d = opendir(path);
  assert_non_null(d);
  int n = 0;
  for (struct dirent *x; (x = readdir(d));)
    n += x->d_name[0] != '.';
  closedir(d);
  return n;
}

static void test_errors(void **state) {
  (void)state;
  char scratch[600];
  snprintf(scratch, sizeof scratch, "%s/scratch", tmpdir);
  int before = entries(scratch);
  assert_int_equal(sh("TMPDIR=%s CC=false %s/olmoc compile -m " MODEL " -o %s/broken", scratch,
                      OLMOC_BUILD_DIR, dir), 1);
  expect_stderr("the link failed (exit status 1): false -c -fPIC");
  assert_int_equal(entries(scratch), before); /* the scratch directory is gone */
  char path[600];
  snprintf(path, sizeof path, "%s/broken.weights", dir);
  assert_int_not_equal(access(path, F_OK), 0); /* and so is the pack */
  assert_int_equal(compile("-o $OUT_DIR/x --emit so"), 1);
  expect_stderr("--emit: expected exe or lib, found 'so'");
  assert_int_equal(compile("-o $OUT_DIR/x --dtype q3"), 1);
  expect_stderr("--dtype: expected f32, bf16, q8 or q4, found 'q3'");
  assert_int_equal(compile("-o $OUT_DIR/x --target arm"), 1);
  expect_stderr("--target: expected native or avx2, found 'arm'");
  assert_int_equal(compile("-o $OUT_DIR/x -O1 --passes=cse"), 1);
  expect_stderr("give one of -O0, -O1, -O2 and --passes");
  assert_int_equal(compile(""), 1);
  expect_stderr("no output: give -o OUT");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exe_matches_run), cmocka_unit_test(test_embedded),
      cmocka_unit_test(test_ldd),            cmocka_unit_test(test_damaged_weights),
      cmocka_unit_test(test_dtype),          cmocka_unit_test(test_avx2),
      cmocka_unit_test(test_library),        cmocka_unit_test(test_bf16_compute),
      cmocka_unit_test(test_kv_bf16),
      cmocka_unit_test(test_q8),
      cmocka_unit_test(test_q4),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, setup, remove_tmpdir);
}
