/* rt_weights_open: which files a path means. A directory is its model.olmoc
 * (a quantized checkpoint) if there is one, else its
 * model.safetensors.index.json if there is one, else its model.safetensors; a
 * .json file is an index, a .olmoc file a quantized checkpoint; anything else
 * is one safetensors file. Invariant: a
 * failed open leaves nothing mapped or allocated (rt_weights_close undoes any
 * part). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "olmoc/alloc.h"
#include "safetensors_internal.h"

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* lstat: a symlink that loops or dangles is there, and opening it says why
 * (stat said "no model.safetensors" of a loop). */
static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int open_single(rt_weights *w, const char *path, oc_error *e) {
  if (!(w->files = oc_calloc(1, sizeof *w->files))) return oc_fail(e, "%s: out of memory", path);
  w->files_cap = 1;
  if (st_map(w, path, e) || st_parse(w, 0, e)) return -1;
  return st_index_names(w, e);
}

static int open_path(rt_weights *w, const char *path, oc_error *e) {
  if (!is_dir(path)) {
    if (!exists(path)) return oc_fail(e, "%s: cannot open: %s", path, strerror(ENOENT));
    return ends_with(path, ".json")    ? st_open_index(w, path, e)
           : ends_with(path, ".olmoc") ? st_open_quantized(w, path, e)
                                       : open_single(w, path, e);
  }
  char *quantized = st_join(path, RT_QUANTIZED_FILE);
  char *index = st_join(path, "model.safetensors.index.json");
  char *single = st_join(path, "model.safetensors");
  int rc;
  if (!quantized || !index || !single) rc = oc_fail(e, "%s: out of memory", path);
  else if (exists(quantized)) rc = st_open_quantized(w, quantized, e);
  else if (exists(index)) rc = st_open_index(w, index, e);
  else if (exists(single)) rc = open_single(w, single, e);
  else
    rc = oc_fail(e, "%s: no model.safetensors.index.json, model.safetensors or " RT_QUANTIZED_FILE " in this directory",
                 path);
  free(quantized);
  free(index);
  free(single);
  return rc;
}

int rt_weights_open(const char *path, rt_weights **out, oc_error *e) {
  return rt_weights_open_read(path, false, out, e);
}

int rt_weights_open_read(const char *path, bool read, rt_weights **out, oc_error *e) {
  *out = NULL;
  rt_weights *w = oc_calloc(1, sizeof *w);
  if (!w || !(w->path = oc_strdup(path))) {
    free(w);
    return oc_fail(e, "%s: out of memory", path);
  }
  w->read = read;
  if (open_path(w, path, e)) {
    rt_weights_close(w);
    return -1;
  }
  *out = w;
  return 0;
}
