/* olmo2_config_load/parse and olmo2_param_count: the four published configs
 * load with every field checked, then one test per refusal, each checking the
 * message names the file, the key and what was found. Error cases edit one
 * key of the 7B config (see edited()). Run from the source tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "olmoc/olmo2.h"

/* allenai/OLMo-2-1124-7B config.json, compacted. */
static const char *const BASE_7B =
    "{\"architectures\":[\"Olmo2ForCausalLM\"],\"attention_bias\":false,\"attention_dropout\":0.0,"
    "\"eos_token_id\":100257,\"hidden_act\":\"silu\",\"hidden_size\":4096,"
    "\"initializer_range\":0.02,\"intermediate_size\":11008,\"max_position_embeddings\":4096,"
    "\"model_type\":\"olmo2\",\"num_attention_heads\":32,\"num_hidden_layers\":32,"
    "\"num_key_value_heads\":32,\"pad_token_id\":100277,\"rms_norm_eps\":1e-06,"
    "\"rope_scaling\":null,\"rope_theta\":500000,\"tie_word_embeddings\":false,"
    "\"torch_dtype\":\"float32\",\"transformers_version\":\"4.47.0.dev0\",\"use_cache\":true,"
    "\"vocab_size\":100352}";

#define SRC "test/config.json"

/* BASE_7B with `key` set to the JSON text `value`, or removed when value is
 * NULL. Returns a malloc'd string. */
static char *edited(const char *key, const char *value) {
  cJSON *root = cJSON_Parse(BASE_7B);
  assert_non_null(root);
  cJSON_DeleteItemFromObjectCaseSensitive(root, key);
  if (value) {
    cJSON *v = cJSON_Parse(value);
    assert_non_null(v);
    cJSON_AddItemToObject(root, key, v);
  }
  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  assert_non_null(text);
  return text;
}

static void assert_contains(const char *msg, const char *needle) {
  if (!strstr(msg, needle)) fail_msg("message\n  %s\ndoes not contain\n  %s", msg, needle);
}

/* Parsing json must fail with a message starting with SRC and containing
 * both needles (needle2 may be NULL). */
static void expect_error(const char *json, const char *needle1, const char *needle2) {
  olmo2_config c;
  oc_error e = {{0}};
  assert_int_equal(olmo2_config_parse(json, SRC, &c, &e), -1);
  if (strncmp(e.msg, SRC ": ", strlen(SRC ": ")) != 0)
    fail_msg("message does not start with the source: %s", e.msg);
  assert_contains(e.msg, needle1);
  if (needle2) assert_contains(e.msg, needle2);
}

static void expect_edit_error(const char *key, const char *value, const char *needle1,
                              const char *needle2) {
  char *json = edited(key, value);
  expect_error(json, needle1, needle2);
  free(json);
}

static olmo2_config parse_ok(const char *json) {
  olmo2_config c;
  oc_error e = {{0}};
  if (olmo2_config_parse(json, SRC, &c, &e) != 0) fail_msg("unexpected error: %s", e.msg);
  return c;
}

static olmo2_config load_ok(const char *path) {
  olmo2_config c;
  oc_error e = {{0}};
  if (olmo2_config_load(path, &c, &e) != 0) fail_msg("unexpected error: %s", e.msg);
  return c;
}

/* Everything the published configs share. */
static void assert_olmo2_common(const olmo2_config *c) {
  assert_int_equal(c->head_dim, 128);
  assert_int_equal(c->max_position_embeddings, 4096);
  assert_int_equal(c->vocab_size, 100352);
  assert_true(c->rms_norm_eps == 1e-6);
  assert_true(c->rope_theta == 500000.0);
  assert_false(c->tie_word_embeddings);
  assert_int_equal(c->n_eos, 1);
  assert_int_equal(c->eos_token_id[0], 100257);
  assert_int_equal(c->pad_token_id, 100277);
  assert_int_equal(c->bos_token_id, -1);
}

static void assert_sizes(const olmo2_config *c, int64_t hidden, int64_t layers, int64_t heads,
                         int64_t kv, int64_t inter) {
  assert_int_equal(c->hidden_size, hidden);
  assert_int_equal(c->num_hidden_layers, layers);
  assert_int_equal(c->num_attention_heads, heads);
  assert_int_equal(c->num_key_value_heads, kv);
  assert_int_equal(c->intermediate_size, inter);
  assert_olmo2_common(c);
}

