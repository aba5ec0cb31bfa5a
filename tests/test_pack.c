/* The packed file of a compiled model, in process: a model lowered with its
 * weights streamed into a pack (kernels from a JIT, so the program read back
 * can run here), read back in both load modes, gives the same logits bit for
 * bit as the JIT on the checkpoint's weights converted in memory (the
 * bundled bf16 model packed as f32, and as q8 from those f32 weights, its
 * quantize step's scratch buffer allocated again at load, writable even when
 * the weights are mapped read-only; the f32 golden model packed as bf16,
 * rounded to nearest even); the tokenizer and generation metadata survive
 * the trip; and every kind of damage (a flipped byte anywhere, truncation,
 * another version, dtype, target or build) is refused with a message naming
 * the file and the problem. */
#include <fcntl.h>
#include <math.h>

#include "cli_harness.h"
#include "olmoc/aot.h"
#include "olmoc/compile.h"
#include "olmoc/olmo2.h"
#include "olmoc/passes.h"
#include "program_harness.h"

#define MODEL "models/olmo2-tiny"
#define CTX 64
#define BUILD 0x0123456789abcdefull

/* [0]: the bundled model (bf16 checkpoint) with f32 weights; [1]: the golden
 * tiny model (f32 checkpoint) with bf16 weights */
static const char *const model_dir[2] = {MODEL, "tests/data/tiny"};

typedef struct fixture {
  olmo2_config config[2];
  ir_graph *graph[2]; /* after -O2 */
  pass_result passes[2];
  rt_weights *weights[2];
  rt_tokenizer *tokenizer;
  cg_target target;
  cg_jit *jit, *jit_q8; /* jit_q8: the same target, matmul weights quantized (cg_jit_set_q8) */
  char pack[256], pack_bf16[256], pack_q8[256];
} fixture;

static const int32_t prompt[] = {17, 200, 5, 40, 91, 33, 102}; /* < both vocabularies */
#define N_PROMPT 7

/* The graph's weights' dtype in the pack (q8: matmul weights quantized by jit). */
static rt_pack_dtype pack_dtype(const cg_jit *jit, int which) {
  return cg_jit_q8(jit) ? RT_PACK_Q8 : which ? RT_PACK_BF16 : RT_PACK_F32;
}

/* Writes the model with weights in dtype to path, as olmoc compile does
 * (but with the JIT's kernels). */
static void write_pack(fixture *f, int which, cg_jit *jit, const char *path) {
  oc_error e;
  rt_pack_writer *w;
  rt_pack_target t = {f->target.cpu, f->target.features, BUILD, pack_dtype(jit, which)};
  rt_aot_meta meta = {.vocab = f->config[which].vocab_size, .ctx = CTX, .n_eos = 1, .eos = {4095},
                      .has_sampling = true, .sampling = rt_sampling_default()};
  snprintf(meta.model, sizeof meta.model, "%s", MODEL);
  meta.sampling.temperature = 0.7f, meta.sampling.top_k = 40;
  check(rt_chat_template_named("olmo2", &meta.chat, &e), &e);
  meta.has_chat = true;
  check(rt_pack_create(path, &t, &w, &e), &e);
  check(cg_lower_packed(jit, f->graph[which], &f->passes[which].plan, CTX, f->weights[which],
                        which ? IR_BF16 : IR_F32, w, &e), &e);
  check(rt_tokenizer_pack(f->tokenizer, w, &e), &e);
  check(rt_aot_meta_pack(&meta, w, &e), &e);
  check(rt_pack_finish(w, &e), &e);
}

