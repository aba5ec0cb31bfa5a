/* Safetensors checkpoints: each file is mmap'ed read-only once (or read whole
 * into memory, --no-mmap) and its header
 * validated as huggingface/safetensors does. Invariant after rt_weights_open
 * succeeds: every rt_tensor's bytes [data, data+nbytes) lie inside its file's
 * mapping, the tensors of a file tile its data section exactly (no gap, no
 * overlap), and names are unique across all files. Which files a
 * path means is open_checkpoint.c's; the sharded index is safetensors_index.c's;
 * all three share safetensors_internal.h. */
#include "safetensors_internal.h"
#include "olmoc/alloc.h"
#include "olmoc/utf8.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; olmoc reads it in place"
#endif

#define ST_MAX_HEADER 100000000ull /* the reference's MAX_HEADER_SIZE */
#define ST_MAX_EXACT 9007199254740992.0 /* 2^53: larger JSON numbers lose digits */

/* ---- dtypes ---- */

static const struct {
  const char *name;
  ir_dtype dtype;
  size_t size;
} st_dtypes[] = {
    {"F32", IR_F32, 4}, {"BF16", IR_BF16, 2}, {"F16", IR_F16, 2},
    {"I32", IR_I32, 4}, {"I8", IR_I8, 1},
};

/* Real safetensors dtypes that olmoc does not read. */
static const char *const st_unsupported[] = {
    "F64", "I64", "U64", "U32", "I16", "U16", "U8", "BOOL", "F8_E4M3",
    "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64",
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

const char *rt_safetensors_dtype_name(ir_dtype t) {
  for (int i = 0; i < COUNT(st_dtypes); i++)
    if (st_dtypes[i].dtype == t) return st_dtypes[i].name;
  return "?";
}

/* ---- small helpers ---- */

char *rt_dims_str(const int64_t *dims, int rank, char *buf, size_t n) {
  size_t len = 0;
  len += (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < rank && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? "," : "", (long long)dims[i]);
  if (len < n) snprintf(buf + len, n - len, "]");
  return buf;
}

char *st_join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *s = oc_malloc(a + b + 2);
  if (!s) return NULL;
  memcpy(s, dir, a);
  s[a] = '/';
  memcpy(s + a + 1, name, b + 1);
  return s;
}

const char *st_as_count(const cJSON *j, uint64_t *out) {
  if (!cJSON_IsNumber(j)) return "is not a number";
  double d = j->valuedouble;
  if (d < 0) return "is negative";
  if (d > ST_MAX_EXACT) return "is too large";
  if ((double)(uint64_t)d != d) return "is not an integer";
  *out = (uint64_t)d;
  return NULL;
}

static int bad_count(const char *path, const char *name, const char *what, int i,
                     const cJSON *j, const char *why, oc_error *e) {
  if (!cJSON_IsNumber(j))
    return oc_fail(e, "%s: tensor '%s': %s %d is not a number", path, name, what, i);
  return oc_fail(e, "%s: tensor '%s': %s %d (%g) %s; expected a non-negative integer", path,
                 name, what, i, j->valuedouble, why);
}

/* ---- files ---- */

/* The file's n bytes in anonymous memory, read-only once filled (so it is
 * unmapped like a mapping of the file), or MAP_FAILED with errno set. */
static void *read_whole(int fd, size_t n) {
  unsigned char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return MAP_FAILED;
  for (size_t got = 0; got < n;) {
    ssize_t r = pread(fd, p + got, n - got, (off_t)got);
    if (r <= 0 && !(r < 0 && errno == EINTR)) {
      int err = r < 0 ? errno : EIO; /* shorter than fstat said: changed under us */
      munmap(p, n);
      errno = err;
      return MAP_FAILED;
    }
    got += r > 0 ? (size_t)r : 0;
  }
  mprotect(p, n, PROT_READ);
  return p;
}

