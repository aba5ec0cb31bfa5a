/* generation_config.json -> rt_sampling, read as transformers' GenerationConfig
 * reads it: a key that is absent takes HF's default (do_sample false, so
 * greedy; temperature 1, top_k 50, top_p 1, min_p off, repetition_penalty 1),
 * a key set to null switches its step off, a wrong type or range is an error
 * "<file>: key '<k>': expected ..., found ...". The seed is never touched. */
#include "olmoc/alloc.h"
#include "olmoc/file.h"
#include "olmoc/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define FILE_NAME "generation_config.json"
#define MAX_FILE_BYTES (16 << 20) /* a generation_config.json is a few hundred bytes */
#define HF_TOP_K 50               /* GenerationConfig's default top_k */

/* "1.5", "\"0.9\" (a string)", "true (a boolean)", ... for messages. */
static const char *describe(const cJSON *v, char *buf, size_t n) {
  if (cJSON_IsNumber(v)) { /* as short as round-trips: 0.9, 1e-60 */
    snprintf(buf, n, "%.15g", v->valuedouble);
    if (strtod(buf, NULL) != v->valuedouble) snprintf(buf, n, "%.17g", v->valuedouble);
    return buf;
  }
  if (cJSON_IsBool(v)) {
    snprintf(buf, n, "%s (a boolean)", cJSON_IsTrue(v) ? "true" : "false");
    return buf;
  }
  const char *kind = cJSON_IsString(v)  ? "a string"
                     : cJSON_IsArray(v) ? "an array"
                     : cJSON_IsNull(v)  ? "null"
                                        : "an object";
  char *text = cJSON_PrintUnformatted(v);
  if (text && strlen(text) <= 40) snprintf(buf, n, "%s (%s)", text, kind);
  else snprintf(buf, n, "%s", kind);
  cJSON_free(text);
  return buf;
}

/* A number in [lo, hi] (lo excluded when lo_open) for key, or dflt when the
 * key is absent and off when it is null. */
static int read_number(const cJSON *root, const char *key, double lo, bool lo_open, double hi,
                       double dflt, double off, double *out, oc_error *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  char found[96], range[64];
  if (!v) {
    *out = dflt;
    return 0;
  }
  if (cJSON_IsNull(v)) {
    *out = off;
    return 0;
  }
  double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
  float f = (float)d; /* the value must survive the trip to float */
  bool ok = isfinite(f) && (lo_open ? f > lo : d >= lo) && d <= hi;
  if (ok) {
    *out = d;
    return 0;
  }
  if (isinf(hi)) snprintf(range, sizeof range, "a number %s %.10g", lo_open ? ">" : ">=", lo);
  else snprintf(range, sizeof range, "a number in %c%.10g, %.10g]", lo_open ? '(' : '[', lo, hi);
  return oc_fail(e, "key '%s': expected %s, found %s", key, range,
                 describe(v, found, sizeof found));
}

static int parse(const cJSON *root, rt_sampling *s, oc_error *e) {
  char found[96];
  if (!cJSON_IsObject(root))
    return oc_fail(e, "expected a JSON object, found %s", describe(root, found, sizeof found));

  const cJSON *ds = cJSON_GetObjectItemCaseSensitive(root, "do_sample");
  if (ds && !cJSON_IsBool(ds) && !cJSON_IsNull(ds))
    return oc_fail(e, "key 'do_sample': expected true or false, found %s",
                   describe(ds, found, sizeof found));
  bool do_sample = cJSON_IsTrue(ds);

  double temperature, top_k, top_p, min_p, penalty;
  if (read_number(root, "temperature", 0, false, INFINITY, 1, 1, &temperature, e) ||
      read_number(root, "top_k", 0, false, INT32_MAX, HF_TOP_K, 0, &top_k, e) ||
      read_number(root, "top_p", 0, false, 1, 1, 1, &top_p, e) ||
      read_number(root, "min_p", 0, false, 1, 0, 0, &min_p, e) ||
      read_number(root, "repetition_penalty", 0, true, INFINITY, 1, 1, &penalty, e))
    return -1;
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "top_k");
  if (top_k != floor(top_k))
    return oc_fail(e, "key 'top_k': expected an integer >= 0, found %s",
                   describe(k, found, sizeof found));

  s->temperature = do_sample ? (float)temperature : 0.0f;
  s->top_k = (int)top_k;
  s->top_p = (float)top_p;
  s->min_p = (float)min_p;
  s->repetition_penalty = (float)penalty;
  return 0;
}

int rt_sampling_load(const char *path, rt_sampling *s, bool *found, oc_error *e) {
  *found = false;
  oc_file f;
  if (oc_file_read(&f, path, FILE_NAME, MAX_FILE_BYTES, true, e))
    return -1;
  if (!f.data) { /* no file: the caller's settings stand */
    oc_file_free(&f);
    return 0;
  }
  *found = true;
  const char *end = NULL;
  unsigned long failures = oc_alloc_failures();
  cJSON *root = cJSON_ParseWithOpts(f.data, &end, 1); /* 1: nothing may follow the object */
  int rc;
  if (!root && oc_alloc_failures() != failures) {
    rc = oc_fail(e, "%s: out of memory parsing the JSON", f.path);
  } else if (!root) {
    char where[96];
    rc = oc_fail(e, "%s: malformed JSON at %s", f.path, oc_text_where(f.data, f.len, end, where, sizeof where));
  } else {
    rt_sampling t = *s;
    rc = parse(root, &t, e);
    if (rc) oc_wrap(e, "%s", f.path);
    else *s = t;
  }
  cJSON_Delete(root);
  oc_file_free(&f);
  return rc;
}