static int setup(void **state) {
  static fixture f;
  oc_error e;
  if (make_tmpdir(state))
    return -1;
  check(rt_tokenizer_load(MODEL, &f.tokenizer, &e), &e);
  for (int i = 0; i < 2; i++) {
    check(olmo2_config_load(model_dir[i], &f.config[i], &e), &e);
    check(rt_weights_open(model_dir[i], &f.weights[i], &e), &e);
    check(olmo2_build_graph(&f.config[i], i ? IR_BF16 : IR_F32, &f.graph[i], &e), &e);
    pass_options o = {.level = 2, .max_tokens = CTX, .max_ctx = CTX};
    check(pass_run_pipeline(f.graph[i], &o, &f.passes[i], &e), &e);
  }
  check(cg_target_named("native", &f.target, &e), &e);
  check(cg_jit_new_for_cpu(f.target.cpu, f.target.features, &f.jit, &e), &e);
  check(cg_jit_new_for_cpu(f.target.cpu, f.target.features, &f.jit_q8, &e), &e);
  cg_jit_set_q8(f.jit_q8, true);
  snprintf(f.pack, sizeof f.pack, "%s/tiny.weights", tmpdir);
  snprintf(f.pack_bf16, sizeof f.pack_bf16, "%s/tiny-bf16.weights", tmpdir);
  snprintf(f.pack_q8, sizeof f.pack_q8, "%s/tiny-q8.weights", tmpdir);
  write_pack(&f, 0, f.jit, f.pack);
  write_pack(&f, 1, f.jit, f.pack_bf16);
  write_pack(&f, 0, f.jit_q8, f.pack_q8);
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  cg_jit_free(f->jit);
  cg_jit_free(f->jit_q8);
  for (int i = 0; i < 2; i++) {
    pass_result_free(&f->passes[i]);
    ir_graph_free(f->graph[i]);
    rt_weights_close(f->weights[i]);
  }
  rt_tokenizer_free(f->tokenizer);
  return remove_tmpdir(state);
}

static rt_pack_expect expect_of(const fixture *f) {
  return (rt_pack_expect){f->target.cpu, f->target.features, BUILD, 0};
}

/* The pack at byte `at` of path, which must open. */
static rt_pack *open_pack(const fixture *f, const char *path, uint64_t at, rt_pack_load how) {
  oc_error e;
  rt_pack *pack;
  rt_pack_expect x = expect_of(f);
  check(rt_pack_open(path, at, &x, how, NULL, &pack, &e), &e);
  return pack;
}

/* The prompt's logits, then one decode step's, from p. */
static float *logits_of(fixture *f, int which, rt_program *p) {
  return prompt_then_step(p, prompt, N_PROMPT, 77, f->config[which].vocab_size);
}

/* The checkpoint's weights converted in memory to the graph's dtype (bf16
 * rounded to nearest even), for the JIT's reference. */
typedef struct converted {
  rt_weights *src;
  ir_dtype dtype;
  void *mem[64];
  int n;
} converted;

