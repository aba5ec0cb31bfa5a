/* rt_chat_*: every conversation of tests/data/chat/golden.json (rendered by
 * @huggingface/jinja from OLMo 2's template, see tools/chat_golden) renders
 * byte for byte; tokenizer_config.json files written under a mkdtemp dir load
 * or fail with messages naming the file and the problem. Run from the source
 * tree. */
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

#include "olmoc/chat.h"

#define GOLDEN "tests/data/chat/golden.json"

static char tmpdir[] = "/tmp/olmoc_chat_XXXXXX";
static char *golden_text;
static cJSON *golden;

static void assert_contains(const char *msg, const char *needle) {
  if (!strstr(msg, needle)) fail_msg("message\n  %s\ndoes not contain\n  %s", msg, needle);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
    free(p);
    p = NULL;
  }
  if (p) p[n] = 0;
  fclose(f);
  return p;
}

static const char *str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  assert_true(cJSON_IsString(v));
  return v->valuestring;
}

/* Writes text to tmpdir/name and returns the path (static storage). */
static const char *write_tmp(const char *name, const char *text) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  assert_int_equal(fclose(f), 0);
  return path;
}

/* A tokenizer_config.json around a chat_template JSON value, bos and eos JSON
 * values (NULL: key left out). */
static const char *write_config(const char *template_json, const char *bos, const char *eos) {
  static char text[8192];
  int n = snprintf(text, sizeof text, "{\"add_prefix_space\": false");
  if (bos) n += snprintf(text + n, sizeof text - (size_t)n, ", \"bos_token\": %s", bos);
  if (template_json)
    n += snprintf(text + n, sizeof text - (size_t)n, ", \"chat_template\": %s", template_json);
  if (eos) n += snprintf(text + n, sizeof text - (size_t)n, ", \"eos_token\": %s", eos);
  snprintf(text + n, sizeof text - (size_t)n, ", \"tokenizer_class\": \"GPT2Tokenizer\"}");
  return write_tmp("tokenizer_config.json", text);
}

/* The golden template as a JSON string value. */
static char *golden_template_json(void) {
  return cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(golden, "template"));
}

static void expect_load_error(const char *path, const char *needle1, const char *needle2) {
  rt_chat_template t;
  oc_error e = {{0}};
  assert_int_equal(rt_chat_template_load(path, &t, &e), -1);
  assert_contains(e.msg, needle1);
  if (needle2) assert_contains(e.msg, needle2);
}

static void test_golden(void **state) {
  (void)state;
  const cJSON *cases = cJSON_GetObjectItemCaseSensitive(golden, "cases"), *c;
  assert_true(cJSON_GetArraySize(cases) >= 12);
  cJSON_ArrayForEach(c, cases) {
    rt_chat_template t = {.kind = RT_CHAT_OLMO2};
    snprintf(t.bos_token, sizeof t.bos_token, "%s", str(c, "bos_token"));
    snprintf(t.eos_token, sizeof t.eos_token, "%s", str(c, "eos_token"));
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(c, "messages"), *m;
    size_t n = (size_t)cJSON_GetArraySize(msgs), i = 0;
    rt_chat_message *ms = calloc(n ? n : 1, sizeof *ms);
    cJSON_ArrayForEach(m, msgs) ms[i++] = (rt_chat_message){str(m, "role"), str(m, "content")};
    bool gen = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt"));
    char *out = NULL;
    oc_error e = {{0}};
    assert_int_equal(rt_chat_render(&t, ms, n, gen, &out, &e), 0);
    const char *want = str(c, "expected");
    if (strcmp(out, want) != 0)
      fail_msg("case %s:\n got  %s\n want %s", str(c, "name"), out, want);
    free(out);
    free(ms);
  }
}

static void test_named(void **state) {
  (void)state;
  rt_chat_template t;
  oc_error e = {{0}};
  assert_int_equal(rt_chat_template_named("olmo2", &t, &e), 0);
  assert_int_equal(t.kind, RT_CHAT_OLMO2);
  assert_string_equal(t.bos_token, "<|endoftext|>");
  assert_string_equal(t.eos_token, "<|endoftext|>");
  rt_chat_message m[] = {{"system", "You are a helpful assistant."}, {"user", "Hello!"}};
  char *out = NULL;
  assert_int_equal(rt_chat_render(&t, m, 2, true, &out, &e), 0);
  assert_string_equal(out, "<|endoftext|><|system|>\nYou are a helpful assistant.\n<|user|>\n"
                           "Hello!\n<|assistant|>\n");
  free(out);
  assert_int_equal(rt_chat_template_named("chatml", &t, &e), -1);
  assert_contains(e.msg, "'chatml'");
  assert_contains(e.msg, "olmo2");
}

