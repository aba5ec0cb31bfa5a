/* Shared by the tests that run one model from checkpoints in two dtypes: a
 * checkpoint directory rewritten with every tensor in another dtype (bf16
 * rounded to nearest even with rt_bf16_round, as `olmoc compile --dtype bf16`
 * rounds; f32 exactly; f16 truncated, a source with more bits than bf16
 * for small normal weights), optionally with the embedding tied to the head.
 * Included once per test program, after cmocka. */
#ifndef OLMOC_TESTS_CHECKPOINT_HARNESS_H
#define OLMOC_TESTS_CHECKPOINT_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "olmoc/weights.h"

typedef struct converted {
  const rt_weights *src;
  const rt_tensor_spec *specs;
} converted;

/* x truncated to f16; below f16's normal range, zero (of x's sign). */
static inline uint16_t f16_truncated(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  uint32_t sign = u >> 16 & 0x8000, exp = u >> 23 & 0xff;
  assert_true(exp < 143); /* below 65536 */
  return (uint16_t)(exp < 113 ? sign : sign | (exp - 112) << 10 | (u & 0x7fffff) >> 13);
}

static inline int fill_converted(void *ctx, int index, size_t at, void *data, size_t nbytes, oc_error *e) {
  (void)e;
  const converted *c = ctx;
  const rt_tensor_spec *s = &c->specs[index];
  const rt_tensor *t = rt_weights_find(c->src, s->name);
  size_t first = at / ir_dtype_size(s->dtype);
  for (size_t i = 0; i < nbytes / ir_dtype_size(s->dtype); i++) {
    float x = ir_load_f32(t->dtype, t->data, (int64_t)(first + i));
    if (s->dtype == IR_BF16)
      ((uint16_t *)data)[i] = rt_bf16_round(x);
    else if (s->dtype == IR_F16)
      ((uint16_t *)data)[i] = f16_truncated(x);
    else
      ((float *)data)[i] = x;
  }
  return 0;
}

/* from/name (a file the checkpoint may lack) copied to dir/name; tied: with
 * tie_word_embeddings set in a config.json. */
static inline void copy_model_file(const char *from, const char *dir, const char *name, bool tied) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", from, name);
  FILE *f = fopen(path, "rb");
  if (!f)
    return;
  static char text[1 << 20];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  char *untied = tied ? strstr(text, "\"tie_word_embeddings\": false") : NULL;
  assert_true(untied || !tied);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "wb");
  assert_non_null(f);
  if (untied) {
    fwrite(text, 1, (size_t)(untied - text), f);
    fputs("\"tie_word_embeddings\": true", f);
    fputs(untied + strlen("\"tie_word_embeddings\": false"), f);
  } else {
    fwrite(text, 1, n, f);
  }
  fclose(f);
}

/* The checkpoint in `from` written to dir (created) with every tensor in
 * `to` (f32, bf16 or f16); tied: without lm_head.weight, the head reading the
 * embedding. */
static inline void write_checkpoint(const char *from, const char *dir, ir_dtype to, bool tied) {
  oc_error e;
  rt_weights *w;
  if (rt_weights_open(from, &w, &e))
    fail_msg("%s", e.msg);
  assert_true(mkdir(dir, 0755) == 0);
  rt_tensor_spec specs[64];
  int n = 0;
  for (int i = 0; i < rt_weights_count(w); i++) {
    const rt_tensor *t = rt_weights_at(w, i);
    if (tied && !strcmp(t->name, "lm_head.weight"))
      continue;
    assert_true(n < 64);
    specs[n] = (rt_tensor_spec){.name = t->name, .dtype = to, .rank = t->rank};
    memcpy(specs[n++].dims, t->dims, sizeof t->dims);
  }
  converted c = {w, specs};
  char path[512];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (rt_safetensors_write(path, specs, n, fill_converted, &c, &e))
    fail_msg("%s", e.msg);
  copy_model_file(from, dir, "config.json", tied);
  copy_model_file(from, dir, "tokenizer.json", false);
  rt_weights_close(w);
}

#endif
