/* The fuzz harnesses (fuzz/<target>.c, built here as plain functions) on
 * every input the fuzzers ever broke olmoc with, tests/data/fuzz-regressions/
 * <target>/, and on their seeds, fuzz/corpus/<target>/: each must end in a
 * clean error or success, never a crash, leak or broken invariant (make
 * test-asan checks the memory). Run from the source tree. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fuzz.h"

typedef int (*harness)(const uint8_t *data, size_t size);

static uint8_t *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  assert_non_null(buf);
  while ((len += fread(buf + len, 1, cap - len, f)) == cap) {
    buf = realloc(buf, cap *= 2);
    assert_non_null(buf);
  }
  assert_false(ferror(f));
  fclose(f);
  *n = len;
  return buf;
}

/* Feeds every file of dir to fn; returns how many. A missing dir has none. */
static int replay_dir(const char *dir, harness fn) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int count = 0;
  struct dirent *ent;
  while ((ent = readdir(d))) {
    if (ent->d_name[0] == '.') continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
    size_t n;
    uint8_t *data = read_file(path, &n);
    if (fn(data, n) != 0) fail_msg("%s: the harness returned non-zero", path);
    free(data);
    count++;
  }
  closedir(d);
  return count;
}

/* The seeds of fuzz/corpus/<seed_dir>, then the regressions of <target>. */
static void replay(const char *target, const char *seed_dir, harness fn, int min_seeds) {
  char dir[256];
  snprintf(dir, sizeof dir, "fuzz/corpus/%s", seed_dir);
  int seeds = replay_dir(dir, fn);
  if (seeds < min_seeds) fail_msg("%s: %d seeds, expected at least %d", dir, seeds, min_seeds);
  snprintf(dir, sizeof dir, "tests/data/fuzz-regressions/%s", target);
  replay_dir(dir, fn);
}

static void test_safetensors(void **state) {
  (void)state;
  replay("safetensors", "safetensors", fuzz_safetensors, 1);
}

static void test_quantized(void **state) {
  (void)state;
  replay("quantized", "quantized", fuzz_quantized, 2);
}

static void test_program(void **state) {
  (void)state;
  replay("program", "program", fuzz_program, 2);
}

static void test_config(void **state) {
  (void)state;
  replay("config", "config", fuzz_config, 1);
}

static void test_tokenizer(void **state) {
  (void)state;
  replay("tokenizer", "tokenizer", fuzz_tokenizer, 1);
}

static void test_tokenizer_dolma2(void **state) {
  (void)state;
  replay("tokenizer_dolma2", "tokenizer_dolma2", fuzz_tokenizer_dolma2, 1);
}

static void test_ir(void **state) {
  (void)state;
  replay("ir", "ir", fuzz_ir, 1);
}

static void test_ir_passes(void **state) {
  (void)state;
  replay("ir_passes", "ir", fuzz_ir_passes, 1);
}

static void test_chat(void **state) {
  (void)state;
  replay("chat", "chat", fuzz_chat, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_safetensors), cmocka_unit_test(test_quantized), cmocka_unit_test(test_program),
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_tokenizer),   cmocka_unit_test(test_tokenizer_dolma2),
      cmocka_unit_test(test_ir),          cmocka_unit_test(test_ir_passes),
      cmocka_unit_test(test_chat),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