int st_map(rt_weights *w, const char *path, oc_error *e) {
  assert(w->nfiles < w->files_cap);
  st_file *f = &w->files[w->nfiles];
  memset(f, 0, sizeof *f);
  if (!(f->path = oc_strdup(path))) return oc_fail(e, "%s: out of memory", path);
  w->nfiles++; /* owned by w from here on, even if mapping fails */

  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return oc_fail(e, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return oc_fail(e, "%s: cannot stat: %s", path, strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return oc_fail(e, "%s: not a regular file", path);
  }
  if (st.st_size < 8) {
    close(fd);
    return oc_fail(e, "%s: file is %lld bytes, too short for a safetensors file "
                      "(the header length alone takes 8)",
                   path, (long long)st.st_size);
  }
  if ((uint64_t)st.st_size > SIZE_MAX) {
    close(fd);
    return oc_fail(e, "%s: file too large to map", path);
  }
  void *map = w->read ? read_whole(fd, (size_t)st.st_size)
                      : mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  close(fd);
  if (map == MAP_FAILED)
    return oc_fail(e, "%s: cannot %s: %s", path, w->read ? "read it into memory" : "mmap", strerror(err));
  f->map = map;
  f->size = (size_t)st.st_size;
  return 0;
}

/* ---- one header ---- */

int st_add_tensor(rt_weights *w, rt_tensor **out, const char *path) {
  if (w->n == w->cap) {
    int cap = w->cap ? 2 * w->cap : 64;
    rt_tensor *t = oc_realloc(w->tensors, (size_t)cap * sizeof *t);
    if (!t) return -1;
    w->tensors = t;
    w->cap = cap;
  }
  rt_tensor *t = &w->tensors[w->n];
  memset(t, 0, sizeof *t);
  t->file = path;
  *out = t;
  w->n++;
  return 0;
}

/* Validates one header entry and fills t from it. data: start of the data
 * section, dsize its length. */
static int parse_entry(const char *path, const cJSON *j, const unsigned char *data,
                       uint64_t dsize, rt_tensor *t, oc_error *e) {
  const char *name = j->string;
  if (!cJSON_IsObject(j))
    return oc_fail(e, "%s: tensor '%s': entry is not a JSON object", path, name);

  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
  if (!cJSON_IsString(dt))
    return oc_fail(e, "%s: tensor '%s': \"dtype\" is %s (expected a string such as \"F32\")",
                   path, name, dt ? "not a string" : "missing");
  size_t esize = 0;
  for (int i = 0; i < COUNT(st_dtypes); i++)
    if (strcmp(dt->valuestring, st_dtypes[i].name) == 0) {
      t->dtype = st_dtypes[i].dtype;
      esize = st_dtypes[i].size;
    }
  if (!esize) {
    for (int i = 0; i < COUNT(st_unsupported); i++)
      if (strcmp(dt->valuestring, st_unsupported[i]) == 0)
        return oc_fail(e, "%s: tensor '%s': dtype %s is not supported "
                          "(olmoc reads F32, BF16, F16, I32, I8)",
                       path, name, dt->valuestring);
    return oc_fail(e, "%s: tensor '%s': unknown dtype \"%s\"", path, name, dt->valuestring);
  }

  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
  if (!cJSON_IsArray(shape))
    return oc_fail(e, "%s: tensor '%s': missing \"shape\" (an array of dims)", path, name);
  int rank = cJSON_GetArraySize(shape);
  if (rank > IR_MAX_DIMS)
    return oc_fail(e, "%s: tensor '%s': rank %d is more than olmoc supports (at most %d dims)",
                   path, name, rank, IR_MAX_DIMS);
  t->rank = rank;
  uint64_t numel = 1;
  bool overflow = false;
  const cJSON *d;
  int k = 0;
  cJSON_ArrayForEach(d, shape) {
    uint64_t v;
    const char *why = st_as_count(d, &v);
    if (why) return bad_count(path, name, "shape dim", k, d, why, e);
    t->dims[k++] = (int64_t)v;
    if (v && numel > UINT64_MAX / v) overflow = true;
    else numel *= v;
  }
  char dims[128];
  rt_dims_str(t->dims, rank, dims, sizeof dims);
  if (overflow || numel > UINT64_MAX / esize)
    return oc_fail(e, "%s: tensor '%s': shape %s of %s is too large (its byte size overflows)",
                   path, name, dims, dt->valuestring);

  const cJSON *offs = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
  if (!cJSON_IsArray(offs))
    return oc_fail(e, "%s: tensor '%s': missing \"data_offsets\" ([begin, end])", path, name);
  uint64_t be[2];
  if (cJSON_GetArraySize(offs) != 2)
    return oc_fail(e, "%s: tensor '%s': data_offsets has %d entries, expected 2 ([begin, end])",
                   path, name, cJSON_GetArraySize(offs));
  for (int i = 0; i < 2; i++) {
    const cJSON *o = cJSON_GetArrayItem(offs, i);
    const char *why = st_as_count(o, &be[i]);
    if (why) return bad_count(path, name, "data_offsets entry", i, o, why, e);
  }
  if (be[0] > be[1])
    return oc_fail(e, "%s: tensor '%s': data_offsets [%llu,%llu] end before they begin", path,
                   name, (unsigned long long)be[0], (unsigned long long)be[1]);
  if (numel * esize != be[1] - be[0])
    return oc_fail(e, "%s: tensor '%s': shape %s of %s needs %llu bytes but data_offsets give %llu",
                   path, name, dims, dt->valuestring, (unsigned long long)(numel * esize),
                   (unsigned long long)(be[1] - be[0]));
  if (be[1] > dsize)
    return oc_fail(e, "%s: tensor '%s': data_offsets [%llu,%llu] run past the end of the data "
                      "section (%llu bytes)",
                   path, name, (unsigned long long)be[0], (unsigned long long)be[1],
                   (unsigned long long)dsize);

  if (!(t->name = oc_strdup(name))) return oc_fail(e, "%s: out of memory", path);
  t->data = data + be[0];
  t->nbytes = (size_t)(be[1] - be[0]);
  return 0;
}

static int by_offset(const void *a, const void *b) {
  const rt_tensor *x = a, *y = b;
  uintptr_t px = (uintptr_t)x->data, py = (uintptr_t)y->data;
  if (px != py) return px < py ? -1 : 1;
  return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

/* The tensors of one file, sorted by offset, must cover its data section
 * exactly: each begins where the previous one ended, the last ends at the end. */
static int check_tiling(const char *path, const rt_tensor *t, int n, const unsigned char *data,
                        uint64_t dsize, oc_error *e) {
  uint64_t at = 0;
  for (int i = 0; i < n; i++) {
    uint64_t begin = (uint64_t)((const unsigned char *)t[i].data - data);
    if (begin < at)
      return oc_fail(e, "%s: tensor '%s' (data_offsets [%llu,%llu]) overlaps tensor '%s' "
                        "(which ends at %llu)",
                     path, t[i].name, (unsigned long long)begin,
                     (unsigned long long)(begin + t[i].nbytes), t[i - 1].name,
                     (unsigned long long)at);
    if (begin > at)
      return oc_fail(e, "%s: gap in the data section: bytes [%llu,%llu) before tensor '%s' "
                        "belong to no tensor",
                     path, (unsigned long long)at, (unsigned long long)begin, t[i].name);
    at = begin + t[i].nbytes;
  }
  if (at != dsize)
    return oc_fail(e, "%s: gap in the data section: its last %llu bytes (after offset %llu) "
                      "belong to no tensor",
                   path, (unsigned long long)(dsize - at), (unsigned long long)at);
  return 0;
}

static int check_metadata(const char *path, const cJSON *m, oc_error *e) {
  if (!cJSON_IsObject(m))
    return oc_fail(e, "%s: \"__metadata__\" is not a JSON object of strings", path);
  const cJSON *v;
  cJSON_ArrayForEach(v, m) if (!cJSON_IsString(v)) return oc_fail(
      e, "%s: \"__metadata__\" entry '%s' is not a string", path, v->string);
  return 0;
}

int st_parse(rt_weights *w, int file, oc_error *e) {
  const st_file *f = &w->files[file];
  const char *path = f->path;
  const unsigned char *p = f->map;
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
  if (hlen > ST_MAX_HEADER) /* not a length: its bytes are the file's, not to be shown */
    return oc_fail(e, "%s: not a safetensors file (its first 8 bytes are no header length within the "
                      "%llu-byte limit)",
                   path, ST_MAX_HEADER);
  if (hlen > f->size - 8)
    return oc_fail(e, "%s: header length %llu runs past the end of the file (%zu bytes)", path,
                   (unsigned long long)hlen, f->size);
  const unsigned char *h = p + 8, *data = p + 8 + hlen;
  uint64_t dsize = f->size - 8 - hlen;
  if (hlen == 0 || h[0] != '{')
    return oc_fail(e, "%s: header is not a JSON object (it must start with '{')", path);
  size_t bad = oc_utf8_valid(h, (size_t)hlen);
  if (bad != hlen)
    return oc_fail(e, "%s: header is not valid UTF-8 (at byte %zu of the header)", path, bad);

  /* A NUL-terminated copy: cJSON then never reads past the header. */
  char *text = oc_malloc((size_t)hlen + 1);
  if (!text) return oc_fail(e, "%s: out of memory for a %llu-byte header", path,
                            (unsigned long long)hlen);
  memcpy(text, h, (size_t)hlen);
  text[hlen] = 0;
  const char *end = NULL;
  unsigned long failures = oc_alloc_failures();
  cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &end, 0);
  if (!root && oc_alloc_failures() != failures) {
    free(text);
    return oc_fail(e, "%s: out of memory parsing a %llu-byte header", path,
                   (unsigned long long)hlen);
  }
  if (!root) {
    size_t at = end ? (size_t)(end - text) : 0;
    free(text);
    return oc_fail(e, "%s: header is not valid JSON (error near byte %zu of the header)", path,
                   at);
  }
  for (size_t i = (size_t)(end - text); i < hlen; i++)
    if (!strchr(" \t\r\n", text[i]) || !text[i]) {
      cJSON_Delete(root);
      free(text);
      return oc_fail(e, "%s: header has bytes after its JSON object (at byte %zu of the header)",
                     path, i);
    }
  free(text);

  int rc = 0, first = w->n;
  if (!cJSON_IsObject(root)) {
    rc = oc_fail(e, "%s: header is not a JSON object", path);
    goto out;
  }
  const cJSON *j;
  cJSON_ArrayForEach(j, root) {
    if (strcmp(j->string, "__metadata__") == 0) {
      if ((rc = check_metadata(path, j, e))) goto out;
      continue;
    }
    rt_tensor *t;
    if (st_add_tensor(w, &t, path)) {
      rc = oc_fail(e, "%s: out of memory", path);
      goto out;
    }
    if ((rc = parse_entry(path, j, data, dsize, t, e))) goto out;
  }
  rt_tensor *mine = w->n > first ? w->tensors + first : NULL; /* this file's tensors */
  if (mine) qsort(mine, (size_t)(w->n - first), sizeof *mine, by_offset);
  rc = check_tiling(path, mine, w->n - first, data, dsize, e);
out:
  cJSON_Delete(root);
  return rc;
}

/* ---- the set of files ---- */

static int by_name(const void *a, const void *b) {
  return strcmp((*(const rt_tensor *const *)a)->name, (*(const rt_tensor *const *)b)->name);
}

int st_index_names(rt_weights *w, oc_error *e) {
  if (w->n == 0) return 0;
  w->by_name = oc_malloc((size_t)w->n * sizeof *w->by_name);
  if (!w->by_name) return oc_fail(e, "%s: out of memory", w->path);
  for (int i = 0; i < w->n; i++) w->by_name[i] = &w->tensors[i];
  qsort(w->by_name, (size_t)w->n, sizeof *w->by_name, by_name);
  for (int i = 1; i < w->n; i++) {
    const rt_tensor *a = w->by_name[i - 1], *b = w->by_name[i];
    if (strcmp(a->name, b->name) != 0) continue;
    if (a->file == b->file)
      return oc_fail(e, "%s: tensor '%s' appears twice in the header", a->file, a->name);
    return oc_fail(e, "%s: duplicate tensor '%s': it is in both %s and %s", w->path, a->name,
                   a->file, b->file);
  }
  return 0;
}

void rt_weights_close(rt_weights *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) free(w->tensors[i].name);
  for (int i = 0; i < w->nfiles; i++) {
    if (w->files[i].map) munmap((void *)w->files[i].map, w->files[i].size);
    free(w->files[i].path);
  }
  rt_pack_close(w->pack);
  free(w->tensors);
  free(w->by_name);
  free(w->files);
  free(w->path);
  free(w);
}

