/* Allocation failure is an error, not a crash. For each operation below, a
 * first run counts its allocations (olmoc/alloc.h: the library's, cJSON's and
 * PCRE2's; not LLVM's, which cannot be hooked); then for N = 1, 2, ... the
 * N-th allocation fails. Each such run must end in an error whose message
 * says "memory", or, where a failure is absorbed (PCRE2's JIT falls back to
 * its interpreter), in exactly the result of the run without failure. What a
 * failed run allocated must all be freed and what it opened closed: the
 * number of live heap blocks (counted by this program's own malloc and free,
 * in the plain build) and of open file descriptors is the same before and
 * after it, and LeakSanitizer checks the whole program under `make
 * test-asan`. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "olmoc/alloc.h"
#include "olmoc/aot.h"
#include "olmoc/chat.h"
#include "olmoc/codegen.h"
#include "olmoc/compile.h"
#include "olmoc/generate.h"
#include "olmoc/interp.h"
#include "olmoc/ir_text.h"
#include "olmoc/olmo2.h"
#include "olmoc/passes.h"
#include "olmoc/tokenizer.h"
#include "olmoc/check_weights.h"
#include "olmoc/weights.h"

#define BUNDLED "models/olmo2-tiny"
#define TINY "tests/data/tiny" /* the golden model: 2 layers, vocab 256 */
#define DOLMA2 "models/olmo2-tokenizer/tokenizer.json"

static char tmpdir[] = "/tmp/olmoc_alloc_XXXXXX";

/* ---- results, compared byte for byte between runs ---- */

typedef struct text {
  char *p;
  size_t n, cap;
} text;

static void add(text *t, const void *data, size_t n) {
  if (t->n + n + 1 > t->cap) {
    t->cap = 2 * (t->n + n + 1);
    t->p = realloc(t->p, t->cap); /* the test's own memory: never made to fail */
    assert_non_null(t->p);
  }
  memcpy(t->p + t->n, data, n);
  t->n += n;
  t->p[t->n] = '\0';
}

