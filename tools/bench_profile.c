/* `olmoc bench --profile`: where a forward call's time goes, per kernel family
 * (the op a step runs) and per transformer layer, for one prefill of T tokens
 * and for decode steps at P = 0..steps-1, from the executor's per-step clocks.
 * The clock adds a read per step; the figures are the profiled runs', not the
 * table's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_profile.h"
#include "olmoc/generate.h"

typedef struct row {
  const char *name; /* a family's op name */
  int layer;        /* or a layer (-1: outside the layers) */
  double s[2];      /* seconds: prefill, decode */
} row;

typedef struct table {
  row *rows;
  int n;
  double total[2];
} table;

static row *find(table *t, const char *name, int layer) {
  for (int i = 0; i < t->n; i++)
    if (name ? !strcmp(t->rows[i].name, name) : t->rows[i].layer == layer)
      return &t->rows[i];
  row *r = &t->rows[t->n++];
  *r = (row){.name = name, .layer = layer};
  return r;
}

/* Adds each step's seconds of the runs since profiling was turned on, as column c. */
static void collect(const rt_program *p, table *family, table *layer, int c) {
  const double *s = rt_program_step_seconds(p);
  for (int64_t i = 0; i < rt_program_steps(p); i++) {
    const rt_step *st = rt_program_step(p, i);
    find(family, st->what, 0)->s[c] += s[i];
    find(layer, NULL, st->layer)->s[c] += s[i];
    family->total[c] += s[i];
    layer->total[c] += s[i];
  }
}

static int run(rt_program *p, const int32_t *tokens, int64_t T, int64_t steps, int threads, table *family,
               table *layer, oc_error *e) {
  rt_program_rewind(p, 0);
  if (rt_program_set_profiling(p, true, e) || !rt_program_run(p, tokens, T, threads, e))
    return -1;
  collect(p, family, layer, 0);
  rt_program_rewind(p, 0);
  if (rt_program_set_profiling(p, true, e))
    return -1;
  for (int64_t k = 0; k < steps; k++)
    if (!rt_program_run(p, tokens + k, 1, threads, e))
      return -1;
  collect(p, family, layer, 1);
  return rt_program_set_profiling(p, false, e);
}

static void print_rows(const table *t, const char *heading, int64_t steps) {
  printf("%-16s %10s %6s %12s %6s\n", heading, "prefill ms", "%", "decode ms/tok", "%");
  for (int i = 0; i < t->n; i++) {
    const row *r = &t->rows[i];
    char label[32];
    if (r->name)
      snprintf(label, sizeof label, "%s", r->name);
    else if (r->layer < 0)
      snprintf(label, sizeof label, "(no layer)");
    else
      snprintf(label, sizeof label, "layer %d", r->layer);
    printf("%-16s %10.2f %5.1f%% %12.3f %5.1f%%\n", label, r->s[0] * 1e3, 100 * r->s[0] / t->total[0],
           r->s[1] * 1e3 / (double)steps, 100 * r->s[1] / t->total[1]);
  }
  printf("%-16s %10.2f %6s %12.3f\n\n", "total", t->total[0] * 1e3, "", t->total[1] * 1e3 / (double)steps);
}

static cJSON *json_rows(const table *t, bool families, int64_t steps) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; a && i < t->n; i++) {
    const row *r = &t->rows[i];
    cJSON *o = cJSON_CreateObject();
    if (families)
      cJSON_AddStringToObject(o, "op", r->name);
    else
      cJSON_AddNumberToObject(o, "layer", r->layer);
    cJSON_AddNumberToObject(o, "prefill_s", r->s[0]);
    cJSON_AddNumberToObject(o, "decode_s_per_token", r->s[1] / (double)steps);
    cJSON_AddItemToArray(a, o);
  }
  return a;
}

int bench_profile(rt_program *p, const int32_t *tokens, int64_t T, int64_t steps, int threads, cJSON *json,
                  oc_error *e) {
  int64_t n = rt_program_steps(p);
  table family = {calloc((size_t)n, sizeof(row)), 0, {0}}, layer = {calloc((size_t)n, sizeof(row)), 0, {0}};
  int rc = !family.rows || !layer.rows ? oc_fail(e, "out of memory for the profile")
                                       : run(p, tokens, T, steps, threads, &family, &layer, e);
  if (!rc && json) {
    cJSON *o = cJSON_AddObjectToObject(json, "profile");
    cJSON_AddNumberToObject(o, "prefill_tokens", (double)T);
    cJSON_AddNumberToObject(o, "decode_steps", (double)steps);
    cJSON_AddItemToObject(o, "families", json_rows(&family, true, steps));
    cJSON_AddItemToObject(o, "layers", json_rows(&layer, false, steps));
  } else if (!rc) {
    printf("\nprofile: one prefill of T=%lld from P=0, and decode at P=0..%lld (per token)\n\n", (long long)T,
           (long long)steps - 1);
    print_rows(&family, "kernel family", steps);
    print_rows(&layer, "layer", steps);
  }
  free(family.rows);
  free(layer.rows);
  return rc;
}
