/* fuzz_safetensors: safetensors headers and sharded indexes
 * (runtime/weights/), which read files by path: the input is written into a
 * private temporary directory and opened from there.
 * Without the separator SEP the input is model.safetensors; with it, the part
 * before the first SEP is model.safetensors.index.json and the parts after
 * are shards model-1.safetensors, model-2.safetensors, ... (at most 8). An
 * index holding ".." or a \u00XX escape anywhere is skipped, so that no shard
 * path leaves the directory. Checks: a refused checkpoint has a message; an accepted one
 * holds tensors whose bytes (all read) lie in their files, found by name. */
#include "fuzz.h"

#include <stdbool.h>
#include <unistd.h>

#include "olmoc/weights.h"

#define SEP "\n--shard--\n"
#define MAX_SHARDS 8

static char dir[64]; /* the temporary directory, once made */
static volatile unsigned sink;

static void path_of(char *buf, size_t n, int part) {
  if (part == 0) snprintf(buf, n, "%s/model.safetensors.index.json", dir);
  else if (part < 0) snprintf(buf, n, "%s/model.safetensors", dir);
  else snprintf(buf, n, "%s/model-%d.safetensors", dir, part);
}

static void remove_all(void) {
  char path[128];
  for (int part = -1; part <= MAX_SHARDS; part++) {
    path_of(path, sizeof path, part);
    unlink(path);
  }
}

static void remove_dir(void) {
  remove_all();
  rmdir(dir);
}

static void write_part(int part, const uint8_t *data, size_t n) {
  char path[128];
  path_of(path, sizeof path, part);
  FILE *f = fopen(path, "wb");
  FUZZ_CHECK(f, "cannot write %s", path);
  FUZZ_CHECK(fwrite(data, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
}

static const uint8_t *find_sep(const uint8_t *p, const uint8_t *end) {
  size_t k = strlen(SEP);
  for (; end - p >= (ptrdiff_t)k; p++)
    if (memcmp(p, SEP, k) == 0) return p;
  return NULL;
}

/* Writes the files of this input; false to skip it. */
static bool write_files(const uint8_t *data, size_t size) {
  const uint8_t *end = data + size, *sep = size ? find_sep(data, end) : NULL;
  if (!sep) {
    write_part(-1, data, size);
    return true;
  }
  size_t index_len = (size_t)(sep - data);
  for (size_t i = 0; i + 1 < index_len; i++)
    if ((data[i] == '.' && data[i + 1] == '.') ||
        (data[i] == '\\' && index_len - i >= 4 && memcmp(data + i + 1, "u00", 3) == 0))
      return false;
  write_part(0, data, index_len);
  const uint8_t *p = sep + strlen(SEP);
  for (int part = 1; part <= MAX_SHARDS; part++) {
    const uint8_t *next = find_sep(p, end);
    write_part(part, p, (size_t)((next ? next : end) - p));
    if (!next) break;
    p = next + strlen(SEP);
  }
  return true;
}

int fuzz_safetensors(const uint8_t *data, size_t size) {
  fuzz_make_dir(dir, sizeof dir, remove_dir);
  remove_all();
  if (!write_files(data, size)) return 0;

  rt_weights *w = NULL;
  oc_error e = {{0}};
  if (rt_weights_open(dir, &w, &e) != 0) {
    FUZZ_CHECK(!w && e.msg[0], "rt_weights_open failed without a message");
    return 0;
  }
  unsigned sum = 0;
  for (int i = 0; i < rt_weights_count(w); i++) {
    const rt_tensor *t = rt_weights_at(w, i);
    FUZZ_CHECK(t && rt_weights_find(w, t->name) == t, "tensor %d is not found by its name", i);
    FUZZ_CHECK(t->nbytes <= size, "tensor '%s' has %zu bytes, more than the input", t->name,
               t->nbytes);
    const unsigned char *b = t->data;
    for (size_t k = 0; k < t->nbytes; k++) sum += b[k]; /* faults if outside the mapping */
    ir_tensor x;
    FUZZ_CHECK(rt_weights_lookup(w, t->name, &x, &e) == 0 && x.data == t->data, "%s", e.msg);
  }
  sink = sum; /* keeps the reads */
  rt_weights_close(w);
  return 0;
}

FUZZ_MAIN(fuzz_safetensors)