__attribute__((format(printf, 2, 3))) static void addf(text *t, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  add(t, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void check(int rc, const oc_error *e) {
  if (rc)
    fail_msg("%s", e->msg);
}

/* ---- the sweep ---- */

typedef int (*run_fn)(void *ctx, text *out, oc_error *e);

/* Live heap blocks: this program replaces malloc and its family (glibc
 * allows it) to count them, libc's own allocations included. Under ASan,
 * which replaces them itself, nothing is counted (LeakSanitizer checks). */
static long live_blocks;
#ifndef __SANITIZE_ADDRESS__
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
static void *counted(void *p) {
  if (p)
    __atomic_fetch_add(&live_blocks, 1, __ATOMIC_RELAXED);
  return p;
}
void *malloc(size_t n) { return counted(__libc_malloc(n)); }
void *calloc(size_t count, size_t n) { return counted(__libc_calloc(count, n)); }
void *memalign(size_t align, size_t n) { return counted(__libc_memalign(align, n)); }
void *aligned_alloc(size_t align, size_t n) { return memalign(align, n); }
void *valloc(size_t n) { return memalign((size_t)sysconf(_SC_PAGESIZE), n); }
void free(void *p) {
  if (p)
    __atomic_fetch_sub(&live_blocks, 1, __ATOMIC_RELAXED);
  __libc_free(p);
}
void *realloc(void *p, size_t n) {
  if (!p)
    return malloc(n);
  if (!n) { /* glibc frees */
    free(p);
    return NULL;
  }
  return __libc_realloc(p, n);
}
int posix_memalign(void **out, size_t align, size_t n) {
  void *p = memalign(align, n);
  if (!p)
    return ENOMEM;
  *out = p;
  return 0;
}
#endif
static long heap_in_use(void) { return __atomic_load_n(&live_blocks, __ATOMIC_RELAXED); }

/* Open file descriptors: a failed run must close what it opened. */
static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

/* Which N to try: every N among the first `head` and the last `tail`, and
 * about `middle` evenly spaced ones between (for operations with too many
 * allocations to try each, nearly all alike: cJSON's nodes of a big file). */
typedef struct plan {
  long head, tail, middle;
} plan;
#define EVERY_N ((plan){LONG_MAX, 0, 0})

static long next_n(long n, long total, plan p) {
  if (n < p.head || n >= total - p.tail)
    return n + 1;
  long stride = (total - p.head - p.tail) / (p.middle + 1) + 1, m = n + stride;
  return m < total - p.tail ? m : total - p.tail;
}

/* Runs `run` once to count its allocations, then once per N with the N-th
 * failing; check_heap: also compare the heap in use before and after each run
 * (not for the JIT, whose LLVM keeps caches). */
static void sweep(const char *name, run_fn run, void *ctx, plan p, bool check_heap) {
  double t0 = rt_seconds();
  oc_error e = {{0}};
  text want = {0};
  oc_alloc_fail_after(LONG_MAX);
  int rc = run(ctx, &want, &e);
  long total = oc_alloc_count();
  oc_alloc_fail_after(0);
  if (rc)
    fail_msg("%s without a failure: %s", name, e.msg);
  long runs = 0, errors = 0;
  for (long n = 1;; n = next_n(n, total, p)) {
    text got = {0};
    e.msg[0] = '\0';
    int fds = open_fds();
    long before = heap_in_use();
    oc_alloc_fail_after(n);
    rc = run(ctx, &got, &e);
    bool fired = oc_alloc_failed();
    oc_alloc_fail_after(0);
    bool same = !rc && got.n == want.n && (!want.n || memcmp(got.p, want.p, want.n) == 0);
    free(got.p);
    long after = heap_in_use();
    if (open_fds() != fds)
      fail_msg("%s, allocation %ld of %ld failing: %d files open before it, %d after", name, n,
               total, fds, open_fds());
    runs++;
    if (rc && !strstr(e.msg, "memory"))
      fail_msg("%s, allocation %ld of %ld failing: the error does not say so: \"%s\"", name, n,
               total, e.msg);
    if (!rc && !same)
      fail_msg("%s, allocation %ld of %ld failing: succeeded with a different result", name, n,
               total);
    if (check_heap && after != before)
      fail_msg("%s, allocation %ld of %ld failing: %ld blocks more in use after it (\"%s\")", name,
               n, total, after - before, e.msg);
    errors += rc != 0;
    if (!fired) {
      if (n <= total)
        fail_msg("%s: allocation %ld of %ld never happened", name, n, total);
      break; /* past the last allocation: the run was whole */
    }
  }
  printf("%s: %ld allocations, %ld runs with one failing, %ld ended in an error, %.1f s\n", name,
         total, runs - 1, errors, rt_seconds() - t0);
  free(want.p);
}

/* ---- config, graph, -O2 passes and the memory plan ---- */

static int compile(void *ctx, text *out, oc_error *e) {
  olmo2_config c;
  ir_graph *g = NULL;
  pass_result r = {0};
  int rc = olmo2_config_load(ctx, &c, e) || olmo2_build_graph(&c, IR_F32, &g, e) ||
           pass_run_pipeline(g, &(pass_options){.level = 2, .max_tokens = 64, .max_ctx = 1024}, &r, e);
  if (!rc) {
    char *s = ir_print_string(g);
    assert_non_null(s);
    addf(out, "%s\narena %lld\n", s, (long long)r.plan.arena_bytes);
    free(s);
  }
  pass_result_free(&r);
  ir_graph_free(g);
  return rc ? -1 : 0;
}

static void test_compile(void **state) {
  (void)state;
  sweep("config + graph + -O2 + plan-memory, " BUNDLED, compile, BUNDLED, EVERY_N, true);
}

/* ---- IR text, and passes over hand-written graphs ---- */

/* Parses tests/data/ir/NAME.ir for each name, verifies it and, when ctx is
 * not NULL, runs -O2 on it (fuse-elementwise makes nodes there). */
static int parse_ir(void *ctx, text *out, oc_error *e) {
  static const char *const files[] = {"attention", "messy", "mlp", "rmsnorm"};
  for (int i = 0; i < 4; i++) {
    char path[128];
    snprintf(path, sizeof path, "tests/data/ir/%s.ir", files[i]);
    ir_graph *g = NULL;
    pass_result r = {0};
    if (ir_parse_file(path, &g, e) || ir_verify(g, e) ||
        (ctx && pass_run_pipeline(g, &(pass_options){.level = 2}, &r, e))) {
      pass_result_free(&r);
      ir_graph_free(g);
      return -1;
    }
    pass_result_free(&r);
    char *s = ir_print_string(g);
    assert_non_null(s);
    add(out, s, strlen(s));
    free(s);
    ir_graph_free(g);
  }
  return 0;
}

static void test_ir_text(void **state) {
  (void)state;
  sweep("IR text, tests/data/ir/*.ir", parse_ir, NULL, EVERY_N, true);
  sweep("IR text and -O2, tests/data/ir/*.ir", parse_ir, "-O2", EVERY_N, true);
}

/* ---- weights: single file, shards with an index, writing ---- */

/* A checkpoint (path) and the config whose graph it must fit. */
typedef struct checkpoint {
  const char *config, *path;
  ir_dtype dtype; /* of its weights */
} checkpoint;

static int open_weights(void *ctx, text *out, oc_error *e) {
  const checkpoint *k = ctx;
  olmo2_config c;
  ir_graph *g = NULL;
  rt_weights *w = NULL;
  int rc = olmo2_config_load(k->config, &c, e) || olmo2_build_graph(&c, k->dtype, &g, e) ||
           rt_weights_open(k->path, &w, e) ||
           drv_check_weights(w, g, e);
  for (int i = 0; !rc && i < rt_weights_count(w); i++) {
    const rt_tensor *t = rt_weights_at(w, i);
    addf(out, "%s %d %lld %zu\n", t->name, t->rank, (long long)t->dims[0], t->nbytes);
  }
  rt_weights_close(w);
  ir_graph_free(g);
  return rc ? -1 : 0;
}

static void test_weights(void **state) {
  (void)state;
  sweep("safetensors, " BUNDLED, open_weights, &(checkpoint){BUNDLED, BUNDLED, IR_BF16}, EVERY_N, true);
}

/* The tensors of the tiny golden model, to write again. */
typedef struct source {
  rt_weights *w;
  rt_tensor_spec specs[64];
  int n;
  const char *path; /* where write_weights writes */
} source;

static int fill(void *ctx, int index, size_t at, void *data, size_t nbytes, oc_error *e) {
  const source *s = ctx;
  const rt_tensor *t = rt_weights_find(s->w, s->specs[index].name);
  if (!t || t->nbytes < at + nbytes)
    return oc_fail(e, "no tensor '%s' of %zu bytes", s->specs[index].name, at + nbytes);
  memcpy(data, (const char *)t->data + at, nbytes);
  return 0;
}

static void load_source(source *s) {
  oc_error e;
  *s = (source){0};
  check(rt_weights_open(TINY, &s->w, &e), &e);
  s->n = rt_weights_count(s->w);
  assert_true(s->n <= 64);
  for (int i = 0; i < s->n; i++) {
    const rt_tensor *t = rt_weights_at(s->w, i);
    s->specs[i] = (rt_tensor_spec){t->name, t->dtype, t->rank, {0}};
    memcpy(s->specs[i].dims, t->dims, sizeof t->dims);
  }
}

/* Whether any file in tmpdir has ".tmp." in its name. */
static bool temporary_left(void) {
  DIR *d = opendir(tmpdir);
  assert_non_null(d);
  bool found = false;
  for (struct dirent *de; (de = readdir(d));)
    found |= strstr(de->d_name, ".tmp.") != NULL;
  closedir(d);
  return found;
}

/* Writes the tensors to s->path; the result is what the file holds (nothing
 * for a device, written in place). */
static int write_weights(void *ctx, text *out, oc_error *e) {
  const source *s = ctx;
  bool device = strncmp(s->path, "/dev/", 5) == 0;
  if (!device)
    unlink(s->path);
  int rc = rt_safetensors_write(s->path, s->specs, s->n, fill, (void *)s, e);
  if (temporary_left())
    fail_msg("a temporary file is left in %s", tmpdir);
  if (rc && !device && access(s->path, F_OK) == 0)
    fail_msg("a failed write left %s behind", s->path);
  if (rc || device)
    return rc;
  size_t n = 0;
  FILE *f = fopen(s->path, "rb");
  assert_non_null(f);
  char buf[1 << 16];
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    add(out, buf, n);
  fclose(f);
  return 0;
}

static void test_write_weights(void **state) {
  (void)state;
  source s;
  load_source(&s);
  char path[256];
  snprintf(path, sizeof path, "%s/written.safetensors", tmpdir);
  s.path = path;
  sweep("rt_safetensors_write", write_weights, &s, EVERY_N, true);
  unlink(path);
  s.path = "/dev/null"; /* a device: written in place */
  sweep("rt_safetensors_write to /dev/null", write_weights, &s, EVERY_N, true);
  rt_weights_close(s.w);
}

/* The golden model as two shards and an index, opened as a directory. */
static void test_sharded_weights(void **state) {
  (void)state;
  source s;
  load_source(&s);
  oc_error e;
  char dir[256], path[512];
  snprintf(dir, sizeof dir, "%s/shards", tmpdir);
  assert_int_equal(mkdir(dir, 0777), 0);
  int half = s.n / 2;
  snprintf(path, sizeof path, "%s/a.safetensors", dir);
  check(rt_safetensors_write(path, s.specs, half, fill, &s, &e), &e);
  source rest = s;
  memmove(rest.specs, s.specs + half, (size_t)(s.n - half) * sizeof *s.specs);
  rest.n = s.n - half;
  snprintf(path, sizeof path, "%s/b.safetensors", dir);
  check(rt_safetensors_write(path, rest.specs, rest.n, fill, &rest, &e), &e);
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "{\"metadata\": {}, \"weight_map\": {");
  for (int i = 0; i < s.n; i++)
    fprintf(f, "%s\"%s\": \"%s.safetensors\"", i ? ", " : "", s.specs[i].name, i < half ? "a" : "b");
  fprintf(f, "}}\n");
  fclose(f);
  sweep("safetensors shards and index", open_weights, &(checkpoint){TINY, dir, IR_F32}, EVERY_N, true);
  snprintf(path, sizeof path, "rm -r %s", dir);
  assert_int_equal(system(path), 0);
  rt_weights_close(s.w);
}

/* ---- the tokenizer ---- */

/* Added tokens, invalid UTF-8 (repaired), a long piece (the heap merger). */
static const char sample[] = "Language modeling is <|endoftext|> fun: 12345 caf\xc3\xa9 \xff\xfe "
                             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.";

static int encode_decode(const rt_tokenizer *t, text *out, oc_error *e) {
  int32_t *ids = NULL;
  size_t n = 0;
  char *back = NULL;
  size_t len = 0;
  int rc = rt_tokenizer_encode(t, sample, sizeof sample - 1, &ids, &n, e) ||
           rt_tokenizer_decode(t, ids, n, &back, &len, e);
  if (!rc) {
    add(out, ids, n * sizeof *ids);
    add(out, back, len);
  }
  free(ids);
  free(back);
  return rc ? -1 : 0;
}

static int load_tokenizer(void *ctx, text *out, oc_error *e) {
  rt_tokenizer *t = NULL;
  int rc = rt_tokenizer_load(ctx, &t, e) || encode_decode(t, out, e);
  rt_tokenizer_free(t);
  return rc ? -1 : 0;
}

static int encode_only(void *ctx, text *out, oc_error *e) { return encode_decode(ctx, out, e); }

/* The bundled tokenizer.json (4096 tokens and their merges) takes 20090
 * allocations: reading the file, 20059 cJSON nodes and strings, all alike,
 * then the tokenizer's own (22), encoding and decoding (7). Trying each N
 * would take 45 s (3 minutes under ASan): every N among the first 300 and
 * the last 100 is tried (all that is not cJSON's), and 200 between. */
static void test_tokenizer(void **state) {
  (void)state;
  sweep("tokenizer, " BUNDLED, load_tokenizer, BUNDLED, (plan){300, 100, 200}, true);
  rt_tokenizer *t;
  oc_error e;
  check(rt_tokenizer_load(BUNDLED, &t, &e), &e);
  sweep("encode and decode", encode_only, t, EVERY_N, true);
  rt_tokenizer_free(t);
}

/* OLMo 2's own tokenizer (100278 tokens, 2.7 MB) takes 501324 allocations,
 * all but the last 37 cJSON's (28 the tokenizer's, 9 encoding and decoding),
 * at 80 ms a load (400 under ASan): a bounded set, every N among the first
 * 10 and the last 40, and 3 between. */
static void test_dolma2_tokenizer(void **state) {
  (void)state;
  sweep("tokenizer, " DOLMA2, load_tokenizer, DOLMA2, (plan){10, 40, 3}, true);
}

/* ---- chat templates ---- */

static int chat(void *ctx, text *out, oc_error *e) {
  rt_chat_template t;
  char *prompt = NULL;
  const rt_chat_message m[] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."},
                               {"user", "What is a compiler?"}};
  int rc = rt_chat_template_load(ctx, &t, e) || rt_chat_render(&t, m, 4, true, &prompt, e);
  if (!rc)
    add(out, prompt, strlen(prompt));
  free(prompt);
  return rc ? -1 : 0;
}

