/* generation_config.json -> rt_sampling, read as transformers' GenerationConfig
 * reads it: a key that is absent takes HF's default (do_sample false, so
 * greedy; temperature 1, top_k 50, top_p 1, min_p off, repetition_penalty 1),
 * a key set to null switches its step off, a wrong type or range is an error
 * "<file>: key '<k>': expected ..., found ...". The seed is never touched. */
#include "olmoc/sampler.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#define FILE_NAME "generation_config.json"
#define MAX_FILE_BYTES (16 << 20) /* a generation_config.json is a few hundred bytes */
#define HF_TOP_K 50               /* GenerationConfig's default top_k */

/* The file's text, or *text = NULL when it does not exist. */
static int read_optional(const char *path, char **text, oc_error *e) {
  *text = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return 0;
    return oc_fail(e, "%s: cannot open: %s", path, strerror(errno));
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE_BYTES) {
    fclose(f);
    return oc_fail(e, "%s: not a regular file of at most %d bytes", path, MAX_FILE_BYTES);
  }
  char *buf = malloc((size_t)st.st_size + 1);
  size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
  int bad = !buf || ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return oc_fail(e, "%s: cannot read", path);
  }
  buf[n] = 0;
  *text = buf;
  return 0;
}

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
  struct stat st;
  char *file = NULL, *text = NULL;
  *found = false;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    size_t n = strlen(path) + sizeof "/" FILE_NAME;
    if (!(file = malloc(n))) return oc_fail(e, "%s: out of memory", path);
    snprintf(file, n, "%s/" FILE_NAME, path);
  }
  const char *name = file ? file : path;
  if (read_optional(name, &text, e)) {
    free(file);
    return -1;
  }
  if (!text) { /* no file: the caller's settings stand */
    free(file);
    return 0;
  }

  int rc = 0;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(text, &end, 1); /* 1: nothing may follow the object */
  if (!root) {
    int line = 1, col = 1;
    for (const char *p = text; end && p < end && *p; p++, col++)
      if (*p == '\n') line++, col = 0;
    rc = oc_fail(e, "%s: malformed JSON at line %d, column %d", name, line, col);
  } else {
    rt_sampling t = *s;
    rc = parse(root, &t, e);
    if (rc) oc_wrap(e, "%s", name);
    else *s = t;
  }
  *found = true;
  cJSON_Delete(root);
  free(text);
  free(file);
  return rc;
}
