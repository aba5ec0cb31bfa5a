/* `olmoc bench` on the small dolma-tiny config, run as a user would: the
 * table names every figure, --json prints one object with the keys the
 * docs/performance.md documents and positive numbers in them, --compute bf16 sets prefill
 * against the bf16 dot peak, and a wrong dtype or compute is a clear error.
 * No timing assertions: benchmarks measure, tests check. */
#include <math.h>
#include <stdbool.h>

#include <cjson/cJSON.h>

#include "cli_harness.h"
#include "olmoc/codegen.h"

static double number(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsNumber(v))
    fail_msg("key \"%s\" is missing or not a number in:\n%.3000s", key, out);
  return v->valuedouble;
}

static void expect_positive(const cJSON *o, const char *key) {
  if (!(number(o, key) > 0))
    fail_msg("key \"%s\" is not positive in:\n%.3000s", key, out);
}

static const cJSON *array(const cJSON *o, const char *key, int n) {
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
    fail_msg("key \"%s\" is not an array of %d in:\n%.3000s", key, n, out);
  return a;
}

static void test_json(void **state) {
  (void)state;
  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny/config.json --json -t 1 --target avx2"), 0);
  cJSON *o = cJSON_Parse(out);
  if (!cJSON_IsObject(o))
    fail_msg("not one JSON object:\n%.3000s", out);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "dtype")->valuestring, "f32");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "target")->valuestring, "avx2");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "compute")->valuestring, "f32");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "kv_cache")->valuestring, "f32");
  assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "model")));
  assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "page_mode")));
  assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "thp")));
  assert_true(number(o, "threads") == 1);
  assert_true(number(o, "huge_page_bytes") >= 0);
  assert_true(number(o, "passes_s") >= 0);
  static const char *const positive[] = {"read_bandwidth_gbs", "fma_peak_gflops", "weights_s",
                                         "jit_compile_s", "pack_weights_s", "matmul_params",
                                         "weight_bytes_per_token"};
  for (size_t i = 0; i < sizeof positive / sizeof *positive; i++)
    expect_positive(o, positive[i]);
  const cJSON *bf16 = cJSON_GetObjectItemCaseSensitive(o, "bf16_dot_peak_gflops");
  assert_true(cJSON_IsNull(bf16) || (cJSON_IsNumber(bf16) && bf16->valuedouble > 0));
  const cJSON *int8 = cJSON_GetObjectItemCaseSensitive(o, "int8_dot_peak_gops");
  assert_true(cJSON_IsNull(int8) || (cJSON_IsNumber(int8) && int8->valuedouble > 0));
  assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "int8_dot")));
  const cJSON *r;
  cJSON_ArrayForEach(r, array(o, "prefill", 2)) {
    static const char *const keys[] = {"tokens", "tok_s", "flops_per_token", "roofline_tok_s",
                                       "fraction"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
      expect_positive(r, keys[i]);
    assert_true(number(r, "tokens") <= 128); /* the config's context */
    assert_null(cJSON_GetObjectItemCaseSensitive(r, "int8_fraction")); /* q8's only */
  }
  cJSON_ArrayForEach(r, array(o, "decode", 3)) {
    static const char *const keys[] = {"tok_s", "roofline_tok_s", "fraction"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
      expect_positive(r, keys[i]);
    assert_true(number(r, "position") >= 0 && number(r, "position") < 128);
  }
  cJSON_Delete(o);
}

static void test_table(void **state) {
  (void)state;
  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny --dtype bf16 -t 2"), 0);
  expect_output("bf16 weights");
  expect_output("2 threads, native kernels");
  expect_output("MADV_HUGEPAGE");
  expect_output("read bandwidth");
  expect_output("f32 FMA peak");
  expect_output("bf16 dot peak");
  expect_output("int8 dot peak");
  expect_output("JIT compile");
  expect_output("prefill T=128");
  expect_output("decode P=0");
  expect_output("decode P=120"); /* 512 and 2048 clamped to the context of 128, less 8 steps */
  expect_output("fraction");
}

/* The profile's times add up the same by family and by layer, and name the
 * ops and layers the model has. */
static double sum(const cJSON *rows, const char *key) {
  double s = 0;
  const cJSON *r;
  cJSON_ArrayForEach(r, rows) s += number(r, key);
  return s;
}

static void test_profile(void **state) {
  (void)state;
  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny --json --profile -t 2"), 0);
  cJSON *o = cJSON_Parse(out);
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "profile");
  if (!cJSON_IsObject(p))
    fail_msg("no \"profile\" object in:\n%.3000s", out);
  assert_true(number(p, "prefill_tokens") == 128 && number(p, "decode_steps") == 8);
  const cJSON *families = cJSON_GetObjectItemCaseSensitive(p, "families");
  const cJSON *layers = array(p, "layers", 3); /* outside the layers, 0, 1 */
  for (int c = 0; c < 2; c++) {
    const char *key = c ? "decode_s_per_token" : "prefill_s";
    double f = sum(families, key), l = sum(layers, key);
    assert_true(f > 0 && fabs(f - l) <= 1e-9 * f);
  }
  bool matmul = false, attention = false;
  const cJSON *r;
  cJSON_ArrayForEach(r, families) {
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "op"));
    matmul |= op && !strcmp(op, "matmul");
    attention |= op && !strcmp(op, "attention");
  }
  assert_true(matmul && attention);
  assert_true(number(cJSON_GetArrayItem(layers, 0), "layer") == -1);
  cJSON_Delete(o);

  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny --profile -t 1"), 0);
  expect_output("kernel family");
  expect_output("layer 1");
}

