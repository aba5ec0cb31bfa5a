/* The generation loop against a fake model whose greedy choice after token t
 * is t+1: where it stops (EOS, length, context, caller), what the cache holds,
 * prompts that do not fit, and errors from the model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "olmoc/generate.h"

#define VOCAB 16
#define CTX 12

typedef struct fake {
  int64_t position;
  int32_t cache[CTX]; /* the tokens fed so far */
  float logits[CTX * VOCAB];
  int calls, fail_at_call;
} fake;

static const float *fake_forward(void *self, const int32_t *tokens, int64_t T, oc_error *e) {
  fake *f = self;
  if (++f->calls == f->fail_at_call) {
    oc_fail(e, "fake failure");
    return NULL;
  }
  assert_true(f->position + T <= CTX);
  memset(f->logits, 0, sizeof f->logits);
  for (int64_t i = 0; i < T; i++) {
    f->cache[f->position + i] = tokens[i];
    f->logits[i * VOCAB + (tokens[i] + 1) % VOCAB] = 5.0f;
  }
  f->position += T;
  return f->logits;
}

static int64_t fake_position(void *self) { return ((fake *)self)->position; }
static void fake_rewind(void *self, int64_t P) { ((fake *)self)->position = P; }

typedef struct seen {
  int32_t ids[64];
  int n, stop_after;
} seen;

static int record(void *user, int32_t id) {
  seen *s = user;
  s->ids[s->n++] = id;
  return s->stop_after && s->n >= s->stop_after;
}

static rt_model model_of(fake *f) {
  return (rt_model){f, VOCAB, CTX, fake_forward, fake_position, fake_rewind, NULL};
}

static rt_sampler *greedy(void) {
  rt_sampling s = rt_sampling_default();
  rt_sampler *out;
  oc_error e;
  assert_int_equal(rt_sampler_new(&s, VOCAB, &out, &e), 0);
  return out;
}

static void test_stops_at_eos(void **state) {
  (void)state;
  fake f = {0};
  rt_model m = model_of(&f);
  rt_sampler *s = greedy();
  seen out = {0};
  int32_t eos = 6, prompt[] = {1, 2, 3};
  rt_generation g = {.max_new = -1, .eos = &eos, .n_eos = 1, .on_token = record, .user = &out};
  rt_generation_stats st;
  oc_error e;
  assert_int_equal(rt_generate(&m, s, prompt, 3, &g, &st, &e), 0);
  assert_int_equal(st.stop, RT_STOP_EOS);
  assert_int_equal(out.n, 2); /* 4, 5; then 6 is EOS and not passed on */
  assert_int_equal(out.ids[0], 4);
  assert_int_equal(out.ids[1], 5);
  assert_int_equal(st.prompt_tokens, 3);
  assert_int_equal(st.generated_tokens, 2);
  assert_int_equal(f.position, 5); /* prompt + 4; 5 was sampled last, then EOS */
  assert_int_equal(f.calls, 3);     /* one prefill, two decode steps */
  rt_sampler_free(s);
}

static void test_stops_at_length_and_caller(void **state) {
  (void)state;
  fake f = {0};
  rt_model m = model_of(&f);
  rt_sampler *s = greedy();
  seen out = {0};
  int32_t prompt[] = {0};
  rt_generation g = {.max_new = 4, .on_token = record, .user = &out};
  rt_generation_stats st;
  oc_error e;
  assert_int_equal(rt_generate(&m, s, prompt, 1, &g, &st, &e), 0);
  assert_int_equal(st.stop, RT_STOP_LENGTH);
  assert_int_equal(out.n, 4);
  assert_int_equal(out.ids[3], 4);

  out = (seen){.stop_after = 2};
  m.rewind(m.self, 0);
  assert_int_equal(rt_generate(&m, s, prompt, 1, &g, &st, &e), 0);
  assert_int_equal(st.stop, RT_STOP_CALLER);
  assert_int_equal(out.n, 2);
  rt_sampler_free(s);
}

/* Fills the cache: every position is used and the last token has no row. */
static void test_stops_at_context(void **state) {
  (void)state;
  fake f = {0};
  rt_model m = model_of(&f);
  rt_sampler *s = greedy();
  seen out = {0};
  int32_t prompt[] = {0, 1, 2};
  rt_generation g = {.max_new = -1, .on_token = record, .user = &out};
  rt_generation_stats st;
  oc_error e;
  assert_int_equal(rt_generate(&m, s, prompt, 3, &g, &st, &e), 0);
  assert_int_equal(st.stop, RT_STOP_CONTEXT);
  assert_int_equal(f.position, CTX);
  assert_int_equal(out.n, CTX - 3 + 1);
  rt_sampler_free(s);
}

static void test_prompt_errors(void **state) {
  (void)state;
  fake f = {0};
  rt_model m = model_of(&f);
  rt_sampler *s = greedy();
  int32_t long_prompt[CTX + 1] = {0};
  rt_generation g = {.max_new = 1};
  rt_generation_stats st;
  oc_error e;
  assert_int_equal(rt_generate(&m, s, long_prompt, CTX + 1, &g, &st, &e), -1);
  assert_non_null(strstr(e.msg, "the prompt is 13 tokens but the context holds 12 positions"));
  assert_int_equal(f.calls, 0);
  assert_int_equal(rt_generate(&m, s, long_prompt, 0, &g, &st, &e), -1);
  assert_non_null(strstr(e.msg, "empty"));
  f.position = 10; /* a conversation so far */
  assert_int_equal(rt_generate(&m, s, long_prompt, 3, &g, &st, &e), -1);
  assert_non_null(strstr(e.msg, "holds 2 positions after the conversation so far"));
  rt_sampler_free(s);
}

static void test_model_failure(void **state) {
  (void)state;
  rt_sampler *s = greedy();
  int32_t prompt[] = {0};
  rt_generation g = {.max_new = 5};
  rt_generation_stats st;
  oc_error e;
  for (int at = 1; at <= 3; at++) {
    fake f = {.fail_at_call = at};
    rt_model m = model_of(&f);
    assert_int_equal(rt_generate(&m, s, prompt, 1, &g, &st, &e), -1);
    assert_string_equal(e.msg, "fake failure");
  }
  rt_sampler_free(s);
}

/* A second turn continues on the cache from the current position. */
static void test_continues_from_position(void **state) {
  (void)state;
  fake f = {0};
  rt_model m = model_of(&f);
  rt_sampler *s = greedy();
  seen out = {0};
  int32_t first[] = {3}, second[] = {9, 10};
  rt_generation g = {.max_new = 2, .on_token = record, .user = &out};
  rt_generation_stats st;
  oc_error e;
  assert_int_equal(rt_generate(&m, s, first, 1, &g, &st, &e), 0);
  assert_int_equal(f.position, 2); /* 3 and 4; 5 was sampled but not fed */
  assert_int_equal(rt_generate(&m, s, second, 2, &g, &st, &e), 0);
  assert_int_equal(f.position, 5);
  int32_t want[] = {3, 4, 9, 10, 11};
  assert_memory_equal(f.cache, want, sizeof want);
  rt_sampler_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stops_at_eos),
      cmocka_unit_test(test_stops_at_length_and_caller),
      cmocka_unit_test(test_stops_at_context),
      cmocka_unit_test(test_prompt_errors),
      cmocka_unit_test(test_model_failure),
      cmocka_unit_test(test_continues_from_position),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
