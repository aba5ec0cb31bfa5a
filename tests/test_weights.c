/* runtime/safetensors*.c: every test writes its own small safetensors files
 * (a header string and data bytes) into a fresh mkdtemp directory, then checks
 * the tensors read back or the words of the error message. */
#define _GNU_SOURCE
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "olmoc/check_weights.h"
#include "olmoc/weights.h"

static char tmpdir[64];

/* ---- writing files ---- */

static const char *tmp_path(const char *rel) {
  static char buf[4][512];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", tmpdir, rel);
  return p;
}

static void write_bytes(const char *rel, const void *bytes, size_t n) {
  const char *path = tmp_path(rel);
  const char *slash = strrchr(rel, '/');
  if (slash) { /* one level of subdirectory is enough here */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%.*s", tmpdir, (int)(slash - rel), rel);
    mkdir(dir, 0755);
  }
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (n) assert_int_equal(fwrite(bytes, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* A safetensors file: the header's length (little-endian u64), the header,
 * then `n` data bytes (zeros if data is NULL). */
static void write_st(const char *rel, const char *header, const void *data, size_t n) {
  size_t h = strlen(header);
  unsigned char *buf = calloc(8 + h + n + 1, 1);
  assert_non_null(buf);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
  memcpy(buf + 8, header, h);
  if (data) memcpy(buf + 8 + h, data, n);
  write_bytes(rel, buf, 8 + h + n);
  free(buf);
}

static void write_text(const char *rel, const char *text) { write_bytes(rel, text, strlen(text)); }

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static int setup(void **state) {
  (void)state;
  strcpy(tmpdir, "/tmp/olmoc_weights_XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- checking ---- */

static float bf16_to_f32(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Normal numbers and zero only: enough for the values written here. */
static float f16_to_f32(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  float v = exp == 0 ? 0.0f : (1.0f + man / 1024.0f) * ldexpf(1.0f, exp - 15);
  return sign ? -v : v;
}

static uint16_t u16_at(const rt_tensor *t, int i) {
  uint16_t v;
  memcpy(&v, (const char *)t->data + 2 * i, 2);
  return v;
}

static float f32_at(const rt_tensor *t, int i) {
  float v;
  memcpy(&v, (const char *)t->data + 4 * i, 4);
  return v;
}

/* Opening path must fail with a message containing every word (NULL-ended). */
static char last_msg[sizeof(oc_error)]; /* expect_open_error's message */

static const char *last_error(void) { return last_msg; }

static void expect_open_error(const char *path, ...) {
  rt_weights *w = (rt_weights *)1;
  oc_error e = {{0}};
  int rc = rt_weights_open(path, &w, &e);
  snprintf(last_msg, sizeof last_msg, "%s", e.msg);
  if (rc != -1) fail_msg("%s: opened, expected an error", path);
  assert_null(w);
  va_list ap;
  va_start(ap, path);
  for (const char *word; (word = va_arg(ap, const char *));)
    if (!strstr(e.msg, word)) fail_msg("message \"%s\" lacks \"%s\"", e.msg, word);
  va_end(ap);
}

static rt_weights *open_ok(const char *path) {
  rt_weights *w = NULL;
  oc_error e = {{0}};
  if (rt_weights_open(path, &w, &e) != 0) fail_msg("%s: %s", path, e.msg);
  assert_non_null(w);
  return w;
}

/* ---- a good single file ---- */

/* F32 a[2,3] @0, BF16 b[4] @24, F16 c[2] @32, I32 d[1] @36, I8 e[2,2] @40,
 * F32 f[0,4] @44 (empty); listed out of offset order, padded with spaces. */
static const char good_header[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"c.weight\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[32,36]},"
    "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"e.q\":{\"dtype\":\"I8\",\"shape\":[2,2],\"data_offsets\":[40,44]},"
    "\"b.weight\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
    "\"f.empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[44,44]},"
    "\"d.ids\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[36,40]}}   ";

static size_t good_data(unsigned char *d) {
  float a[6] = {1, 2, 3, 4, 5, -6.5f};
  uint16_t b[4] = {0x3F80, 0xC000, 0x3F00, 0x4049}; /* 1, -2, 0.5, 3.140625 */
  uint16_t c[2] = {0x3C00, 0xB800};                 /* 1, -0.5 */
  int32_t id = 7;
  int8_t q[4] = {-128, -1, 0, 127};
  memcpy(d, a, 24);
  memcpy(d + 24, b, 8);
  memcpy(d + 32, c, 4);
  memcpy(d + 36, &id, 4);
  memcpy(d + 40, q, 4);
  return 44;
}

static void write_good(const char *rel) {
  unsigned char d[64];
  write_st(rel, good_header, d, good_data(d));
}

static void test_single_file(void **state) {
  (void)state;
  write_good("good.safetensors");
  const char *path = tmp_path("good.safetensors");
  rt_weights *w = open_ok(path);
  assert_int_equal(rt_weights_count(w), 6);
  /* rt_weights_at goes in file order */
  assert_string_equal(rt_weights_at(w, 0)->name, "a.weight");
  assert_string_equal(rt_weights_at(w, 5)->name, "f.empty");
  assert_null(rt_weights_at(w, 6));
  assert_null(rt_weights_find(w, "nope"));

  const rt_tensor *a = rt_weights_find(w, "a.weight");
  assert_non_null(a);
  assert_int_equal(a->dtype, IR_F32);
  assert_int_equal(a->rank, 2);
  assert_int_equal(a->dims[0], 2);
  assert_int_equal(a->dims[1], 3);
  assert_int_equal(a->nbytes, 24);
  assert_string_equal(a->file, path);
  assert_float_equal(f32_at(a, 0), 1.0f, 0);
  assert_float_equal(f32_at(a, 5), -6.5f, 0);

  const rt_tensor *b = rt_weights_find(w, "b.weight");
  assert_int_equal(b->dtype, IR_BF16);
  assert_int_equal(b->rank, 1);
  assert_int_equal(b->dims[0], 4);
  assert_float_equal(bf16_to_f32(u16_at(b, 0)), 1.0f, 0);
  assert_float_equal(bf16_to_f32(u16_at(b, 1)), -2.0f, 0);
  assert_float_equal(bf16_to_f32(u16_at(b, 2)), 0.5f, 0);
  assert_float_equal(bf16_to_f32(u16_at(b, 3)), 3.140625f, 0);

  const rt_tensor *c = rt_weights_find(w, "c.weight");
  assert_int_equal(c->dtype, IR_F16);
  assert_int_equal(c->dims[0], 2);
  assert_float_equal(f16_to_f32(u16_at(c, 0)), 1.0f, 0);
  assert_float_equal(f16_to_f32(u16_at(c, 1)), -0.5f, 0);

  const rt_tensor *d = rt_weights_find(w, "d.ids");
  assert_int_equal(d->dtype, IR_I32);
  int32_t id;
  memcpy(&id, d->data, 4);
  assert_int_equal(id, 7);

  const rt_tensor *q = rt_weights_find(w, "e.q");
  assert_int_equal(q->dtype, IR_I8);
  assert_int_equal(((const int8_t *)q->data)[0], -128);
  assert_int_equal(((const int8_t *)q->data)[3], 127);

  const rt_tensor *f = rt_weights_find(w, "f.empty");
  assert_int_equal(f->rank, 2);
  assert_int_equal(f->dims[0], 0);
  assert_int_equal(f->nbytes, 0);

  /* the interpreter's view */
  ir_tensor t;
  oc_error e = {{0}};
  assert_int_equal(rt_weights_lookup(w, "a.weight", &t, &e), 0);
  assert_int_equal(t.dtype, IR_F32);
  assert_int_equal(t.rank, 2);
  assert_int_equal(t.dims[1], 3);
  assert_ptr_equal(t.data, a->data);
  assert_int_equal(rt_weights_lookup(w, "missing.weight", &t, &e), -1);
  assert_non_null(strstr(e.msg, "'missing.weight' is missing"));
  assert_non_null(strstr(e.msg, path));
  rt_weights_close(w);
}

static void test_empty_header(void **state) {
  (void)state;
  write_st("none.safetensors", "{}", NULL, 0);
  rt_weights *w = open_ok(tmp_path("none.safetensors"));
  assert_int_equal(rt_weights_count(w), 0);
  assert_null(rt_weights_find(w, "a"));
  rt_weights_close(w);
}

/* ---- sharded checkpoints and directories ---- */

static const char shard1[] =
    "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
    "\"b.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
static const char shard2[] =
    "{\"c.weight\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}";
static const char good_index[] =
    "{\"metadata\":{\"total_size\":16},\"weight_map\":{"
    "\"a.weight\":\"model-00001-of-00002.safetensors\","
    "\"c.weight\":\"model-00002-of-00002.safetensors\","
    "\"b.weight\":\"model-00001-of-00002.safetensors\"}}";

/* Writes dir/ with two shards and an index (index text given). */
static void write_sharded(const char *dir, const char *s1, const char *s2, const char *index) {
  char rel[256];
  float v1[3] = {0.25f, -1.5f, 42.0f};
  uint16_t v2[2] = {0x4000, 0xBF80}; /* 2, -1 */
  snprintf(rel, sizeof rel, "%s/model-00001-of-00002.safetensors", dir);
  write_st(rel, s1, v1, 12);
  snprintf(rel, sizeof rel, "%s/model-00002-of-00002.safetensors", dir);
  if (s2) write_st(rel, s2, v2, 4);
  snprintf(rel, sizeof rel, "%s/model.safetensors.index.json", dir);
  write_text(rel, index);
}

static void check_sharded(rt_weights *w) {
  assert_int_equal(rt_weights_count(w), 3);
  const rt_tensor *a = rt_weights_find(w, "a.weight"), *b = rt_weights_find(w, "b.weight"),
                  *c = rt_weights_find(w, "c.weight");
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(c);
  assert_non_null(strstr(a->file, "model-00001-of-00002.safetensors"));
  assert_ptr_equal(a->file, b->file);
  assert_non_null(strstr(c->file, "model-00002-of-00002.safetensors"));
  assert_float_equal(f32_at(a, 1), -1.5f, 0);
  assert_float_equal(f32_at(b, 0), 42.0f, 0);
  assert_int_equal(c->dtype, IR_BF16);
  assert_float_equal(bf16_to_f32(u16_at(c, 0)), 2.0f, 0);
  assert_float_equal(bf16_to_f32(u16_at(c, 1)), -1.0f, 0);
}

static void test_sharded_index(void **state) {
  (void)state;
  write_sharded("sharded", shard1, shard2, good_index);
  rt_weights *w = open_ok(tmp_path("sharded/model.safetensors.index.json"));
  check_sharded(w);
  rt_weights_close(w);
}

static void test_directory(void **state) {
  (void)state;
  write_sharded("dir_sharded", shard1, shard2, good_index);
  write_good("dir_sharded/model.safetensors"); /* the index wins over it */
  rt_weights *w = open_ok(tmp_path("dir_sharded"));
  check_sharded(w);
  rt_weights_close(w);

  write_good("dir_single/model.safetensors");
  w = open_ok(tmp_path("dir_single"));
  assert_int_equal(rt_weights_count(w), 6);
  assert_non_null(strstr(rt_weights_find(w, "a.weight")->file, "dir_single/model.safetensors"));
  rt_weights_close(w);

  mkdir(tmp_path("dir_empty"), 0755);
  expect_open_error(tmp_path("dir_empty"), tmp_path("dir_empty"), "no model.safetensors", NULL);
  expect_open_error(tmp_path("no_such_thing"), "No such file", NULL);
}

/* ---- corrupt single files ---- */

typedef struct bad_case {
  const char *what;
  const char *header;
  size_t data; /* zero bytes after the header */
  const char *words[3];
} bad_case;

static const bad_case bad_headers[] = {
    {"bad JSON", "{\"a\":{\"dtype\":\"F32\",", 0, {"not valid JSON"}},
    {"not an object", "[1,2,3]", 0, {"not a JSON object"}},
    {"not an object, string", "\"abc\"", 0, {"not a JSON object"}},
    {"trailing bytes", "{} x", 0, {"after its JSON object"}},
    {"entry not object", "{\"a\":[1]}", 0, {"'a'", "not a JSON object"}},
    {"missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
     {"'a'", "data_offsets"}},
    {"data_offsets not a pair", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
     4, {"'a'", "expected 2"}},
    {"missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, {"'a'", "dtype"}},
    {"dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     {"'a'", "dtype"}},
    {"missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, {"'a'", "shape"}},
    {"unknown dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     {"'a'", "unknown dtype", "F33"}},
    {"unsupported F64", "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
     {"'a'", "dtype F64 is not supported (olmoc reads F32, BF16, F16, I32, I8)"}},
    {"unsupported F8", "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}",
     1, {"dtype F8_E4M3 is not supported"}},
    {"size mismatch",
     "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,40]}}", 40,
     {"tensor 'a.weight': shape [3,4] of F32 needs 48 bytes but data_offsets give 40"}},
    {"past the end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
     {"'a'", "past the end of the data section"}},
    {"overlap",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     12, {"'b'", "overlaps", "'a'"}},
    {"gap between",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
     12, {"gap", "[4,8)", "'b'"}},
    {"gap at start", "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
     {"gap", "[0,4)"}},
    {"gap at end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
     {"gap", "last 4 bytes"}},
    {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0,
     {"'a'", "negative"}},
    {"fractional dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
     {"'a'", "not an integer"}},
    {"dim not a number", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}",
     8, {"'a'", "not a number"}},
    {"rank 5", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
     {"'a'", "rank 5", "at most 4"}},
    {"size overflow",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4,
     {"'a'", "overflows"}},
    {"offsets reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
     {"'a'", "end before they begin"}},
    {"negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
     {"'a'", "negative"}},
    {"huge offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[1e300,1e300]}}", 4,
     {"'a'", "too large"}},
    {"duplicate name",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     8, {"'a'", "twice"}},
    {"metadata not strings", "{\"__metadata__\":{\"n\":1}}", 0, {"__metadata__", "'n'"}},
    {"invalid UTF-8", "{\"a\xff\":{}}", 0, {"UTF-8"}},
    {"overlong UTF-8", "{\"a\xc0\xaf\":{}}", 0, {"UTF-8"}},
};

static void test_bad_headers(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
    const bad_case *c = &bad_headers[i];
    char rel[64];
    snprintf(rel, sizeof rel, "bad%zu.safetensors", i);
    write_st(rel, c->header, NULL, c->data);
    rt_weights *w = NULL;
    oc_error e = {{0}};
    if (rt_weights_open(tmp_path(rel), &w, &e) == 0) fail_msg("%s: opened", c->what);
    assert_null(w);
    if (!strstr(e.msg, tmp_path(rel))) fail_msg("%s: \"%s\" lacks the path", c->what, e.msg);
    for (int k = 0; k < 3 && c->words[k]; k++)
      if (!strstr(e.msg, c->words[k]))
        fail_msg("%s: \"%s\" lacks \"%s\"", c->what, e.msg, c->words[k]);
  }
}

static void test_bad_lengths(void **state) {
  (void)state;
  /* a symlink loop where the weights go is named with its error, not "no model.safetensors" */
  char loop[256];
  snprintf(loop, sizeof loop, "mkdir -p %s && ln -sf model.safetensors %s/model.safetensors", tmp_path("loop"),
           tmp_path("loop"));
  assert_int_equal(system(loop), 0);
  expect_open_error(tmp_path("loop"), "model.safetensors", "Too many levels of symbolic links", NULL);
  write_bytes("empty.safetensors", "", 0);
  expect_open_error(tmp_path("empty.safetensors"), tmp_path("empty.safetensors"), "too short",
                    NULL);
  write_bytes("short.safetensors", "\2\0\0\0\0", 5);
  expect_open_error(tmp_path("short.safetensors"), "5 bytes", "too short", NULL);

  unsigned char past[10] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
  write_bytes("past.safetensors", past, sizeof past);
  expect_open_error(tmp_path("past.safetensors"), tmp_path("past.safetensors"),
                    "header length 100 runs past the end of the file", NULL);

  unsigned char huge[10] = {0x00, 0xc2, 0xeb, 0x0b, 0, 0, 0, 0, '{', '}'}; /* 200,000,000 */
  write_bytes("huge.safetensors", huge, sizeof huge);
  expect_open_error(tmp_path("huge.safetensors"), "not a safetensors file", "100000000-byte limit", NULL);
  assert_null(strstr(last_error(), "200000000")); /* the file's bytes are not shown as a length */

  unsigned char top[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
  write_bytes("top.safetensors", top, sizeof top);
  expect_open_error(tmp_path("top.safetensors"), "limit", NULL);

  unsigned char zero[8] = {0};
  write_bytes("zero.safetensors", zero, sizeof zero);
  expect_open_error(tmp_path("zero.safetensors"), "not a JSON object", NULL);

  unsigned char nul[12] = {4, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, ' '};
  write_bytes("nul.safetensors", nul, sizeof nul);
  expect_open_error(tmp_path("nul.safetensors"), "after its JSON object", NULL);
}

/* Every truncation and many one-byte corruptions of a good file: the loader
 * must fail cleanly or succeed, never crash (run under ASan too). */
static void test_no_crash(void **state) {
  (void)state;
  unsigned char d[64];
  size_t h = strlen(good_header), n = good_data(d);
  size_t total = 8 + h + n;
  unsigned char *buf = malloc(total), *mut = malloc(total);
  assert_non_null(buf);
  assert_non_null(mut);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
  memcpy(buf + 8, good_header, h);
  memcpy(buf + 8 + h, d, n);
  const char *path = tmp_path("mut.safetensors");
  for (size_t len = 0; len < total; len++) {
    write_bytes("mut.safetensors", buf, len);
    expect_open_error(path, path, NULL);
  }
  static const unsigned char vals[] = {0, 0xff, '{', '}', '"', '9', '-', ',', 0x80};
  for (size_t i = 0; i < 8 + h; i++)
    for (size_t v = 0; v < sizeof vals; v++) {
      memcpy(mut, buf, total);
      mut[i] = vals[v];
      write_bytes("mut.safetensors", mut, total);
      rt_weights *w = NULL;
      oc_error e = {{0}};
      if (rt_weights_open(path, &w, &e) == 0) rt_weights_close(w);
      else assert_non_null(strstr(e.msg, path));
    }
  free(buf);
  free(mut);
}

/* ---- corrupt sharded sets ---- */

static void test_bad_index(void **state) {
  (void)state;
  /* the second shard file does not exist */
  write_sharded("ix_noshard", shard1, NULL, good_index);
  expect_open_error(tmp_path("ix_noshard/model.safetensors.index.json"),
                    "ix_noshard/model-00002-of-00002.safetensors", "No such file",
                    "listed in", NULL);

  /* the index maps d.weight to shard 2, which lacks it */
  static const char idx_d[] =
      "{\"weight_map\":{\"a.weight\":\"model-00001-of-00002.safetensors\","
      "\"b.weight\":\"model-00001-of-00002.safetensors\","
      "\"c.weight\":\"model-00002-of-00002.safetensors\","
      "\"d.weight\":\"model-00002-of-00002.safetensors\"}}";
  write_sharded("ix_missing", shard1, shard2, idx_d);
  expect_open_error(tmp_path("ix_missing"), "model-00002-of-00002.safetensors", "'d.weight'",
                    "missing from this shard", NULL);

  /* the index maps b.weight to shard 2, but it is in shard 1 */
  static const char idx_b2[] =
      "{\"weight_map\":{\"a.weight\":\"model-00001-of-00002.safetensors\","
      "\"b.weight\":\"model-00002-of-00002.safetensors\","
      "\"c.weight\":\"model-00002-of-00002.safetensors\"}}";
  write_sharded("ix_wrong", shard1, shard2, idx_b2);
  expect_open_error(tmp_path("ix_wrong"), "'b.weight'", "maps", "model-00001-of-00002", NULL);

  /* shard 1 holds b.weight, which the index does not list */
  static const char idx_no_b[] =
      "{\"weight_map\":{\"a.weight\":\"model-00001-of-00002.safetensors\","
      "\"c.weight\":\"model-00002-of-00002.safetensors\"}}";
  write_sharded("ix_extra", shard1, shard2, idx_no_b);
  expect_open_error(tmp_path("ix_extra"), "model-00001-of-00002.safetensors", "'b.weight'",
                    "not in the index", NULL);

  /* a.weight in both shards */
  static const char shard2_dup[] =
      "{\"c.weight\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]},"
      "\"a.weight\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[2,4]}}";
  write_sharded("ix_dup", shard1, shard2_dup, good_index);
  expect_open_error(tmp_path("ix_dup"), "duplicate tensor 'a.weight'",
                    "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", NULL);

  /* a corrupt shard: its own message, naming the shard */
  static const char shard2_bad[] = "{\"c.weight\":{\"dtype\":\"BF16\",\"shape\":[3],"
                                   "\"data_offsets\":[0,4]}}";
  write_sharded("ix_badshard", shard1, shard2_bad, good_index);
  expect_open_error(tmp_path("ix_badshard"), "model-00002-of-00002.safetensors: tensor 'c.weight'",
                    "needs 6 bytes", NULL);

  write_sharded("ix_json", shard1, shard2, "{\"weight_map\":{");
  expect_open_error(tmp_path("ix_json"), "model.safetensors.index.json", "not valid JSON", NULL);
  write_sharded("ix_nomap", shard1, shard2, "{\"metadata\":{}}");
  expect_open_error(tmp_path("ix_nomap"), "weight_map", NULL);
  write_sharded("ix_notstr", shard1, shard2, "{\"weight_map\":{\"a.weight\":3}}");
  expect_open_error(tmp_path("ix_notstr"), "'a.weight'", "shard file name", NULL);
  /* shards are files of the index's directory: nothing above it, nothing elsewhere */
  const char *outside[] = {"../ix_twice/model-00002-of-00002.safetensors", "/etc/passwd", "..", "sub/x"};
  for (size_t i = 0; i < sizeof outside / sizeof *outside; i++) {
    char index[256];
    snprintf(index, sizeof index, "{\"weight_map\":{\"a.weight\":\"%s\"}}", outside[i]);
    write_sharded("ix_outside", shard1, shard2, index);
    expect_open_error(tmp_path("ix_outside"), "'a.weight'", "is not a shard file name in the index's directory",
                      NULL);
  }
  write_sharded("ix_twice", shard1, shard2,
                "{\"weight_map\":{\"a.weight\":\"x\",\"a.weight\":\"x\"}}");
  expect_open_error(tmp_path("ix_twice"), "'a.weight' twice", NULL);
}

/* An index naming 20000 shards (none there): shards are numbered in order of
 * first appearance, so the first one opened is the first one listed, and
 * numbering them is sorting, not a search per entry (which took 52 s for
 * 100000 shards). */
static void test_index_many_shards(void **state) {
  (void)state;
  enum { N = 20000 };
  size_t cap = 64 + (size_t)N * 40, len = 0;
  char *text = malloc(cap);
  assert_non_null(text);
  len += (size_t)snprintf(text + len, cap - len, "{\"weight_map\":{\"t\":\"z.safetensors\"");
  for (int i = 0; i < N; i++)
    len += (size_t)snprintf(text + len, cap - len, ",\"t%d\":\"s%d.safetensors\"", i, i);
  snprintf(text + len, cap - len, ",\"u\":\"z.safetensors\"}}");
  write_text("ix_many/model.safetensors.index.json", text);
  free(text);
  expect_open_error(tmp_path("ix_many"), "ix_many/z.safetensors", "No such file", "listed in",
                    NULL);
}

/* ---- against a graph ---- */

static ir_type f32_type(int rank, const int64_t *dims) {
  ir_dim d[IR_MAX_DIMS];
  for (int i = 0; i < rank; i++) d[i] = ir_const_dim(dims[i]);
  return (ir_type){IR_F32, ir_shape_of(rank, d)};
}

/* emb F32[4,2], norm BF16[2], ids I32[1] */
static const char graph_header[] =
    "{\"emb\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[0,32]},"
    "\"norm\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[32,40]},"
    "\"ids\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[40,44]}}";

/* The check's result on a graph of the named weights with the given shapes. */
static int check(rt_weights *w, int n, const char *const *names, const int64_t (*dims)[2],
                 const int *ranks, oc_error *e) {
  ir_graph *g = ir_graph_new();
  assert_non_null(g);
  for (int i = 0; i < n; i++) ir_weight(g, names[i], f32_type(ranks[i], dims[i]));
  oc_error ge = {{0}};
  if (ir_graph_status(g, &ge) != 0) fail_msg("building the graph: %s", ge.msg);
  int rc = drv_check_weights(w, g, e);
  ir_graph_free(g);
  return rc;
}

static void expect_words(const char *msg, const char *a, const char *b) {
  if (!strstr(msg, a)) fail_msg("\"%s\" lacks \"%s\"", msg, a);
  if (b && !strstr(msg, b)) fail_msg("\"%s\" lacks \"%s\"", msg, b);
}

static void test_check_graph(void **state) {
  (void)state;
  write_st("graph.safetensors", graph_header, NULL, 44);
  const char *path = tmp_path("graph.safetensors");
  rt_weights *w = open_ok(path);
  oc_error e = {{0}};
  static const int64_t good[3][2] = {{4, 2}, {2, 0}, {1, 0}};
  static const int ranks[3] = {2, 1, 1};

  /* all present, float, right shapes; ids is I32 so the graph may not use it */
  static const char *const two[] = {"emb", "norm"};
  assert_int_equal(check(w, 2, two, good, ranks, &e), -1);
  expect_words(e.msg, "unexpected tensor 'ids'", path);

  static const char *const three[] = {"emb", "norm", "ids"};
  assert_int_equal(check(w, 3, three, good, ranks, &e), -1);
  expect_words(e.msg, "'ids' is I32", "float");

  /* missing */
  static const char *const missing[] = {"emb", "lm_head"};
  static const int64_t lm[2][2] = {{4, 2}, {4, 2}};
  static const int r22[2] = {2, 2};
  assert_int_equal(check(w, 2, missing, lm, r22, &e), -1);
  expect_words(e.msg, "tensor 'lm_head' is missing (the model needs it, shape [4,2])", path);

  /* wrong shape, wrong rank */
  static const int64_t swapped[2][2] = {{2, 4}, {2, 0}};
  assert_int_equal(check(w, 2, two, swapped, ranks, &e), -1);
  expect_words(e.msg, "tensor 'emb' has shape [4,2] but the model needs [2,4]", path);
  static const int64_t flat[2][2] = {{8, 0}, {2, 0}};
  static const int r11[2] = {1, 1};
  assert_int_equal(check(w, 2, two, flat, r11, &e), -1);
  expect_words(e.msg, "'emb' has shape [4,2] but the model needs [8]", NULL);
  rt_weights_close(w);

  /* a float dtype other than the graph's */
  write_st("graph2.safetensors",
           "{\"emb\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[0,32]},"
           "\"norm\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[32,36]}}",
           NULL, 36);
  w = open_ok(tmp_path("graph2.safetensors"));
  assert_int_equal(check(w, 2, two, good, ranks, &e), -1);
  expect_words(e.msg, "tensor 'norm' is F16 but the graph reads it as f32", NULL);
  rt_weights_close(w);

  /* a checkpoint that matches exactly */
  write_st("graph3.safetensors",
           "{\"emb\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[0,32]},"
           "\"norm\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[32,40]}}",
           NULL, 40);
  w = open_ok(tmp_path("graph3.safetensors"));
  if (check(w, 2, two, good, ranks, &e) != 0) fail_msg("%s", e.msg);
  rt_weights_close(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_single_file),   cmocka_unit_test(test_empty_header),
      cmocka_unit_test(test_sharded_index), cmocka_unit_test(test_directory),
      cmocka_unit_test(test_bad_headers),   cmocka_unit_test(test_bad_lengths),
      cmocka_unit_test(test_no_crash),      cmocka_unit_test(test_bad_index),
      cmocka_unit_test(test_index_many_shards),
      cmocka_unit_test(test_check_graph),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
