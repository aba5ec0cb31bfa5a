/* The registry and the pipeline driver. The registry's order is the pipeline's
 * order: clean-ups, then the exact fusions (norms before what reads them,
 * residual adds last), then the generic ones, then memory planning. The
 * verifier runs before the first pass and after each one. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "olmoc/ir_text.h"
#include "olmoc/output.h"
#include "olmoc/passes.h"

const pass_info pass_registry[] = {
    {"fold-constants", pass_fold_constants, "fold scalar const arithmetic and no-op reshapes, transposes, slices, repeats", 1},
    {"cse", pass_cse, "merge nodes computing the same op on the same inputs", 1},
    {"dce", pass_dce, "drop nodes no output or cache append depends on", 1},
    {"fuse-rmsnorm", pass_fuse_rmsnorm, "w*(x*rsqrt(mean(x*x)+eps)) -> rmsnorm", 1},
    {"fuse-rope", pass_fuse_rope, "x*cos + concat(-x_hi, x_lo)*sin -> rope", 1},
    {"fuse-attention", pass_fuse_attention, "transposes, repeats, q.k^T*scale, causal_mask, softmax, .v -> attention", 1},
    {"fuse-swiglu", pass_fuse_swiglu, "(g*sigmoid(g))*u -> swiglu", 1},
    {"fuse-matmul-swiglu", pass_fuse_matmul_swiglu, "swiglu(x.Wg^T, x.Wu^T) -> matmul_swiglu (gate and up in one op)", 2},
    {"fuse-residual", pass_fuse_residual, "r + rmsnorm(..) -> rmsnorm_add, r + matmul(..) -> matmul_add", 1},
    {"fuse-elementwise", pass_fuse_elementwise, "chains of elementwise ops -> one elementwise node with its expr", 2},
    {"plan-memory", pass_memory, "place every activation in one arena (no graph change)", 2},
};
const int pass_registry_count = sizeof pass_registry / sizeof *pass_registry;

const pass_info *pass_lookup(const char *name) {
  for (int i = 0; name && i < pass_registry_count; i++)
    if (!strcmp(pass_registry[i].name, name))
      return &pass_registry[i];
  return NULL;
}

/* Whether the comma list holds `name`. */
static bool listed(const char *list, const char *name) {
  size_t len = strlen(name);
  for (const char *p = list; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
    if (strcspn(p, ",") == len && !strncmp(p, name, len))
      return true;
  }
  return false;
}

/* Every name in the comma list is registered. */
static int check_list(const char *list, const char *option, oc_error *e) {
  for (const char *p = list; p && *p;) {
    size_t len = strcspn(p, ",");
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), p);
    if (!pass_lookup(name))
      return oc_fail(e, "%s: unknown pass '%.*s' (`olmoc passes` lists them)", option, (int)len, p);
    p += len + (p[len] == ',');
  }
  return 0;
}

/* The passes to run, in order, into list[PASS_MAX_RUNS]; returns how many. */
static int plan_pipeline(const pass_options *o, const pass_info **list, oc_error *e) {
  if (check_list(o->passes, "--passes", e) || check_list(o->disable, "--disable-pass", e) ||
      check_list(o->print_after, "--print-after", e))
    return -1;
  int n = 0;
  if (o->passes) {
    for (const char *p = o->passes; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)strcspn(p, ","), p);
      if (n == PASS_MAX_RUNS)
        return oc_fail(e, "--passes: more than %d passes", PASS_MAX_RUNS);
      if (!listed(o->disable, name))
        list[n++] = pass_lookup(name);
    }
  } else {
    for (int i = 0; i < pass_registry_count; i++)
      if (pass_registry[i].level <= o->level && !listed(o->disable, pass_registry[i].name))
        list[n++] = &pass_registry[i];
  }
  /* a requirement of the backend, not an optimization: --disable-pass does not drop it */
  const pass_info *plan = pass_lookup("plan-memory");
  if (o->need_plan && (n == 0 || list[n - 1] != plan)) {
    if (n == PASS_MAX_RUNS)
      return oc_fail(e, "--passes: more than %d passes with the plan-memory the backend needs", PASS_MAX_RUNS - 1);
    list[n++] = plan;
  }
  return n;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The graph after the k-th pass, to DIR/NN-name.ir or the dump stream. */
static int dump(const ir_graph *g, const pass_options *o, int k, const char *name, oc_error *e) {
  if (!o->dump_dir) {
    FILE *out = o->dump ? o->dump : stderr;
    fprintf(out, "# *** IR after pass %d: %s ***\n", k + 1, name);
    return ir_print(g, out) ? oc_fail(e, "writing the dump after %s failed", name) : 0;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/%02d-%s.ir", o->dump_dir, k + 1, name);
  rt_output out; /* a failed write leaves no partial dump */
  if (rt_output_open(&out, path, e))
    return oc_wrap(e, "--dump-dir");
  ir_print(g, out.f); /* a stream error is found, with its cause, by the close */
  return rt_output_close(&out, e) ? oc_wrap(e, "--dump-dir") : 0;
}

int pass_run_pipeline(ir_graph *g, const pass_options *o, pass_result *r, oc_error *e) {
  static const pass_options o2 = {.level = 2};
  o = o ? o : &o2;
  *r = (pass_result){0};
  const pass_info *list[PASS_MAX_RUNS];
  int n = plan_pipeline(o, list, e);
  if (n < 0)
    return -1;
  if (ir_verify(g, e))
    return oc_wrap(e, "the graph given to the passes does not verify");
  for (int k = 0; k < n; k++) {
    pass_env env = {.options = o, .result = r};
    pass_record *rec = &r->rec[r->n++];
    *rec = (pass_record){.name = list[k]->name, .nodes_before = g->n};
    double t0 = now();
    if (list[k]->run(g, &env, e) || ir_graph_status(g, e))
      return oc_wrap(e, "pass %s", list[k]->name);
    *rec = (pass_record){list[k]->name, rec->nodes_before, g->n, env.changes, env.work, now() - t0};
    if (ir_verify(g, e))
      return oc_wrap(e, "pass %s produced an invalid graph", list[k]->name);
    if ((o->print_after_all || listed(o->print_after, list[k]->name)) &&
        dump(g, o, k, list[k]->name, e))
      return -1;
  }
  return 0;
}

void pass_result_free(pass_result *r) {
  if (r->planned)
    pass_plan_free(&r->plan);
  *r = (pass_result){0};
}

void pass_print_stats(const pass_result *r, FILE *out) {
  fprintf(out, "%-20s %8s %8s %8s %10s\n", "pass", "before", "after", "changes", "time");
  for (int i = 0; i < r->n; i++) {
    const pass_record *p = &r->rec[i];
    fprintf(out, "%-20s %8d %8d %8d %7.2f ms\n", p->name, p->nodes_before, p->nodes_after,
            p->changes, 1e3 * p->seconds);
  }
  if (r->planned) {
    const char *label = "activations";
    pass_plan_report(out, &label, &r->plan, 1);
  }
}