static void assert_same(const olmo2_config *a, const olmo2_config *b) {
  assert_int_equal(a->hidden_size, b->hidden_size);
  assert_int_equal(a->intermediate_size, b->intermediate_size);
  assert_int_equal(a->num_hidden_layers, b->num_hidden_layers);
  assert_int_equal(a->num_attention_heads, b->num_attention_heads);
  assert_int_equal(a->num_key_value_heads, b->num_key_value_heads);
  assert_int_equal(a->head_dim, b->head_dim);
  assert_int_equal(a->max_position_embeddings, b->max_position_embeddings);
  assert_int_equal(a->vocab_size, b->vocab_size);
  assert_true(a->rms_norm_eps == b->rms_norm_eps);
  assert_true(a->rope_theta == b->rope_theta);
  assert_int_equal(a->tie_word_embeddings, b->tie_word_embeddings);
  assert_int_equal(a->n_eos, b->n_eos);
  for (int i = 0; i < a->n_eos; i++) assert_int_equal(a->eos_token_id[i], b->eos_token_id[i]);
  assert_int_equal(a->pad_token_id, b->pad_token_id);
  assert_int_equal(a->bos_token_id, b->bos_token_id);
}

/* ---- the published models ---- */

static void test_load_1b(void **state) {
  (void)state;
  olmo2_config c = load_ok("models/olmo2-1b");
  assert_sizes(&c, 2048, 16, 16, 16, 8192);
  assert_int_equal(olmo2_param_count(&c), INT64_C(1484916736));
}

static void test_load_7b(void **state) {
  (void)state;
  olmo2_config c = load_ok("models/olmo2-7b");
  assert_sizes(&c, 4096, 32, 32, 32, 11008);
  assert_int_equal(olmo2_param_count(&c), INT64_C(7298617344));
}

static void test_load_13b(void **state) {
  (void)state;
  olmo2_config c = load_ok("models/olmo2-13b");
  assert_sizes(&c, 5120, 40, 40, 40, 13824);
  assert_int_equal(olmo2_param_count(&c), INT64_C(13716198400));
}

static void test_load_32b(void **state) {
  (void)state;
  olmo2_config c = load_ok("models/olmo2-32b");
  assert_sizes(&c, 5120, 64, 40, 8, 27648);
  assert_int_equal(olmo2_param_count(&c), INT64_C(32234279936));
}

static void test_load_file_path_and_trailing_slash(void **state) {
  (void)state;
  olmo2_config a = load_ok("models/olmo2-7b/config.json");
  olmo2_config b = load_ok("models/olmo2-7b/");
  olmo2_config d = parse_ok(BASE_7B);
  assert_same(&a, &b);
  assert_same(&a, &d);
}

/* ---- defaults and optional keys ---- */

static void test_minimal_config_takes_defaults(void **state) {
  (void)state;
  olmo2_config c = parse_ok(
      "{\"architectures\":[\"Olmo2ForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
      "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100,"
      "\"max_position_embeddings\":32,\"rms_norm_eps\":1e-5}");
  assert_int_equal(c.num_key_value_heads, 4);
  assert_int_equal(c.head_dim, 16);
  assert_true(c.rope_theta == 10000.0);
  assert_false(c.tie_word_embeddings);
  assert_int_equal(c.n_eos, 0);
  assert_int_equal(c.pad_token_id, -1);
  assert_int_equal(c.bos_token_id, -1);
}

static void test_nulls_mean_default(void **state) {
  (void)state;
  char *json = edited("num_key_value_heads", "null");
  olmo2_config c = parse_ok(json);
  free(json);
  assert_int_equal(c.num_key_value_heads, 32);
  json = edited("eos_token_id", "null");
  c = parse_ok(json);
  free(json);
  assert_int_equal(c.n_eos, 0);
  json = edited("bos_token_id", "null");
  c = parse_ok(json);
  free(json);
  assert_int_equal(c.bos_token_id, -1);
}

static void test_explicit_head_dim_and_gqa(void **state) {
  (void)state;
  char *json = edited("head_dim", "64");
  olmo2_config c = parse_ok(json);
  free(json);
  assert_int_equal(c.head_dim, 64);
  /* q: 4096x2048, k, v: 4096x2048 each, o: 2048x4096 instead of 4 x 4096^2 */
  int64_t fewer = 32 * (4 * INT64_C(4096) * 4096 - 4 * INT64_C(4096) * 2048 + 2 * (4096 - 2048));
  assert_int_equal(olmo2_param_count(&c), INT64_C(7298617344) - fewer);
}