static void test_render_errors(void **state) {
  (void)state;
  rt_chat_template t;
  oc_error e = {{0}};
  char *out = (char *)"untouched";
  assert_int_equal(rt_chat_template_named("olmo2", &t, &e), 0);
  rt_chat_message bad[] = {{"user", "hi"}, {"tool", "{}"}};
  assert_int_equal(rt_chat_render(&t, bad, 2, true, &out, &e), -1);
  assert_null(out);
  assert_contains(e.msg, "message 1");
  assert_contains(e.msg, "'tool'");
  rt_chat_message upper[] = {{"User", "hi"}};
  assert_int_equal(rt_chat_render(&t, upper, 1, true, &out, &e), -1);
  assert_contains(e.msg, "'User'");
  rt_chat_message none[] = {{NULL, "hi"}};
  assert_int_equal(rt_chat_render(&t, none, 1, true, &out, &e), -1);
  rt_chat_message empty[] = {{"user", NULL}};
  assert_int_equal(rt_chat_render(&t, empty, 1, true, &out, &e), -1);
  assert_contains(e.msg, "no content");
  assert_int_equal(rt_chat_render(&t, NULL, 0, true, &out, &e), 0);
  assert_string_equal(out, "<|endoftext|>");
  free(out);
}

static void test_load_known(void **state) {
  (void)state;
  char *tj = golden_template_json();
  const char *path = write_config(tj, "\"<|endoftext|>\"", "\"<|endoftext|>\"");
  rt_chat_template t;
  oc_error e = {{0}};
  /* the file itself, then its directory */
  assert_int_equal(rt_chat_template_load(path, &t, &e), 0);
  assert_int_equal(t.kind, RT_CHAT_OLMO2);
  assert_string_equal(t.bos_token, "<|endoftext|>");
  memset(&t, 0, sizeof t);
  assert_int_equal(rt_chat_template_load(tmpdir, &t, &e), 0);
  assert_string_equal(t.eos_token, "<|endoftext|>");

  /* bos/eos as AddedToken objects, the template in a named list */
  char list[4096];
  snprintf(list, sizeof list, "[{\"name\": \"tool_use\", \"template\": \"{{ x }}\"}, "
                              "{\"name\": \"default\", \"template\": %s}]", tj);
  write_config(list, "{\"__type\": \"AddedToken\", \"content\": \"<s>\", \"lstrip\": false}",
               "{\"content\": \"</s>\", \"special\": true}");
  assert_int_equal(rt_chat_template_load(tmpdir, &t, &e), 0);
  assert_string_equal(t.bos_token, "<s>");
  assert_string_equal(t.eos_token, "</s>");

  /* no bos/eos at all: the template renders them as "" */
  write_config(tj, NULL, "null");
  assert_int_equal(rt_chat_template_load(tmpdir, &t, &e), 0);
  assert_string_equal(t.bos_token, "");
  assert_string_equal(t.eos_token, "");
  cJSON_free(tj);
}

/* Insignificant spellings of the same template are recognized; any change in
 * what it renders is not. */
static void test_template_variants(void **state) {
  (void)state;
  static const char *const same[] = {
      /* '\n' written as an escape inside the Jinja strings, as in Python sources */
      "\"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
      "{{ '<|system|>\\\\n' + message['content'] + '\\\\n' }}{% elif message['role'] == 'user' %}"
      "{{ '<|user|>\\\\n' + message['content'] + '\\\\n' }}"
      "{% elif message['role'] == 'assistant' %}"
      "{% if not loop.last %}{{ '<|assistant|>\\\\n'  + message['content'] + eos_token + '\\\\n' }}"
      "{% else %}{{ '<|assistant|>\\\\n'  + message['content'] + eos_token }}{% endif %}{% endif %}"
      "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\\\\n' }}{% endif %}"
      "{% endfor %}\"",
      /* other blanks inside tags, double quotes */
      "\"{{bos_token}}{%  for message in messages\\n%}{% if message[\\\"role\\\"]=='system' %}"
      "{{'<|system|>\\n'+message['content']+'\\n'}}{% elif message['role'] == 'user' %}"
      "{{ '<|user|>\\n' + message['content'] + '\\n' }}{%\\telif message['role'] == 'assistant' %}"
      "{% if not   loop.last %}{{ '<|assistant|>\\n' + message['content'] + eos_token + '\\n' }}"
      "{% else %}{{ '<|assistant|>\\n' + message['content'] + eos_token }}{% endif %}{% endif %}"
      "{% if loop.last and add_generation_prompt %}{{ \\\"<|assistant|>\\n\\\" }}{% endif %}"
      "{% endfor %}\"",
  };
  rt_chat_template t;
  oc_error e = {{0}};
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
    write_config(same[i], "\"<|endoftext|>\"", "\"<|endoftext|>\"");
    if (rt_chat_template_load(tmpdir, &t, &e) != 0) fail_msg("variant %zu: %s", i, e.msg);
  }

  /* edits that change the output: a missing '\n' after eos, a space in a
   * string, text outside tags, whitespace control, a comment */
  char *tj = golden_template_json();
  static const char *const edits[][2] = {
      {"eos_token + '\\n' }}", "eos_token }}"},
      {"'<|user|>\\n'", "'<|user|> \\n'"},
      {"{% endfor %}", "{% endfor %}\\n"},
      {"{% endfor %}", "{%- endfor %}"},
      {"{% endfor %}", "{% endfor %}{# done #}"},
      {"not loop.last", "notloop.last"},
  };
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    char buf[4096];
    const char *at = strstr(tj, edits[i][0]);
    if (!at) fail_msg("edit %zu: '%s' not in the template", i, edits[i][0]);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - tj), tj, edits[i][1],
             at + strlen(edits[i][0]));
    const char *path = write_config(buf, "\"<|endoftext|>\"", "\"<|endoftext|>\"");
    expect_load_error(path, path, "not one olmoc renders natively");
    expect_load_error(path, "--chat-template olmo2", NULL);
  }
  cJSON_free(tj);
}