static uint16_t bf16_rne(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

static int convert_lookup(void *ctx, const char *name, ir_tensor *out, oc_error *e) {
  converted *c = ctx;
  if (rt_weights_lookup(c->src, name, out, e))
    return -1;
  int64_t count = 1;
  for (int d = 0; d < out->rank; d++)
    count *= out->dims[d];
  void *mem = malloc((size_t)count * (c->dtype == IR_F32 ? 4 : 2));
  assert_non_null(mem);
  assert_true(c->n < 64);
  c->mem[c->n++] = mem;
  for (int64_t i = 0; i < count; i++) {
    float x = ir_load_f32(out->dtype, out->data, i);
    if (c->dtype == IR_F32)
      ((float *)mem)[i] = x;
    else
      ((uint16_t *)mem)[i] = bf16_rne(x);
  }
  out->dtype = c->dtype;
  out->data = mem;
  return 0;
}

static void compare(fixture *f, int which, cg_jit *j, const char *path, rt_pack_load how) {
  oc_error e;
  rt_program *jit, *packed;
  converted r = {.src = f->weights[which], .dtype = which ? IR_BF16 : IR_F32};
  check(cg_lower(j, f->graph[which], &f->passes[which].plan, CTX, convert_lookup, &r, &jit, &e), &e);
  rt_pack *pack = open_pack(f, path, 0, how);
  assert_int_equal(rt_pack_header_of(pack)->dtype, pack_dtype(j, which));
  rt_kernel_symbol *k;
  int n;
  check(cg_kernel_symbols(j, &k, &n, &e), &e);
  check(rt_program_unpack(pack, k, n, 0, &packed, &e), &e);
  assert_int_equal(rt_program_steps(packed), rt_program_steps(jit));
  float *want = logits_of(f, which, jit), *got = logits_of(f, which, packed);
  assert_memory_equal(want, got, (size_t)((N_PROMPT + 1) * f->config[which].vocab_size) * sizeof *got);
  free(want);
  free(got);
  free(k);
  rt_program_free(packed);
  rt_program_free(jit);
  rt_pack_close(pack);
  for (int i = 0; i < r.n; i++)
    free(r.mem[i]);
}

static void test_logits_bitwise(void **state) {
  fixture *f = *state;
  compare(f, 0, f->jit, f->pack, RT_PACK_READ);
  compare(f, 0, f->jit, f->pack, RT_PACK_MMAP);
  compare(f, 1, f->jit, f->pack_bf16, RT_PACK_READ);
  compare(f, 0, f->jit_q8, f->pack_q8, RT_PACK_READ);
  compare(f, 0, f->jit_q8, f->pack_q8, RT_PACK_MMAP); /* the quantized rows go to writable memory */
}

/* q8: the matmul weights are packed q8 (well under half the f32 pack), and
 * the quantize step's buffer is no section: the program records its size
 * (max tokens x rows of the widest K, the MLP's down projection), and
 * unpacking allocates it. */
static void test_q8_sections(void **state) {
  fixture *f = *state;
  size_t total[2] = {0, 0}, scratch = (size_t)CTX * cg_q8_row_bytes(f->config[0].intermediate_size);
  const char *path[2] = {f->pack, f->pack_q8};
  for (int which = 0; which < 2; which++) {
    rt_pack *pack = open_pack(f, path[which], 0, RT_PACK_READ);
    for (int i = 0; i < rt_pack_count(pack); i++) {
      const rt_pack_section *s = rt_pack_section_at(pack, i);
      total[which] += s->kind == RT_PACK_BUFFER ? s->bytes : 0;
      if (which && s->kind == RT_PACK_BUFFER && s->bytes == scratch)
        fail_msg("section %s has the bytes of the quantized rows", s->name);
    }
    rt_pack_close(pack);
  }
  /* 34 bytes per 32 weights against 128; the f32 embedding table is in both */
  assert_true(total[1] < total[0] / 2);
}

static void test_smaller_context(void **state) {
  fixture *f = *state;
  oc_error e;
  rt_pack *pack = open_pack(f, f->pack, 0, RT_PACK_MMAP);
  rt_kernel_symbol *k;
  int n;
  rt_program *p = NULL;
  check(cg_kernel_symbols(f->jit, &k, &n, &e), &e);
  check(rt_program_unpack(pack, k, n, 8, &p, &e), &e);
  int32_t ids[9] = {0};
  assert_null(rt_program_run(p, ids, 9, 1, &e));
  expect_error(e.msg, "exceeds the 8 positions");
  rt_program_free(p);
  assert_int_equal(rt_program_unpack(pack, k, n, CTX + 1, &p, &e), -1);
  expect_error(e.msg, "exceeds the 64 the model was compiled for");
  assert_int_equal(rt_program_unpack(pack, k, 1, 0, &p, &e), -1);
  expect_error(e.msg, "which this binary does not have");
  free(k);
  rt_pack_close(pack);
}

/* An unpacker over a copy of a section: 0 or -1 with a message. */
typedef int (*unpacker)(const void *data, size_t n, oc_error *e);

static int unpack_tokenizer(const void *data, size_t n, oc_error *e) {
  rt_tokenizer *t = NULL;
  int rc = rt_tokenizer_unpack(data, n, "x", &t, e);
  rt_tokenizer_free(t);
  return rc;
}

static int unpack_meta(const void *data, size_t n, oc_error *e) {
  rt_aot_meta m;
  return rt_aot_meta_unpack(data, n, "x", &m, e);
}

/* Every refusal has a message: the section cut at many lengths, and one
 * byte of it changed at many places (every byte of its first 4 KiB, then
 * strided), each unpacked from a copy. */
static void expect_refusals_said(const void *section, size_t n, unpacker unpack) {
  unsigned char *copy = malloc(n + 1);
  assert_non_null(copy);
  for (size_t at = 0; at < n; at += at < 4096 ? 1 : 509)
    for (int cut = 0; cut < 2; cut++) {
      memcpy(copy, section, n);
      copy[at] ^= 0x5a;
      oc_error e = {{0}};
      if (unpack(copy, cut ? at : n, &e) && !e.msg[0])
        fail_msg("refused without a message: byte %zu changed%s", at, cut ? ", cut there" : "");
    }
  free(copy);
}

static void test_tokenizer_and_meta(void **state) {
  fixture *f = *state;
  oc_error e;
  rt_pack *pack = open_pack(f, f->pack, 0, RT_PACK_READ);
  int tok = rt_pack_find(pack, RT_PACK_TOKENIZER), meta = rt_pack_find(pack, RT_PACK_META);
  assert_true(tok >= 0 && meta >= 0);
  expect_refusals_said(rt_pack_data(pack, tok), rt_pack_section_at(pack, tok)->bytes, unpack_tokenizer);
  expect_refusals_said(rt_pack_data(pack, meta), rt_pack_section_at(pack, meta)->bytes, unpack_meta);
  rt_tokenizer *t;
  check(rt_tokenizer_unpack(rt_pack_data(pack, tok), rt_pack_section_at(pack, tok)->bytes, "x", &t, &e), &e);
  const char *texts[] = {"Language modeling is ", "The jury said, \"I'd rather not.\" 1984<|endoftext|>x",
                         "caf\xc3\xa9 \xe2\x80\x94 naïve\n\n  tabs\tand 12345 digits", "\xff\xfe broken"};
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    int32_t *a, *b;
    size_t na, nb;
    check(rt_tokenizer_encode(f->tokenizer, texts[i], strlen(texts[i]), &a, &na, &e), &e);
    check(rt_tokenizer_encode(t, texts[i], strlen(texts[i]), &b, &nb, &e), &e);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    char *text;
    size_t len;
    check(rt_tokenizer_decode(t, b, nb, &text, &len, &e), &e);
    free(text);
    free(a);
    free(b);
  }
  assert_int_equal(rt_tokenizer_find(t, "<|endoftext|>"), 4095);
  assert_true(rt_tokenizer_is_special(t, 4095));
  rt_tokenizer_free(t);
  rt_aot_meta m;
  check(rt_aot_meta_unpack(rt_pack_data(pack, meta), rt_pack_section_at(pack, meta)->bytes, "x", &m, &e), &e);
  assert_string_equal(m.model, MODEL);
  assert_int_equal(m.vocab, 4096);
  assert_int_equal(m.ctx, CTX);
  assert_int_equal(m.n_eos, 1);
  assert_int_equal(m.eos[0], 4095);
  assert_true(m.has_sampling && m.has_chat);
  assert_true(m.sampling.temperature == 0.7f && m.sampling.top_k == 40);
  assert_string_equal(m.chat.eos_token, "<|endoftext|>");
  rt_pack_close(pack);
}

