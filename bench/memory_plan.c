/* The memory planner's table: for every published OLMo 2 config, the primitive
 * graph planned at T = 1 (decode) and T = 512 (a prefill chunk) with a full
 * 4096-position context: naive sum of activation bytes, planned arena, lower
 * bound (largest live total) and their ratio. Every plan is also checked.
 * Usage: memory_plan_bench [MODELS_DIR] (default: models), from /work/main. */
#include <stdio.h>
#include <time.h>

#include "olmoc/olmo2.h"
#include "olmoc/plan.h"

#define MAX_CTX 4096

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  static const char *sizes[] = {"1b", "7b", "13b", "32b"};
  static const int64_t tokens[] = {1, 512};
  const char *dir = argc > 1 ? argv[1] : "models";
  pass_plan plans[8];
  char names[8][64];
  const char *labels[8];
  int n = 0, rc = 0;
  printf("$ %s%s%s\n", argv[0], argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
  for (int s = 0; s < 4 && !rc; s++) {
    char path[512];
    snprintf(path, sizeof path, "%s/olmo2-%s", dir, sizes[s]);
    olmo2_config c;
    ir_graph *g = NULL;
    oc_error e;
    if (olmo2_config_load(path, &c, &e) || olmo2_build_graph(&c, IR_F32, &g, &e)) {
      fprintf(stderr, "%s: %s\n", path, e.msg);
      rc = 1;
      break;
    }
    for (int t = 0; t < 2; t++) {
      double t0 = now();
      if (pass_plan_memory(g, tokens[t], MAX_CTX, &plans[n], &e)) {
        fprintf(stderr, "%s: %s\n", path, e.msg);
        rc = 1;
        break;
      }
      double t1 = now();
      if (pass_plan_check(g, &plans[n], &e)) {
        fprintf(stderr, "%s: the plan fails its check: %s\n", path, e.msg);
        rc = 1;
      }
      snprintf(names[n], sizeof names[n], "olmo2-%s T=%lld", sizes[s], (long long)tokens[t]);
      labels[n] = names[n];
      printf("%s: %d nodes, planned in %.1f ms, checked in %.1f ms\n", names[n], g->n,
             1e3 * (t1 - t0), 1e3 * (now() - t1));
      n++;
    }
    ir_graph_free(g);
  }
  printf("\nprimitive graphs, f32 activations, max_ctx %d, 64-byte aligned buffers\n\n", MAX_CTX);
  pass_plan_report(stdout, labels, plans, n);
  for (int i = 0; i < n; i++)
    pass_plan_free(&plans[i]);
  return rc;
}