static void test_load_errors(void **state) {
  (void)state;
  char missing[600];
  snprintf(missing, sizeof missing, "%s/nowhere/tokenizer_config.json", tmpdir);
  expect_load_error(missing, missing, "cannot open");

  const char *path = write_config(NULL, "\"<|endoftext|>\"", "\"<|endoftext|>\"");
  expect_load_error(path, path, "no chat_template");
  path = write_config("null", NULL, NULL);
  expect_load_error(path, path, "no chat_template");
  path = write_config("\"{% for m in messages %}{{ m.content }}{% endfor %}\"", NULL, NULL);
  expect_load_error(path, path,
                    "chat_template is not one olmoc renders natively (use --chat-template olmo2 "
                    "to force OLMo 2's)");
  path = write_config("42", NULL, NULL);
  expect_load_error(path, path, "key 'chat_template': expected a string or a list");
  path = write_config("[{\"name\": \"rag\", \"template\": \"x\"}]", NULL, NULL);
  expect_load_error(path, path, "no template named \"default\"");
  path = write_config("[{\"name\": \"default\"}]", NULL, NULL);
  expect_load_error(path, path, "key 'chat_template'");

  char *tj = golden_template_json();
  path = write_config(tj, "17", NULL);
  expect_load_error(path, path, "key 'bos_token'");
  path = write_config(tj, NULL, "{\"contents\": \"</s>\"}");
  expect_load_error(path, path, "key 'eos_token'");
  char long_tok[200];
  snprintf(long_tok, sizeof long_tok, "\"<|%0100d|>\"", 0);
  path = write_config(tj, long_tok, NULL);
  expect_load_error(path, path, "longer than 63 bytes");
  cJSON_free(tj);

  path = write_tmp("tokenizer_config.json", "{\"chat_template\": \"x\",\n  \"bos_token\": }");
  expect_load_error(path, path, "malformed JSON at line 2");
  path = write_tmp("tokenizer_config.json", "[1, 2]");
  expect_load_error(path, path, "expected a JSON object");
  path = write_tmp("tokenizer_config.json", "{} trailing");
  expect_load_error(path, path, "malformed JSON");
  /* unterminated tags and strings are unknown, not a crash */
  path = write_config("\"{{ bos_token \"", NULL, NULL);
  expect_load_error(path, path, "not one olmoc renders natively");
  path = write_config("\"{{ 'abc }}\"", NULL, NULL);
  expect_load_error(path, path, "not one olmoc renders natively");
  path = write_config("\"{% raw %}{{ x }}{% endraw %}\"", NULL, NULL);
  expect_load_error(path, path, "not one olmoc renders natively");
}

static int setup(void **state) {
  (void)state;
  if (!mkdtemp(tmpdir)) return -1;
  golden_text = slurp(GOLDEN);
  if (!golden_text) {
    fprintf(stderr, "cannot read %s (run from the source tree)\n", GOLDEN);
    return -1;
  }
  golden = cJSON_Parse(golden_text);
  return golden ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char path[600];
  snprintf(path, sizeof path, "%s/tokenizer_config.json", tmpdir);
  unlink(path);
  rmdir(tmpdir);
  cJSON_Delete(golden);
  free(golden_text);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden),          cmocka_unit_test(test_named),
      cmocka_unit_test(test_render_errors),   cmocka_unit_test(test_load_known),
      cmocka_unit_test(test_template_variants), cmocka_unit_test(test_load_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