static void test_eos_list_and_bos(void **state) {
  (void)state;
  char *json = edited("eos_token_id", "[100257, 100265, 0]");
  olmo2_config c = parse_ok(json);
  free(json);
  assert_int_equal(c.n_eos, 3);
  assert_int_equal(c.eos_token_id[0], 100257);
  assert_int_equal(c.eos_token_id[1], 100265);
  assert_int_equal(c.eos_token_id[2], 0);
  json = edited("bos_token_id", "100351");
  c = parse_ok(json);
  free(json);
  assert_int_equal(c.bos_token_id, 100351);
}

static void test_tied_embeddings_drop_lm_head(void **state) {
  (void)state;
  char *json = edited("tie_word_embeddings", "true");
  olmo2_config c = parse_ok(json);
  free(json);
  assert_true(c.tie_word_embeddings);
  assert_int_equal(olmo2_param_count(&c), INT64_C(7298617344) - INT64_C(100352) * 4096);
}

static void test_integral_float_is_an_integer(void **state) {
  (void)state;
  char *json = edited("hidden_size", "4096.0");
  olmo2_config c = parse_ok(json);
  free(json);
  assert_int_equal(c.hidden_size, 4096);
}

/* ---- files and JSON ---- */

static void test_missing_file(void **state) {
  (void)state;
  olmo2_config c;
  oc_error e = {{0}};
  assert_int_equal(olmo2_config_load("models/no-such-model", &c, &e), -1);
  assert_contains(e.msg, "models/no-such-model: cannot open: No such file or directory");
}

static void test_directory_without_config(void **state) {
  (void)state;
  olmo2_config c;
  oc_error e = {{0}};
  assert_int_equal(olmo2_config_load("tests", &c, &e), -1);
  assert_contains(e.msg, "tests/config.json: cannot open: No such file or directory");
}

