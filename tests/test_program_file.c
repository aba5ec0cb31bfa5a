/* A model binary refuses a weights file whose program would make a kernel
 * touch memory outside its buffers, whatever its checksums say. Each case
 * below takes the bundled model's compiled .weights, changes one field of
 * its program section (found by walking the record as program_file.c
 * writes it), writes the pack again with every checksum recomputed, and
 * runs the binary on it: it must exit 1 with a message naming what is
 * wrong, where before it wrote past heap buffers, read past the arena or
 * died of SIGSEGV in a kernel. The unchanged file still runs. */
#include "cli_harness.h"

#include "olmoc/pack.h"

#define MAX_STEPS 1024

/* Where each field of the program record lies, by byte offset. */
typedef struct arg_at {
  size_t kind, section, offset, stride;
} arg_at;

typedef struct step_at {
  size_t call, kernel, work, rows, grain;
  const char *what;
  int n_args;
  arg_at arg[5];
} step_at;

typedef struct program_at {
  const unsigned char *data;
  size_t n, at, arena, ctx;
  char kernels[64][128]; /* the kernel symbols, by index */
  int n_kernels, n_steps;
  step_at step[MAX_STEPS];
  arg_at output;
} program_at;

static uint32_t u32_at(const unsigned char *d, size_t at) {
  uint32_t v;
  memcpy(&v, d + at, sizeof v);
  return v;
}

static uint32_t take32(program_at *p) {
  assert_true(p->at + 4 <= p->n);
  uint32_t v = u32_at(p->data, p->at);
  p->at += 4;
  return v;
}

static size_t field(program_at *p, size_t n) {
  size_t at = p->at;
  p->at += n;
  assert_true(p->at <= p->n);
  return at;
}

static const char *take_str(program_at *p) {
  uint32_t n = take32(p);
  return (const char *)p->data + field(p, n + 1);
}

static arg_at take_arg(program_at *p) {
  arg_at a = {.kind = field(p, 4), .section = field(p, 4), .offset = field(p, 8), .stride = field(p, 8)};
  return a;
}

static void walk(program_at *p, const unsigned char *data, size_t n) {
  *p = (program_at){.data = data, .n = n};
  p->n_kernels = (int)take32(p);
  assert_true(p->n_kernels <= 64);
  for (int i = 0; i < p->n_kernels; i++)
    snprintf(p->kernels[i], sizeof p->kernels[i], "%s", take_str(p));
  p->arena = field(p, 8);
  field(p, 8); /* max_tokens */
  p->ctx = field(p, 8);
  uint32_t caches = take32(p);
  field(p, caches * 12);
  uint32_t scratch = take32(p);
  field(p, scratch * 8);
  p->n_steps = (int)take32(p);
  assert_true(p->n_steps <= MAX_STEPS);
  for (int i = 0; i < p->n_steps; i++) {
    step_at *s = &p->step[i];
    s->call = field(p, 4), s->kernel = field(p, 4);
    s->n_args = (int)take32(p);
    s->what = take_str(p);
    for (int a = 0; a < s->n_args; a++)
      s->arg[a] = take_arg(p);
    s->work = field(p, 24), s->rows = field(p, 24), s->grain = field(p, 8);
    field(p, 24); /* row_floats, kv_heads, layer */
  }
  p->output = take_arg(p);
  field(p, 16);
  assert_int_equal(p->at, p->n);
}

static char weights[256], binary[256], q8_weights[256], q8_binary[256];

static int setup(void **state) {
  if (make_tmpdir(state))
    return -1;
  snprintf(binary, sizeof binary, "%s/tiny", tmpdir);
  snprintf(weights, sizeof weights, "%s/tiny.weights", tmpdir);
  snprintf(q8_binary, sizeof q8_binary, "%s/tiny-q8", tmpdir);
  snprintf(q8_weights, sizeof q8_weights, "%s/tiny-q8.weights", tmpdir);
  char args[600];
  snprintf(args, sizeof args, "compile -q -o %s", binary);
  assert_int_equal(olmoc(args), 0);
  snprintf(args, sizeof args, "compile -q --dtype q8 -o %s", q8_binary);
  assert_int_equal(olmoc(args), 0);
  return 0;
}

static int teardown(void **state) { return remove_tmpdir(state); }

/* An edit of the program record p (walked), in place. */
typedef void edit_fn(program_at *p, unsigned char *record, rt_pack *pack);

static void put64(unsigned char *record, size_t at, int64_t v) { memcpy(record + at, &v, sizeof v); }
static void put32(unsigned char *record, size_t at, uint32_t v) { memcpy(record + at, &v, sizeof v); }
static int64_t get64(const unsigned char *record, size_t at) {
  int64_t v;
  memcpy(&v, record + at, sizeof v);
  return v;
}