/* A tokenizer_config.json carrying OLMo 2's template (from the golden file). */
static void test_chat(void **state) {
  (void)state;
  oc_error e;
  char *golden = NULL;
  size_t len;
  FILE *f = fopen("tests/data/chat/golden.json", "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  len = (size_t)ftell(f);
  rewind(f);
  golden = malloc(len + 1);
  assert_int_equal(fread(golden, 1, len, f), len);
  golden[len] = '\0';
  fclose(f);
  cJSON *root = cJSON_Parse(golden), *config = cJSON_CreateObject();
  assert_non_null(root);
  cJSON_AddStringToObject(config, "chat_template",
                          cJSON_GetObjectItemCaseSensitive(root, "template")->valuestring);
  cJSON_AddStringToObject(config, "bos_token", "<|endoftext|>");
  cJSON_AddStringToObject(config, "eos_token", "<|endoftext|>");
  char *json = cJSON_Print(config), path[256];
  snprintf(path, sizeof path, "%s/tokenizer_config.json", tmpdir);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(json, f);
  fclose(f);
  cJSON_free(json);
  cJSON_Delete(config);
  cJSON_Delete(root);
  free(golden);
  rt_chat_template t;
  check(rt_chat_template_load(tmpdir, &t, &e), &e);
  sweep("chat template and rendering", chat, tmpdir, EVERY_N, true);
  unlink(path);
}

/* ---- the interpreter and the generation loop on the golden model ---- */

static const int32_t tokens[] = {104, 59, 101, 250, 152, 19, 148, 7, 200, 31};

/* Prefill of 7 tokens, then decode steps (1 at -O0, where every value is a
 * buffer of its own and a step takes 300 allocations; 3 at -O2, on the
 * planned arena); the logits of every step are the result. */
static int interpret(void *ctx, text *out, oc_error *e) {
  int level = *(const int *)ctx;
  olmo2_config c;
  ir_graph *g = NULL;
  rt_weights *w = NULL;
  ir_interp *it = NULL;
  pass_result r = {0};
  int rc = olmo2_config_load(TINY, &c, e) || olmo2_build_graph(&c, IR_F32, &g, e) ||
           rt_weights_open(TINY, &w, e) || drv_check_weights(w, g, e) ||
           pass_run_pipeline(g, &(pass_options){.level = level, .max_tokens = 8, .max_ctx = 16}, &r, e) ||
           ir_interp_new(g, 16, rt_weights_lookup, w, &it, e) ||
           (r.planned && ir_interp_use_arena(it, r.plan.offset, r.plan.bytes, r.plan.arena_bytes, NULL, e));
  for (int step = 0; !rc && step < (level ? 4 : 2); step++) {
    int64_t T = step ? 1 : 7, first = step ? 6 + step : 0;
    ir_binding in = {"tokens", {IR_I32, 1, {T}, tokens + first}};
    rc = ir_interp_run(it, T, &in, 1, e);
    if (!rc)
      add(out, ir_interp_output(it, "logits")->data, (size_t)(T * c.vocab_size) * sizeof(float));
  }
  ir_interp_free(it);
  pass_result_free(&r);
  rt_weights_close(w);
  ir_graph_free(g);
  return rc ? -1 : 0;
}

static void test_interpreter(void **state) {
  (void)state;
  static const int o0 = 0, o2 = 2;
  sweep("interpreter -O0, " TINY, interpret, (void *)&o0, EVERY_N, true);
  sweep("interpreter -O2 (planned arena), " TINY, interpret, (void *)&o2, EVERY_N, true);
}

/* An interpreter presented as an rt_model, for the generation loop; on the
 * planned arena, so that a forward call allocates little and the sweep is
 * mostly the loop's and the sampler's own allocations. */
typedef struct interp_model {
  ir_interp *it;
} interp_model;

static const float *forward(void *self, const int32_t *ids, int64_t T, oc_error *e) {
  interp_model *m = self;
  ir_binding in = {"tokens", {IR_I32, 1, {T}, ids}};
  return ir_interp_run(m->it, T, &in, 1, e) ? NULL : ir_interp_output(m->it, "logits")->data;
}
static int64_t position(void *self) { return ir_interp_position(((interp_model *)self)->it); }
static void rewind_to(void *self, int64_t P) { ir_interp_rewind(((interp_model *)self)->it, P); }

static int on_token(void *user, int32_t id) {
  add(user, &id, sizeof id);
  return 0;
}

static int generate(void *ctx, text *out, oc_error *e) {
  const rt_model *m = ctx;
  m->rewind(m->self, 0);
  rt_sampling cfg = {.temperature = 0.8f, .top_k = 20, .top_p = 0.9f, .repetition_penalty = 1.1f,
                     .seed = 7};
  rt_sampler *s = NULL;
  rt_generation g = {.max_new = 5, .on_token = on_token, .user = out};
  rt_generation_stats stats;
  int rc = rt_sampler_new(&cfg, m->vocab, &s, e) || rt_generate(m, s, tokens, 7, &g, &stats, e);
  rt_sampler_free(s);
  return rc ? -1 : 0;
}

static void test_generation(void **state) {
  (void)state;
  olmo2_config c;
  ir_graph *g;
  rt_weights *w;
  interp_model im;
  pass_result r;
  oc_error e;
  check(olmo2_config_load(TINY, &c, &e), &e);
  check(olmo2_build_graph(&c, IR_F32, &g, &e), &e);
  check(rt_weights_open(TINY, &w, &e), &e);
  check(pass_run_pipeline(g, &(pass_options){.level = 2, .max_tokens = 8, .max_ctx = 16}, &r, &e), &e);
  check(ir_interp_new(g, 16, rt_weights_lookup, w, &im.it, &e), &e);
  check(ir_interp_use_arena(im.it, r.plan.offset, r.plan.bytes, r.plan.arena_bytes, NULL, &e), &e);
  rt_model m = {&im, (int32_t)c.vocab_size, 16, forward, position, rewind_to, NULL};
  sweep("sampler and generation loop", generate, &m, EVERY_N, true);
  ir_interp_free(im.it);
  pass_result_free(&r);
  rt_weights_close(w);
  ir_graph_free(g);
}

/* ---- the JIT: lowering to kernels and the executor's program ---- */

typedef struct jit_case {
  ir_graph *g;
  rt_weights *w;
  pass_result r;
  cg_jit *j; /* shared across runs, or NULL: a fresh one per run */
} jit_case;

static int lower_and_run(void *ctx, text *out, oc_error *e) {
  jit_case *c = ctx;
  cg_jit *j = c->j;
  rt_program *p = NULL;
  int rc = (!j && cg_jit_new(&j, e)) || cg_lower(j, c->g, &c->r.plan, 16, rt_weights_lookup, c->w, &p, e);
  const float *logits = rc ? NULL : rt_program_run(p, tokens, 7, 1, e);
  if (logits)
    add(out, logits, 7 * 256 * sizeof *logits);
  rt_program_free(p);
  if (j != c->j)
    cg_jit_free(j);
  return logits ? 0 : -1;
}

/* Every N with a JIT whose kernels are compiled already (all of cg_lower's and
 * the executor's allocations), packing into memory, then into a scratch pack
 * (no descriptor or file may be left); then with a fresh JIT per run, for what only
 * a fresh JIT allocates: the session (the first allocation) and the kernel
 * cache (at the first kernel, the gather of the embedding, allocation 20 or
 * so). A fresh run compiles the kernels with LLVM, most of a second: every N
 * up to 40 is tried, then the whole run. */
static void test_jit(void **state) {
  (void)state;
  olmo2_config cfg;
  jit_case c = {0};
  oc_error e;
  check(olmo2_config_load(TINY, &cfg, &e), &e);
  check(olmo2_build_graph(&cfg, IR_F32, &c.g, &e), &e);
  check(rt_weights_open(TINY, &c.w, &e), &e);
  check(pass_run_pipeline(c.g, &(pass_options){.level = 2, .max_tokens = 8, .max_ctx = 16}, &c.r, &e), &e);
  check(cg_jit_new(&c.j, &e), &e);
  text warm = {0};
  check(lower_and_run(&c, &warm, &e), &e);
  free(warm.p);
  sweep("JIT lowering and run, kernels cached", lower_and_run, &c, EVERY_N, false);
  char packs[] = OLMOC_BUILD_DIR "/alloc_packs.XXXXXX"; /* on disk: /tmp may be tmpfs */
  assert_non_null(mkdtemp(packs));
  check(cg_jit_set_pack_dir(c.j, packs, &e), &e);
  sweep("JIT lowering into a scratch pack and run", lower_and_run, &c, EVERY_N, false);
  assert_int_equal(rmdir(packs), 0); /* nothing was left in it */
  cg_jit_free(c.j);
  c.j = NULL;
  sweep("JIT lowering and run, fresh JIT", lower_and_run, &c, (plan){40, 0, 0}, false);
  pass_result_free(&c.r);
  rt_weights_close(c.w);
  ir_graph_free(c.g);
}

/* ---- a compiled model's packed file: written while lowering, read back ---- */

typedef struct pack_case {
  jit_case jit;           /* the graph, weights and a JIT with its kernels compiled */
  rt_tokenizer *tokenizer;
  ir_dtype dtype;         /* of the packed weights: bf16 goes through the scratch file */
  char path[128];
} pack_case;

static int write_pack(void *ctx, text *out, oc_error *e) {
  pack_case *c = ctx;
  rt_pack_writer *w;
  rt_aot_meta meta = {.vocab = 256, .ctx = 16, .n_eos = 1, .eos = {255}, .sampling = rt_sampling_default()};
  rt_pack_target t = {"cpu", "+avx2", 1, c->dtype == IR_BF16 ? RT_PACK_BF16 : RT_PACK_F32};
  if (rt_pack_create(c->path, &t, &w, e))
    return -1;
  if (cg_lower_packed(c->jit.j, c->jit.g, &c->jit.r.plan, 16, c->jit.w, c->dtype, w, e) ||
      rt_tokenizer_pack(c->tokenizer, w, e) || rt_aot_meta_pack(&meta, w, e)) {
    rt_pack_abandon(w);
    assert_false(temporary_left());
    return -1;
  }
  if (rt_pack_finish(w, e)) {
    assert_false(temporary_left());
    return -1;
  }
  FILE *f = fopen(c->path, "rb");
  assert_non_null(f);
  char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof buf, f));)
    add(out, buf, n);
  fclose(f);
  return 0;
}