static void test_nul_byte_in_file(void **state) {
  (void)state;
  char path[] = "/tmp/olmoc_config_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  static const char text[] = "{\"architectures\": []}\0garbage";
  assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
  close(fd);
  olmo2_config c;
  oc_error e = {{0}};
  assert_int_equal(olmo2_config_load(path, &c, &e), -1);
  unlink(path);
  char needle[64];
  snprintf(needle, sizeof needle, "NUL byte at offset %zu", strlen(text));
  assert_contains(e.msg, path);
  assert_contains(e.msg, needle);
}

static void test_malformed_json(void **state) {
  (void)state;
  expect_error("{\n  \"hidden_size\": 4096,\n  \"vocab_size\": 10x\n}", "malformed JSON",
               "line 3, column 19");
  expect_error("{\"hidden_size\": 4096,", "malformed JSON", "unexpected end of file");
  expect_error("", "malformed JSON", "line 1, column 1");
  expect_error("{} trailing", "malformed JSON", "line 1, column 4");
}

static void test_not_an_object(void **state) {
  (void)state;
  expect_error("[1, 2]", "expected a JSON object at the top level", "found [1,2] (an array)");
  expect_error("\"Olmo2ForCausalLM\"", "expected a JSON object", "(a string)");
}

static void test_failure_leaves_config_untouched(void **state) {
  (void)state;
  olmo2_config c, before;
  memset(&c, 0xab, sizeof c);
  memcpy(&before, &c, sizeof c);
  char *json = edited("rms_norm_eps", NULL);
  oc_error e = {{0}};
  assert_int_equal(olmo2_config_parse(json, SRC, &c, &e), -1);
  free(json);
  assert_memory_equal(&c, &before, sizeof c);
}

static void test_duplicate_key(void **state) {
  (void)state;
  expect_error("{\"architectures\":[\"Olmo2ForCausalLM\"],\"hidden_size\":4096,\"hidden_size\":2048}",
               "key 'hidden_size' appears more than once", NULL);
}

/* ---- architecture ---- */

static void test_wrong_architecture(void **state) {
  (void)state;
  expect_edit_error("architectures", "[\"LlamaForCausalLM\"]",
                    "LlamaForCausalLM is not supported: olmoc compiles Olmo2ForCausalLM", NULL);
  expect_edit_error("architectures", "[]", "key 'architectures'",
                    "expected an array containing \"Olmo2ForCausalLM\", found [] (an array)");
  expect_edit_error("architectures", "\"Olmo2ForCausalLM\"", "key 'architectures'",
                    "found \"Olmo2ForCausalLM\" (a string)");
}

static void test_missing_architectures(void **state) {
  (void)state;
  expect_edit_error("architectures", NULL, "key 'architectures' is missing", NULL);
}

static void test_wrong_model_type(void **state) {
  (void)state;
  expect_edit_error("model_type", "\"llama\"", "key 'model_type': expected \"olmo2\"",
                    "found \"llama\" (a string)");
}

/* ---- required sizes ---- */

static void test_each_required_key_missing(void **state) {
  (void)state;
  static const char *const keys[] = {"hidden_size", "intermediate_size", "num_hidden_layers",
                                     "num_attention_heads", "vocab_size",
                                     "max_position_embeddings"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    char needle[96];
    snprintf(needle, sizeof needle, "key '%s' is missing: expected a positive integer", keys[i]);
    expect_edit_error(keys[i], NULL, needle, NULL);
  }
}

static void test_wrong_types(void **state) {
  (void)state;
  expect_edit_error("hidden_size", "\"2048\"",
                    "key 'hidden_size': expected a positive integer, found \"2048\" (a string)",
                    NULL);
  expect_edit_error("hidden_size", "2048.5", "key 'hidden_size'", "found 2048.5");
  expect_edit_error("num_hidden_layers", "true", "key 'num_hidden_layers'",
                    "found true (a boolean)");
  expect_edit_error("vocab_size", "null", "key 'vocab_size'", "found null");
  expect_edit_error("intermediate_size", "-11008", "expected a positive integer", "found -11008");
  expect_edit_error("max_position_embeddings", "0", "key 'max_position_embeddings'", "found 0");
  expect_edit_error("num_attention_heads", "[32]", "key 'num_attention_heads'",
                    "found [32] (an array)");
}

static void test_sizes_are_bounded(void **state) {
  (void)state;
  expect_edit_error("num_hidden_layers", "5000", "key 'num_hidden_layers'",
                    "no larger than 1024, found 5000");
  expect_edit_error("vocab_size", "1e300", "key 'vocab_size'", "no larger than 16777216");
  expect_error("{\"architectures\":[\"Olmo2ForCausalLM\"],\"hidden_size\":1e999}",
               "key 'hidden_size': expected a positive integer", NULL);
}

/* ---- attention shape ---- */

static void test_kv_heads_must_divide_heads(void **state) {
  (void)state;
  expect_edit_error("num_key_value_heads", "12",
                    "key 'num_key_value_heads': 12 does not divide num_attention_heads (32)", NULL);
  expect_edit_error("num_key_value_heads", "64", "64 does not divide num_attention_heads (32)",
                    NULL);
  expect_edit_error("num_key_value_heads", "0", "key 'num_key_value_heads'", "found 0");
}

static void test_head_dim_odd(void **state) {
  (void)state;
  expect_edit_error("head_dim", "127", "key 'head_dim': expected an even number", "found 127");
}

static void test_derived_head_dim_odd(void **state) {
  (void)state;
  char *json = edited("hidden_size", "4064"); /* 4064 / 32 = 127 */
  expect_error(json, "head_dim = hidden_size / num_attention_heads = 4064 / 32 = 127 is odd", NULL);
  free(json);
}

static void test_hidden_not_divisible_by_heads(void **state) {
  (void)state;
  expect_edit_error("hidden_size", "4100",
                    "key 'num_attention_heads': 32 does not divide hidden_size (4100)",
                    "no 'head_dim' key");
}

static void test_projection_width_bounded(void **state) {
  (void)state;
  expect_edit_error("head_dim", "1048576", "key 'head_dim'",
                    "num_attention_heads * head_dim = 32 * 1048576 is larger than 16777216");
}

/* ---- numerics ---- */

static void test_rms_norm_eps_missing(void **state) {
  (void)state;
  expect_edit_error("rms_norm_eps", NULL, "key 'rms_norm_eps' is missing", "the file must say");
}

static void test_rms_norm_eps_and_rope_theta_wrong(void **state) {
  (void)state;
  expect_edit_error("rms_norm_eps", "0", "key 'rms_norm_eps': expected a positive number",
                    "found 0");
  expect_edit_error("rms_norm_eps", "\"1e-6\"", "key 'rms_norm_eps'", "found \"1e-6\" (a string)");
  expect_edit_error("rope_theta", "-500000", "key 'rope_theta': expected a positive number",
                    "found -500000");
  expect_edit_error("rope_theta", "null", "key 'rope_theta'", "found null");
}

/* ---- features olmoc does not compile ---- */

static void test_rope_scaling_refused(void **state) {
  (void)state;
  expect_edit_error("rope_scaling", "{\"type\":\"linear\",\"factor\":2.0}",
                    "key 'rope_scaling': rope scaling is not supported",
                    "found {\"type\":\"linear\",\"factor\":2} (an object)");
}

static void test_attention_bias_refused(void **state) {
  (void)state;
  expect_edit_error("attention_bias", "true", "key 'attention_bias': expected false",
                    "found true (a boolean)");
}

static void test_hidden_act_refused(void **state) {
  (void)state;
  expect_edit_error("hidden_act", "\"gelu\"", "key 'hidden_act': expected \"silu\"",
                    "found \"gelu\" (a string)");
}

static void test_tie_word_embeddings_type(void **state) {
  (void)state;
  expect_edit_error("tie_word_embeddings", "\"false\"", "key 'tie_word_embeddings'",
                    "found \"false\" (a string)");
}

/* ---- token ids ---- */

static void test_eos_out_of_range(void **state) {
  (void)state;
  expect_edit_error("eos_token_id", "100352", "key 'eos_token_id'",
                    "a token id in [0, vocab_size = 100352), found 100352");
  expect_edit_error("eos_token_id", "[100257, -1]", "key 'eos_token_id'", "found -1");
  expect_edit_error("pad_token_id", "200000", "key 'pad_token_id'", "found 200000");
  expect_edit_error("bos_token_id", "\"<s>\"", "key 'bos_token_id'", "found \"<s>\" (a string)");
}

static void test_eos_list_length(void **state) {
  (void)state;
  expect_edit_error("eos_token_id", "[1,2,3,4,5,6,7,8,9]", "key 'eos_token_id'",
                    "list of 1 to 8 ids, found 9 ids");
  expect_edit_error("eos_token_id", "[]", "key 'eos_token_id'", "found 0 ids: [] (an array)");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_1b),
      cmocka_unit_test(test_load_7b),
      cmocka_unit_test(test_load_13b),
      cmocka_unit_test(test_load_32b),
      cmocka_unit_test(test_load_file_path_and_trailing_slash),
      cmocka_unit_test(test_minimal_config_takes_defaults),
      cmocka_unit_test(test_nulls_mean_default),
      cmocka_unit_test(test_explicit_head_dim_and_gqa),
      cmocka_unit_test(test_eos_list_and_bos),
      cmocka_unit_test(test_tied_embeddings_drop_lm_head),
      cmocka_unit_test(test_integral_float_is_an_integer),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_directory_without_config),
      cmocka_unit_test(test_nul_byte_in_file),
      cmocka_unit_test(test_malformed_json),
      cmocka_unit_test(test_not_an_object),
      cmocka_unit_test(test_failure_leaves_config_untouched),
      cmocka_unit_test(test_duplicate_key),
      cmocka_unit_test(test_wrong_architecture),
      cmocka_unit_test(test_missing_architectures),
      cmocka_unit_test(test_wrong_model_type),
      cmocka_unit_test(test_each_required_key_missing),
      cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_sizes_are_bounded),
      cmocka_unit_test(test_kv_heads_must_divide_heads),
      cmocka_unit_test(test_head_dim_odd),
      cmocka_unit_test(test_derived_head_dim_odd),
      cmocka_unit_test(test_hidden_not_divisible_by_heads),
      cmocka_unit_test(test_projection_width_bounded),
      cmocka_unit_test(test_rms_norm_eps_missing),
      cmocka_unit_test(test_rms_norm_eps_and_rope_theta_wrong),
      cmocka_unit_test(test_rope_scaling_refused),
      cmocka_unit_test(test_attention_bias_refused),
      cmocka_unit_test(test_hidden_act_refused),
      cmocka_unit_test(test_tie_word_embeddings_type),
      cmocka_unit_test(test_eos_out_of_range),
      cmocka_unit_test(test_eos_list_length),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
