/* Sharded checkpoints: model.safetensors.index.json's "weight_map" maps each
 * tensor name to the shard file (relative to the index's directory) holding
 * it. Each shard is mapped once. Invariant on success: the index and the
 * shards agree exactly, every listed tensor is in the shard the index names
 * and every tensor of a shard is listed for that shard. */
#include "safetensors_internal.h"
#include "olmoc/alloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_INDEX 100000000 /* bytes; a 32B model's index is ~60 KB */

typedef struct ix_entry {
  const char *name; /* tensor name, inside the parsed index */
  int shard;        /* into the list of distinct shard names */
  bool seen;        /* found in that shard */
} ix_entry;

static int read_text(const char *path, char **out, size_t *len, oc_error *e) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return oc_fail(e, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  char *buf = NULL;
  size_t n = 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > ST_MAX_INDEX) {
    close(fd);
    return oc_fail(e, "%s: not a regular file of at most %d bytes", path, ST_MAX_INDEX);
  }
  if (!(buf = oc_malloc((size_t)st.st_size + 1))) {
    close(fd);
    return oc_fail(e, "%s: out of memory", path);
  }
  while (n < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      int err = r < 0 ? errno : EIO;
      close(fd);
      free(buf);
      return oc_fail(e, "%s: cannot read: %s", path, strerror(err));
    }
    n += (size_t)r;
  }
  close(fd);
  buf[n] = 0;
  *out = buf;
  *len = n;
  return 0;
}

static int by_entry_name(const void *a, const void *b) {
  return strcmp(((const ix_entry *)a)->name, ((const ix_entry *)b)->name);
}

typedef struct ix_file {
  const char *file; /* an entry's shard file name, inside the parsed index */
  int at;           /* that entry's place in weight_map */
} ix_file;

static int by_file_then_place(const void *a, const void *b) {
  const ix_file *x = a, *y = b;
  int c = strcmp(x->file, y->file);
  return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* Numbers the distinct files of f[0, n) (one per entry, reordered here) in
 * order of first appearance: entries, in weight_map order, get their shard
 * numbers and shards[0, *nshards) the names. Sorting, not a search per entry,
 * so that an index naming many shards costs O(n log n), not O(n * shards). */
static void number_shards(ix_file *f, int n, ix_entry *entries, const char **shards,
                          int *nshards) {
  qsort(f, (size_t)n, sizeof *f, by_file_then_place);
  for (int i = 0; i < n; i++) { /* each entry points at its file's first entry */
    bool same = i > 0 && strcmp(f[i].file, f[i - 1].file) == 0;
    entries[f[i].at].shard = same ? entries[f[i - 1].at].shard : f[i].at;
    if (!same) shards[f[i].at] = f[i].file;
  }
  *nshards = 0;
  for (int i = 0; i < n; i++) { /* first appearances get numbers, in order */
    int first = entries[i].shard;
    if (first == i) {
      shards[*nshards] = shards[i];
      entries[i].shard = (*nshards)++;
    } else {
      entries[i].shard = entries[first].shard;
    }
  }
}

/* Parses the weight_map into entries (sorted by name) and distinct shard
 * names (in order of first appearance). */
static int read_map(const char *path, const cJSON *root, ix_entry **entries, int *n,
                    const char ***shards, int *nshards, oc_error *e) {
  const cJSON *wm = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "weight_map")
                                         : NULL;
  if (!cJSON_IsObject(wm))
    return oc_fail(e, "%s: index has no \"weight_map\" object (tensor name -> shard file)", path);
  *n = cJSON_GetArraySize(wm);
  if (*n == 0) return oc_fail(e, "%s: \"weight_map\" lists no tensors", path);
  *entries = oc_calloc((size_t)*n, sizeof **entries);
  *shards = oc_calloc((size_t)*n, sizeof **shards);
  ix_file *files = oc_calloc((size_t)*n, sizeof *files);
  if (!*entries || !*shards || !files) {
    free(files);
    return oc_fail(e, "%s: out of memory", path);
  }
  int i = 0;
  const cJSON *j;
  cJSON_ArrayForEach(j, wm) {
    const char *file = cJSON_IsString(j) ? j->valuestring : NULL;
    /* a plain name in the index's directory: "../other/model.safetensors" or
     * "/etc/passwd" would read files the checkpoint does not hold */
    if (!file || !file[0] || strchr(file, '/') || !strcmp(file, ".") || !strcmp(file, "..")) {
      free(files);
      return oc_fail(e, "%s: \"weight_map\" entry for tensor '%s' is not a shard file name in the index's "
                        "directory (no '/', not '..')",
                     path, j->string);
    }
    files[i] = (ix_file){file, i};
    (*entries)[i++] = (ix_entry){.name = j->string};
  }
  number_shards(files, *n, *entries, *shards, nshards);
  free(files);
  qsort(*entries, (size_t)*n, sizeof **entries, by_entry_name);
  for (i = 1; i < *n; i++)
    if (strcmp((*entries)[i - 1].name, (*entries)[i].name) == 0)
      return oc_fail(e, "%s: \"weight_map\" lists tensor '%s' twice", path, (*entries)[i].name);
  return 0;
}