static int read_pack(void *ctx, text *out, oc_error *e) {
  pack_case *c = ctx;
  rt_pack *p = NULL;
  rt_program *program = NULL;
  rt_tokenizer *t = NULL;
  rt_kernel_symbol *k = NULL;
  int n = 0;
  rt_pack_expect x = {"cpu", "+avx2", 1, 0};
  int tok = -1;
  int rc = rt_pack_open(c->path, 0, &x, RT_PACK_READ, NULL, &p, e) || (tok = rt_pack_find(p, RT_PACK_TOKENIZER)) < 0 ||
           rt_tokenizer_unpack(rt_pack_data(p, tok), rt_pack_section_at(p, tok)->bytes, c->path, &t, e) ||
           cg_kernel_symbols(c->jit.j, &k, &n, e) || rt_program_unpack(p, k, n, 0, &program, e);
  const float *logits = rc ? NULL : rt_program_run(program, tokens, 7, 1, e);
  if (logits)
    add(out, logits, 7 * 256 * sizeof *logits);
  free(k);
  rt_program_free(program);
  rt_tokenizer_free(t);
  rt_pack_close(p);
  return logits ? 0 : -1;
}

/* Writing a pack while lowering with cached kernels (f32 in place, bf16
 * converted through the scratch file), then reading it back and running. */