/* q8: int8 matrices of 32 + 2 bytes a group of 32 (the embedding row bf16),
 * so a decoded token reads a bit over half the bf16 bytes; prefill is also
 * set against the int8 dot peak (this host has AVX2 at least, so it has
 * one), in the JSON and in the table. */
static void test_q8(void **state) {
  (void)state;
  double bytes[2];
  for (int q = 0; q < 2; q++) {
    assert_int_equal(olmoc(q ? "bench -m tests/data/dolma-tiny --dtype q8 --json -t 2"
                             : "bench -m tests/data/dolma-tiny --dtype bf16 --json -t 2"), 0);
    cJSON *o = cJSON_Parse(out);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "dtype")->valuestring, q ? "q8" : "bf16");
    expect_positive(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "decode"), 0), "tok_s");
    expect_positive(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "prefill"), 0), "tok_s");
    bytes[q] = number(o, "weight_bytes_per_token");
    const cJSON *r;
    cJSON_ArrayForEach(r, array(o, "prefill", 2)) {
      if (q) {
        expect_positive(o, "int8_dot_peak_gops");
        expect_positive(r, "int8_roofline_tok_s");
        double want = number(r, "tok_s") / number(r, "int8_roofline_tok_s");
        assert_true(fabs(number(r, "int8_fraction") - want) <= 1e-9 * want);
      } else {
        assert_null(cJSON_GetObjectItemCaseSensitive(r, "int8_fraction"));
      }
    }
    cJSON_Delete(o);
  }
  assert_true(bytes[1] > 0.5 * bytes[0] && bytes[1] < 0.56 * bytes[0]);
  /* every step "long", and -q still silences them (it was read after the sink was made) */
  assert_int_equal(olmoc_after("OLMOC_PROGRESS_DELAY=0", "bench -m tests/data/dolma-tiny --dtype q8 -t 1 -q"), 0);
  expect_output("int8 dot peak");
  expect_output("int8 fraction");
  assert_null(strstr(out, "making weights"));
  assert_null(strstr(out, "compiling kernels"));
}

/* --compute bf16: prefill's roofline is the bf16 dot peak over the FLOPs. */
static void test_bf16_compute(void **state) {
  (void)state;
  cg_host h;
  cg_host_detect(&h);
  if (!h.avx512bf16) {
    print_message("skipped: this CPU has no AVX512_BF16\n");
    skip();
  }
  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny --dtype bf16 --compute bf16 --json -t 2"), 0);
  cJSON *o = cJSON_Parse(out);
  assert_non_null(o);
  assert_string_equal(cJSON_GetObjectItem(o, "compute")->valuestring, "bf16");
  double peak = number(o, "bf16_dot_peak_gflops");
  const cJSON *r;
  cJSON_ArrayForEach(r, array(o, "prefill", 2)) {
    expect_positive(r, "tok_s");
    assert_true(fabs(number(r, "roofline_tok_s") - peak * 1e9 / number(r, "flops_per_token")) <=
                1e-9 * number(r, "roofline_tok_s"));
  }
  cJSON_Delete(o);
}

/* --kv-cache bf16: said in the JSON and in the table's first line. */
static void test_kv_bf16(void **state) {
  (void)state;
  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny --kv-cache bf16 --json -t 2"), 0);
  cJSON *o = cJSON_Parse(out);
  assert_non_null(o);
  assert_string_equal(cJSON_GetObjectItem(o, "kv_cache")->valuestring, "bf16");
  const cJSON *r;
  cJSON_ArrayForEach(r, array(o, "decode", 3))
    expect_positive(r, "tok_s");
  cJSON_Delete(o);
  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny --kv-cache bf16 -t 1"), 0);
  expect_output("f32 compute, bf16 KV cache, 1 threads");
}

static void test_errors(void **state) {
  (void)state;
  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny --dtype f16"), 1);
  expect_output("--dtype: expected f32, bf16, q8 or q4, found 'f16'");
  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny --target sse2"), 2);
  expect_output("--target: expected native or avx2, found 'sse2'");
  assert_int_equal(olmoc("bench --json"), 2);
  expect_output("-m MODEL is required");
  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny --dtype f32 --compute bf16"), 1);
  expect_output("--compute bf16 needs bf16 weights, and these are f32: give --dtype bf16 or none");
  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny --dtype bf16 --compute bf16 --target avx2"), 1);
  expect_output("the target CPU lacks AVX512_BF16");
  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny --compute f16"), 2);
  expect_output("--compute: expected f32 or bf16, found 'f16'");
  assert_int_equal(olmoc("bench -m tests/data/dolma-tiny --kv-cache f16"), 2);
  expect_output("--kv-cache: expected f32 or bf16, found 'f16'");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_profile),
      cmocka_unit_test(test_q8),
      cmocka_unit_test(test_bf16_compute),
      cmocka_unit_test(test_kv_bf16),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