/* ---- damage ---- */

static char *copy_of(const char *path, size_t *n) {
  return slurp(path, n);
}

static void write_all(const char *path, const char *data, size_t n) {
  FILE *out = fopen(path, "wb");
  assert_non_null(out);
  assert_int_equal(fwrite(data, 1, n, out), n);
  fclose(out);
}

/* Opens a changed copy of the pack and expects the words in the refusal. */
static void expect_refused(fixture *f, const char *data, size_t n, rt_pack_load how,
                           const rt_pack_expect *x, const char *words) {
  char path[300];
  snprintf(path, sizeof path, "%s/damaged.weights", tmpdir);
  write_all(path, data, n);
  oc_error e = {{0}};
  rt_pack *p = NULL;
  rt_pack_expect mine = expect_of(f);
  assert_int_equal(rt_pack_open(path, 0, x ? x : &mine, how, NULL, &p, &e), -1);
  assert_null(p);
  expect_error(e.msg, path);
  expect_error(e.msg, words);
}

static void test_damage(void **state) {
  fixture *f = *state;
  size_t n;
  char *data = copy_of(f->pack, &n);
  rt_pack_header h;
  memcpy(&h, data, sizeof h);
  rt_pack_section table[512];
  assert_true(h.n_sections <= 512);
  memcpy(table, data + h.table_offset, h.n_sections * sizeof *table);

  /* a flipped byte in each part: header, a weight, each metadata section, the table */
  const struct {
    size_t at;
    const char *words;
  } flips[] = {
      {offsetof(rt_pack_header, pack_bytes), "header's checksum does not match"},
      {table[0].offset + table[0].bytes / 2, "fails its checksum: the file is damaged"},
      {h.table_offset + 20, "section table's checksum does not match"},
  };
  for (size_t i = 0; i < sizeof flips / sizeof *flips; i++) {
    data[flips[i].at] ^= 0x10;
    expect_refused(f, data, n, RT_PACK_READ, NULL, flips[i].words);
    data[flips[i].at] ^= 0x10;
  }
  for (uint32_t s = 0; s < h.n_sections; s++) {
    if (table[s].kind == RT_PACK_BUFFER && s != h.n_sections - 4)
      continue; /* every metadata section, and one more buffer */
    size_t at = table[s].offset + table[s].bytes - 1;
    data[at] ^= 1;
    expect_refused(f, data, n, RT_PACK_READ, NULL, "fails its checksum");
    expect_refused(f, data, n, RT_PACK_READ, NULL, table[s].name);
    data[at] ^= 1;
  }
  /* with --mmap, damage in the metadata is still found */
  int prog = -1;
  for (uint32_t s = 0; s < h.n_sections; s++)
    prog = table[s].kind == RT_PACK_PROGRAM ? (int)s : prog;
  data[table[prog].offset] ^= 4;
  expect_refused(f, data, n, RT_PACK_MMAP, NULL, "section");
  data[table[prog].offset] ^= 4;

  expect_refused(f, data, n - 1, RT_PACK_READ, NULL, "truncated");
  expect_refused(f, data, n / 2, RT_PACK_MMAP, NULL, "truncated");
  expect_refused(f, data, 100, RT_PACK_READ, NULL, "too short for an olmoc packed weights file");
  expect_refused(f, "hello world", 11, RT_PACK_READ, NULL, "too short");

  rt_pack_header changed = h;
  changed.version = 99;
  memcpy(data, &changed, sizeof changed);
  expect_refused(f, data, n, RT_PACK_READ, NULL, "packed-file version 99, but this binary reads version 3");
  memcpy(changed.magic, "GGUF\0\0\0\0", 8);
  memcpy(data, &changed, sizeof changed);
  expect_refused(f, data, n, RT_PACK_READ, NULL, "not an olmoc packed weights file");
  memcpy(data, &h, sizeof h);

  rt_pack_expect other = {"haswell", "+avx2,+fma", BUILD, 0};
  expect_refused(f, data, n, RT_PACK_READ, &other, "packed for target CPU");
  expect_refused(f, data, n, RT_PACK_READ, &other, "compiled for haswell");
  other = (rt_pack_expect){f->target.cpu, "+avx2", BUILD, 0};
  expect_refused(f, data, n, RT_PACK_READ, &other, "with other CPU features");
  other = (rt_pack_expect){f->target.cpu, f->target.features, BUILD + 1, 0};
  expect_refused(f, data, n, RT_PACK_READ, &other, "written by another `olmoc compile`");
  free(data);

  /* weights of another dtype than the binary's kernels read */
  data = copy_of(f->pack_q8, &n);
  other = (rt_pack_expect){f->target.cpu, f->target.features, BUILD, RT_PACK_BF16};
  expect_refused(f, data, n, RT_PACK_READ, &other, "q8 weights, but this binary's kernels were compiled for "
                 "bf16 weights");
  other.dtype = RT_PACK_Q8;
  memcpy(&h, data, sizeof h);
  changed = h;
  changed.dtype = 7; /* an unknown code, its header checksum made right */
  changed.header_checksum = 0;
  changed.header_checksum = rt_checksum64(&changed, sizeof changed);
  memcpy(data, &changed, sizeof changed);
  expect_refused(f, data, n, RT_PACK_READ, &other, "weights in an unknown dtype (code 7)");
  free(data);
}