static void test_packed_model(void **state) {
  (void)state;
  olmo2_config cfg;
  oc_error e;
  check(olmo2_config_load(TINY, &cfg, &e), &e);
  for (int bf16 = 0; bf16 < 2; bf16++) {
    pack_case c = {.dtype = bf16 ? IR_BF16 : IR_F32};
    snprintf(c.path, sizeof c.path, "%s/tiny.weights", tmpdir);
    check(olmo2_build_graph(&cfg, c.dtype, &c.jit.g, &e), &e);
    check(rt_weights_open(TINY, &c.jit.w, &e), &e);
    check(rt_tokenizer_load(BUNDLED, &c.tokenizer, &e), &e);
    check(pass_run_pipeline(c.jit.g, &(pass_options){.level = 2, .max_tokens = 8, .max_ctx = 16}, &c.jit.r, &e), &e);
    check(cg_jit_new(&c.jit.j, &e), &e);
    text warm = {0};
    check(write_pack(&c, &warm, &e), &e); /* compiles the kernels */
    free(warm.p);
    sweep(bf16 ? "packed model, writing bf16" : "packed model, writing f32", write_pack, &c,
          (plan){150, 50, 100}, true);
    sweep(bf16 ? "packed model, reading bf16" : "packed model, reading f32", read_pack, &c, EVERY_N, true);
    unlink(c.path);
    cg_jit_free(c.jit.j);
    pass_result_free(&c.jit.r);
    rt_tokenizer_free(c.tokenizer);
    rt_weights_close(c.jit.w);
    ir_graph_free(c.jit.g);
  }
}