/* The first step named what, and the index of the first kernel whose symbol starts with kernel. */
static step_at *step_named(program_at *p, const char *what) {
  for (int i = 0; i < p->n_steps; i++)
    if (!strcmp(p->step[i].what, what))
      return &p->step[i];
  fail_msg("no step %s", what);
  return NULL;
}

static uint32_t kernel_named(program_at *p, const char *prefix) {
  for (int i = 0; i < p->n_kernels; i++)
    if (!strncmp(p->kernels[i], prefix, strlen(prefix)))
      return (uint32_t)i;
  fail_msg("no kernel %s", prefix);
  return 0;
}

/* The bytes of the section argument a of the record points into. */
static uint64_t section_bytes(rt_pack *pack, const unsigned char *record, arg_at a) {
  return rt_pack_section_at(pack, (int)u32_at(record, a.section))->bytes;
}

static void kv_append_twice_the_rows(program_at *p, unsigned char *r, rt_pack *k) {
  (void)k;
  put64(r, step_named(p, "kv_append")->work + 8, 2); /* work 2T rows: past the cache's end at P + T = ctx */
}

static void output_at_the_arena_end(program_at *p, unsigned char *r, rt_pack *k) {
  (void)k;
  put64(r, p->output.offset, get64(r, p->arena) - 64); /* rt_generate read T rows from there */
}

static void matmul_more_columns(program_at *p, unsigned char *r, rt_pack *k) {
  (void)k;
  size_t at = step_named(p, "matmul")->work;
  put64(r, at, get64(r, at) + 64);
}

static void rope_table_at_its_end(program_at *p, unsigned char *r, rt_pack *k) {
  arg_at cos = step_named(p, "rope")->arg[1];
  put64(r, cos.offset, (int64_t)section_bytes(k, r, cos) - 4);
}

static void embedding_past_its_section(program_at *p, unsigned char *r, rt_pack *k) {
  arg_at table = step_named(p, "gather")->arg[0];
  put64(r, table.offset, (int64_t)section_bytes(k, r, table) / 2);
}

static void matmul_calls_rmsnorm(program_at *p, unsigned char *r, rt_pack *k) {
  (void)k;
  put32(r, step_named(p, "matmul")->kernel, kernel_named(p, "cg_rmsnorm"));
}

static void rmsnorm_calls_matmul(program_at *p, unsigned char *r, rt_pack *k) {
  (void)k;
  step_at *s = step_named(p, "rmsnorm");
  put32(r, s->kernel, kernel_named(p, "cg_matmul_"));
  put32(r, s->call, 0); /* RT_CALL_MATMUL, to pass the call check */
}

static void work_overflows(program_at *p, unsigned char *r, rt_pack *k) {
  (void)k;
  put64(r, step_named(p, "rmsnorm")->work + 8, INT64_MAX / 3);
}

static void grain_of_one(program_at *p, unsigned char *r, rt_pack *k) {
  (void)k;
  put64(r, step_named(p, "matmul")->grain, 1);
}

static void attention_reads_the_arena(program_at *p, unsigned char *r, rt_pack *k) {
  (void)k;
  put32(r, step_named(p, "attention")->arg[1].kind, 0); /* RT_ARG_ARENA */
}

static void larger_context(program_at *p, unsigned char *r, rt_pack *k) {
  (void)k;
  put64(r, p->ctx, get64(r, p->ctx) * 4); /* the rope tables hold the compiled context only */
}

static void negative_rows(program_at *p, unsigned char *r, rt_pack *k) {
  (void)k;
  put64(r, step_named(p, "matmul")->rows + 8, -1);
}

/* A copy of src at path with its program section edited, its weight
 * section `emptied` (if >= 0) made zero bytes. */
static void craft(const char *src, const char *path, edit_fn *edit, int emptied) {
  rt_pack *pack;
  oc_error e = {{0}};
  assert_int_equal(rt_pack_open(src, 0, NULL, RT_PACK_READ, NULL, &pack, &e), 0);
  const rt_pack_header *h = rt_pack_header_of(pack);
  rt_pack_target t = {h->cpu, h->features, h->build_id, h->dtype};
  rt_pack_writer *w;
  assert_int_equal(rt_pack_create(path, &t, &w, &e), 0);
  for (int i = 0; i < rt_pack_count(pack); i++) {
    const rt_pack_section *s = rt_pack_section_at(pack, i);
    unsigned char *bytes = malloc(s->bytes + 1);
    assert_non_null(bytes);
    memcpy(bytes, rt_pack_data(pack, i), s->bytes);
    if (s->kind == RT_PACK_PROGRAM && edit) {
      static program_at p;
      walk(&p, bytes, s->bytes);
      edit(&p, bytes, pack);
    }
    assert_int_equal(rt_pack_add(w, s->kind, s->name, bytes, i == emptied ? 0 : s->bytes, NULL, &e), 0);
    free(bytes);
  }
  assert_int_equal(rt_pack_finish(w, &e), 0);
  rt_pack_close(pack);
}