int rt_weights_count(const rt_weights *w) { return w ? w->n : 0; }

const char *rt_weights_path(const rt_weights *w) { return w->path; }

rt_quantized rt_weights_quantized(const rt_weights *w) { return w->pack ? w->quantized : (rt_quantized){IR_F32, 0}; }

const rt_tensor *rt_weights_at(const rt_weights *w, int i) {
  return w && i >= 0 && i < w->n ? &w->tensors[i] : NULL;
}

const rt_tensor *rt_weights_find(const rt_weights *w, const char *name) {
  if (!w || w->n == 0 || !name) return NULL;
  rt_tensor key = {.name = (char *)name};
  const rt_tensor *kp = &key;
  rt_tensor *const *hit = bsearch(&kp, w->by_name, (size_t)w->n, sizeof *w->by_name, by_name);
  return hit ? *hit : NULL;
}

/* ---- against a model ---- */

int rt_weights_lookup(void *ctx, const char *name, ir_tensor *out, oc_error *e) {
  const rt_weights *w = ctx;
  const rt_tensor *t = rt_weights_find(w, name);
  if (!t) return oc_fail(e, "%s: tensor '%s' is missing", w->path, name ? name : "(null)");
  out->dtype = t->dtype;
  out->rank = t->rank;
  memset(out->dims, 0, sizeof out->dims);
  memcpy(out->dims, t->dims, (size_t)t->rank * sizeof t->dims[0]);
  out->data = t->data;
  return 0;
}