/* ---- the hook itself ---- */

static void test_hook(void **state) {
  (void)state;
  oc_alloc_fail_after(3);
  void *a = oc_malloc(8), *b = oc_calloc(2, 8);
  assert_false(oc_alloc_failed());
  unsigned long failures = oc_alloc_failures();
  char *c = oc_strdup("x");
  assert_null(c);
  assert_true(oc_alloc_failed());
  assert_int_equal(oc_alloc_failures(), failures + 1);
  assert_int_equal(oc_alloc_count(), 3);
  char *d = oc_strdup("only the third fails");
  assert_non_null(d);
  oc_alloc_fail_after(0);
  void *big = oc_aligned_alloc(64, 100);
  assert_non_null(big);
  assert_int_equal((uintptr_t)big % 64, 0);
  free(a), free(b), free(d), free(big);
}

static int setup(void **state) {
  (void)state;
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  return rmdir(tmpdir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hook),
      cmocka_unit_test(test_compile),
      cmocka_unit_test(test_ir_text),
      cmocka_unit_test(test_weights),
      cmocka_unit_test(test_write_weights),
      cmocka_unit_test(test_sharded_weights),
      cmocka_unit_test(test_tokenizer),
      cmocka_unit_test(test_dolma2_tokenizer),
      cmocka_unit_test(test_chat),
      cmocka_unit_test(test_interpreter),
      cmocka_unit_test(test_generation),
      cmocka_unit_test(test_jit),
      cmocka_unit_test(test_packed_model),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
