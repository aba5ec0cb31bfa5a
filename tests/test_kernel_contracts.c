/* Kernel contracts (olmoc/kernel_contract.h) are not less than what the
 * kernels touch: every kernel step of the golden tiny model's programs
 * (-O0, -O1, -O2; host and AVX2; f32, bf16 compute, q8, q4, a bf16 KV
 * cache) runs on copies of its arguments, each exactly as long as its
 * contract says for that call, once ending at an unmapped page and once
 * starting just after one, at the largest prompt, the last position and a
 * call in between. A kernel that reads or writes a byte outside its
 * contract dies of SIGSEGV here. That the contracts are not more than the
 * programs have, cg_lower checks on every program it makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "olmoc/codegen.h"
#include "olmoc/executor.h"
#include "olmoc/olmo2.h"
#include "olmoc/passes.h"
#include "olmoc/weights.h"

#define TINY "tests/data/tiny"

static void check(int rc, const oc_error *e) {
  if (rc)
    fail_msg("%s", e->msg);
}

/* n bytes beside an unmapped page: ending at it (after = false) or
 * starting right after it, in a mapping *map of *map_bytes. */
static unsigned char *guarded(size_t n, bool after, void **map, size_t *map_bytes) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), span = (n + 3) / 4 * 4, data = (span + page - 1) / page * page;
  *map_bytes = data + page;
  unsigned char *m = mmap(NULL, *map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(m != MAP_FAILED);
  *map = m;
  if (after) {
    assert_int_equal(mprotect(m, page, PROT_NONE), 0);
    return m + page;
  }
  assert_int_equal(mprotect(m + data, page, PROT_NONE), 0);
  return m + data - span;
}

/* Step s of p at (T, P), its arguments copied beside unmapped pages. */
static void run_guarded(const rt_program *p, const rt_step *s, int64_t T, int64_t P, bool after) {
  void *a[RT_MAX_ARGS], *maps[RT_MAX_ARGS];
  size_t map_bytes[RT_MAX_ARGS];
  for (int i = 0; i < s->n_args; i++) {
    int64_t n = rt_step_extent(p, s, i, T, P);
    assert_true(n >= 0);
    unsigned char *copy = guarded((size_t)n, after, &maps[i], &map_bytes[i]);
    const void *from = rt_program_arg_address(p, &s->arg[i], P);
    if (from) /* the token ids: zeros, a valid id */
      memcpy(copy, from, (size_t)n);
    a[i] = copy;
  }
  int64_t work = s->work.c + s->work.t * T + s->work.p * P;
  rt_step_invoke(s, a, T, P, rt_program_ctx(p), 0, work);
  for (int i = 0; i < s->n_args; i++)
    munmap(maps[i], map_bytes[i]);
}

typedef struct variant {
  const char *what;
  int level;
  bool avx2, bf16_compute, kv_bf16;
  int quantize; /* 0, 8 or 4 */
} variant;

static void run_variant(const variant *v, const rt_weights *w, const olmo2_config *c) {
  oc_error e;
  cg_jit *j;
  check(v->avx2 ? cg_jit_new_for_cpu("haswell", "+avx2,+fma", &j, &e) : cg_jit_new(&j, &e), &e);
  if (v->bf16_compute && cg_jit_set_bf16_compute(j, true, &e)) {
    print_message("skipped %s: %s\n", v->what, e.msg);
    cg_jit_free(j);
    return;
  }
  check(v->kv_bf16 ? cg_jit_set_kv_bf16(j, true, &e) : 0, &e);
  if (v->quantize == 8)
    cg_jit_set_q8(j, true);
  if (v->quantize == 4)
    cg_jit_set_q4(j, true);
  ir_graph *g;
  check(olmo2_build_graph(c, v->bf16_compute ? IR_BF16 : IR_F32, &g, &e), &e);
  int64_t ctx = c->max_position_embeddings;
  pass_options o = {.level = v->level, .max_tokens = ctx, .max_ctx = ctx, .need_plan = true};
  pass_result r;
  check(pass_run_pipeline(g, &o, &r, &e), &e);
  rt_program *p;
  check(cg_lower(j, g, &r.plan, ctx, rt_weights_lookup, (void *)w, &p, &e), &e);
  int64_t Tm = rt_program_max_tokens(p), calls[][2] = {{Tm, ctx - Tm}, {1, ctx - 1}, {5, 3}};
  int kernels = 0;
  for (int64_t i = 0; i < rt_program_steps(p); i++) {
    const rt_step *s = rt_program_step(p, i);
    if (!s->fn)
      continue;
    kernels++;
    for (int k = 0; k < 3; k++)
      for (int after = 0; after < 2; after++)
        run_guarded(p, s, calls[k][0], calls[k][1], after);
  }
  print_message("%s: %d kernel steps ran guarded\n", v->what, kernels);
  assert_true(kernels > 0);
  rt_program_free(p);
  pass_result_free(&r);
  ir_graph_free(g);
  cg_jit_free(j);
}

static void test_every_kernel_within_its_contract(void **state) {
  (void)state;
  oc_error e;
  olmo2_config c;
  rt_weights *w;
  check(olmo2_config_load(TINY, &c, &e), &e);
  check(rt_weights_open(TINY, &w, &e), &e);
  const variant variants[] = {
      {"-O0", 0, false, false, false, 0},         {"-O1", 1, false, false, false, 0},
      {"-O2", 2, false, false, false, 0},         {"-O0 avx2", 0, true, false, false, 0},
      {"-O2 avx2", 2, true, false, false, 0},     {"-O2 q8", 2, false, false, false, 8},
      {"-O2 q4", 2, false, false, false, 4},      {"-O2 q4 avx2", 2, true, false, false, 4},
      {"-O2 kv bf16", 2, false, false, true, 0},  {"-O2 compute bf16", 2, false, true, false, 0},
  };
  for (size_t i = 0; i < sizeof variants / sizeof *variants; i++)
    run_variant(&variants[i], w, &c);
  rt_weights_close(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_kernel_within_its_contract),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