static void test_embedded(void **state) {
  fixture *f = *state;
  oc_error e;
  char host[300];
  snprintf(host, sizeof host, "%s/host", tmpdir);
  write_all(host, "not really an executable\n", 25);
  uint64_t at = 1;
  bool found = true;
  check(rt_pack_find_embedded(host, &at, &found, &e), &e);
  assert_false(found);
  int pack = open(f->pack, O_RDONLY), to = open(host, O_WRONLY);
  assert_true(pack >= 0 && to >= 0);
  check(rt_pack_append(pack, f->pack, to, host, NULL, &e), &e);
  close(pack);
  close(to);
  check(rt_pack_find_embedded(host, &at, &found, &e), &e);
  assert_true(found);
  assert_int_equal(at, 4096);
  rt_pack *p = open_pack(f, host, at, RT_PACK_MMAP);
  assert_true(rt_pack_find(p, RT_PACK_PROGRAM) >= 0);
  rt_pack_close(p);
}

static void test_checksum(void **state) {
  (void)state;
  unsigned char buf[1000];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (unsigned char)(i * 7 + 3);
  uint64_t whole = rt_checksum64(buf, sizeof buf);
  for (size_t cut = 0; cut <= sizeof buf; cut += 37) { /* any split gives the same sum */
    rt_checksum c;
    rt_checksum_init(&c);
    rt_checksum_update(&c, buf, cut);
    rt_checksum_update(&c, buf + cut, sizeof buf - cut);
    assert_true(rt_checksum_final(&c) == whole);
  }
  for (size_t i = 0; i < sizeof buf; i += 61) { /* every byte counts, and so does the length */
    buf[i] ^= 0x80;
    assert_true(rt_checksum64(buf, sizeof buf) != whole);
    buf[i] ^= 0x80;
  }
  assert_true(rt_checksum64(buf, sizeof buf - 1) != whole);
  assert_true(rt_checksum64("", 0) != rt_checksum64("\0", 1));
}

static void test_cpu_check(void **state) {
  (void)state;
  oc_error e = {{0}};
  assert_int_equal(rt_cpu_check("haswell", "+avx2,+fma,-avx512f,+64bit,+cx8", &e), 0);
  if (!__builtin_cpu_supports("avx512vp2intersect")) {
    assert_int_equal(rt_cpu_check("tigerlake", "+avx2,+avx512vp2intersect,+fma", &e), -1);
    expect_error(e.msg, "compiled for tigerlake and needs the CPU feature avx512vp2intersect");
    expect_error(e.msg, "--target avx2");
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_logits_bitwise), cmocka_unit_test(test_q8_sections),
      cmocka_unit_test(test_smaller_context),
      cmocka_unit_test(test_tokenizer_and_meta), cmocka_unit_test(test_damage),
      cmocka_unit_test(test_embedded), cmocka_unit_test(test_checksum),
      cmocka_unit_test(test_cpu_check),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