static void expect_refused(const char *bin, const char *path, const char *words) {
  char cmd[1024];
  for (int mmap = 0; mmap < 2; mmap++) {
    snprintf(cmd, sizeof cmd, "timeout 60 %s --weights %s %s -p 'The jury' -n 4", bin, path, mmap ? "--mmap" : "");
    int rc = shell(cmd);
    if (rc != 1)
      fail_msg("%s: exit %d, expected 1 with \"%s\":\n%s", cmd, rc, words, out);
    expect_output("does not keep to its kernels' bounds");
    expect_output(words);
  }
}

static void test_unchanged_runs(void **state) {
  (void)state;
  char path[300], cmd[1024];
  snprintf(path, sizeof path, "%s/same.weights", tmpdir);
  craft(weights, path, NULL, -1);
  snprintf(cmd, sizeof cmd, "timeout 60 %s --weights %s -p 'The jury' -n 4 --temp 0", binary, path);
  assert_int_equal(shell(cmd), 0);
}

static void test_crafted_programs_refused(void **state) {
  (void)state;
  const struct {
    edit_fn *edit;
    const char *says;
  } cases[] = {
      {kv_append_twice_the_rows, "step kv_append: up to"},
      {output_at_the_arena_end, "step output: its output (the arena) may be touched"},
      {matmul_more_columns, "step matmul: up to"},
      {rope_table_at_its_end, "step rope: argument 1 (a buffer) may be touched"},
      {embedding_past_its_section, "step gather: argument 0 (a buffer) may be touched"},
      {matmul_calls_rmsnorm, "step matmul: called as call 0 with 3 arguments"},
      {rmsnorm_calls_matmul, "step rmsnorm: called as call 0 with 3 arguments and grain 1"},
      {work_overflows, "step rmsnorm: its work count overflows"},
      {grain_of_one, "step matmul: called as call 0 with 3 arguments and grain 1"},
      {attention_reads_the_arena, "step attention: argument 1 is the arena, which its kernel does not take"},
      {larger_context, "step rope: argument 1 (a buffer) may be touched"},
      {negative_rows, "step matmul: a work count of"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char path[300];
    snprintf(path, sizeof path, "%s/crafted%zu.weights", tmpdir, i);
    craft(weights, path, cases[i].edit, -1);
    expect_refused(binary, path, cases[i].says);
  }
}

/* A weight section cut to zero bytes is not weights of zeros. */
static void test_empty_weights_refused(void **state) {
  (void)state;
  rt_pack *pack;
  oc_error e = {{0}};
  assert_int_equal(rt_pack_open(weights, 0, NULL, RT_PACK_READ, NULL, &pack, &e), 0);
  int largest = -1;
  for (int i = 0; i < rt_pack_count(pack); i++)
    if (rt_pack_section_at(pack, i)->kind == RT_PACK_BUFFER &&
        (largest < 0 || rt_pack_section_at(pack, i)->bytes > rt_pack_section_at(pack, largest)->bytes))
      largest = i;
  rt_pack_close(pack);
  char path[300];
  snprintf(path, sizeof path, "%s/empty.weights", tmpdir);
  craft(weights, path, NULL, largest);
  expect_refused(binary, path, "beyond its end");
}

/* q8's quantized rows are a scratch buffer the program writes: moved to its end, refused. */
static void q8_rows_at_their_end(program_at *p, unsigned char *r, rt_pack *k) {
  (void)k;
  put64(r, step_named(p, "q8_quantize")->arg[1].offset, 1 << 20);
}

static void q8_writes_a_weight(program_at *p, unsigned char *r, rt_pack *k) {
  (void)k;
  step_at *q = step_named(p, "q8_quantize"), *m = step_named(p, "matmul");
  memcpy(r + q->arg[1].kind, r + m->arg[1].kind, 24); /* kind, section, offset of the matmul's weights */
}

static void test_crafted_q8_refused(void **state) {
  (void)state;
  char path[300];
  snprintf(path, sizeof path, "%s/q8-rows.weights", tmpdir);
  craft(q8_weights, path, q8_rows_at_their_end, -1);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "timeout 60 %s --weights %s -p x", q8_binary, path);
  assert_int_equal(shell(cmd), 1);
  expect_output("an argument lies outside its memory");
  snprintf(path, sizeof path, "%s/q8-weight.weights", tmpdir);
  craft(q8_weights, path, q8_writes_a_weight, -1);
  expect_refused(q8_binary, path, "step q8_quantize: argument 1 is written, and it is a read-only buffer");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unchanged_runs),
      cmocka_unit_test(test_crafted_programs_refused),
      cmocka_unit_test(test_empty_weights_refused),
      cmocka_unit_test(test_crafted_q8_refused),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