/* Maps and parses each shard; starts[k] is the first tensor of shard k. */
static int load_shards(rt_weights *w, const char *path, const char **shards, int nshards,
                       int *starts, oc_error *e) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? oc_strndup(path, (size_t)(slash - path + (slash == path))) : NULL;
  if (slash && !dir) return oc_fail(e, "%s: out of memory", path);
  if (!(w->files = oc_calloc((size_t)nshards, sizeof *w->files))) {
    free(dir);
    return oc_fail(e, "%s: out of memory", path);
  }
  w->files_cap = nshards;
  int rc = 0;
  for (int k = 0; k < nshards && !rc; k++) {
    char *shard = dir ? st_join(strcmp(dir, "/") ? dir : "", shards[k]) : oc_strdup(shards[k]);
    if (!shard) {
      rc = oc_fail(e, "%s: out of memory", path);
      break;
    }
    starts[k] = w->n;
    if ((rc = st_map(w, shard, e)) && e) {
      size_t len = strlen(e->msg);
      snprintf(e->msg + len, sizeof e->msg - len, " (a shard listed in %s)", path);
    }
    if (!rc) rc = st_parse(w, k, e);
    free(shard);
  }
  starts[nshards] = w->n;
  free(dir);
  return rc;
}

/* The index and the shards must agree on where every tensor is. */
static int cross_check(const rt_weights *w, const char *path, ix_entry *entries, int n,
                       const int *starts, int nshards, oc_error *e) {
  for (int k = 0; k < nshards; k++)
    for (int i = starts[k]; i < starts[k + 1]; i++) {
      const rt_tensor *t = &w->tensors[i];
      ix_entry key = {.name = t->name};
      ix_entry *x = bsearch(&key, entries, (size_t)n, sizeof *entries, by_entry_name);
      if (!x)
        return oc_fail(e, "%s: tensor '%s' is in this shard but not in the index %s", t->file,
                       t->name, path);
      if (x->shard != k)
        return oc_fail(e, "%s: the index maps tensor '%s' to %s, but it is in %s", path,
                       t->name, w->files[x->shard].path, t->file);
      x->seen = true;
    }
  for (int i = 0; i < n; i++)
    if (!entries[i].seen)
      return oc_fail(e, "%s: tensor '%s' is missing from this shard (the index %s maps it here)",
                     w->files[entries[i].shard].path, entries[i].name, path);
  return 0;
}

int st_open_index(rt_weights *w, const char *path, oc_error *e) {
  char *text = NULL;
  size_t len = 0;
  if (read_text(path, &text, &len, e)) return -1;
  const char *end = NULL;
  unsigned long failures = oc_alloc_failures();
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!root && oc_alloc_failures() != failures) {
    free(text);
    return oc_fail(e, "%s: out of memory parsing the index", path);
  }
  if (!root) {
    size_t at = end ? (size_t)(end - text) : 0;
    free(text);
    return oc_fail(e, "%s: index is not valid JSON (error near byte %zu)", path, at);
  }
  size_t at = (size_t)(end - text);
  while (at < len && text[at] && strchr(" \t\r\n", text[at])) at++;
  free(text);
  if (at != len) {
    cJSON_Delete(root);
    return oc_fail(e, "%s: index has bytes after its JSON object (at byte %zu)", path, at);
  }

  ix_entry *entries = NULL;
  const char **shards = NULL;
  int *starts = NULL, n = 0, nshards = 0;
  int rc = read_map(path, root, &entries, &n, &shards, &nshards, e);
  if (!rc && !(starts = oc_calloc((size_t)nshards + 1, sizeof *starts)))
    rc = oc_fail(e, "%s: out of memory", path);
  if (!rc) rc = load_shards(w, path, shards, nshards, starts, e);
  if (!rc) rc = st_index_names(w, e);
  if (!rc) rc = cross_check(w, path, entries, n, starts, nshards, e);
  free(starts);
  free(entries);
  free(shards);
  cJSON_Delete(root);
  return rc;
}
