/* Writing a packed file (olmoc/pack.h) front to back with plain writes on one
 * descriptor: sections are appended as they come (a weight streamed in
 * pieces, never whole in memory), the table after the last, the header last
 * of all at byte 0, then the temporary (olmoc/output.h) is synced and put
 * in place, or handed to the caller to put in place with other outputs.
 * Memory the program may point at is known as regions: noted ones are
 * sections already, offered ones (checkpoint tensors, staged conversions in
 * a deleted scratch file) become sections when a pointer into them is first
 * resolved. A scratch pack (the JIT's packed weights when they do not fit in
 * memory) is written the same way into an unnamed file and never finished.
 * Invariant: `at` is the file's length so far and the start of the next
 * write; every section starts at a multiple of RT_PACK_ALIGN. */
#define _GNU_SOURCE /* copy_file_range */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "olmoc/alloc.h"
#include "olmoc/output.h"
#include "olmoc/pack.h"

#define PAGE 4096u
#define PIECE ((size_t)4 << 20) /* bytes written or staged at a time */

typedef struct note {
  const unsigned char *base;
  size_t n;
  int index;  /* its section, or -1 for an offered region not written yet */
  char *name; /* an offered region's */
} note;

struct rt_pack_writer {
  rt_output out; /* the temporary and its final name */
  int fd;
  uint64_t at;
  rt_pack_header header;
  rt_pack_section *table; /* [n] of cap */
  int n, cap;
  bool in_section;
  rt_checksum sum;
  note *notes; /* [n_notes] of cap_notes */
  int n_notes, cap_notes;
  void **maps; /* [n_maps]: what rt_pack_map and rt_pack_stage mapped */
  size_t *map_len;
  int n_maps;
  int scratch; /* rt_pack_stage's deleted file, or -1 */
  uint64_t scratch_at;
};

static int put_all(rt_pack_writer *w, const void *data, size_t n, oc_error *e) {
  const unsigned char *p = data;
  while (n) {
    ssize_t k = write(w->fd, p, n > (1u << 30) ? 1u << 30 : n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return oc_fail(e, "%s: cannot write: %s", w->out.path, k < 0 ? strerror(errno) : "no progress");
    p += k, n -= (size_t)k, w->at += (uint64_t)k;
  }
  return 0;
}

static int pad_to(rt_pack_writer *w, uint64_t align, oc_error *e) {
  static const unsigned char zeros[RT_PACK_ALIGN];
  uint64_t n = (align - w->at % align) % align;
  return put_all(w, zeros, (size_t)n, e);
}

/* w's header so far (the table's fields come at rt_pack_finish) and its
 * block at byte 0, zero until then; on failure w is freed. */
static int start(rt_pack_writer *w, const rt_pack_target *t, oc_error *e) {
  w->fd = fileno(w->out.f);
  w->scratch = -1;
  rt_pack_header *h = &w->header;
  memcpy(h->magic, RT_PACK_MAGIC, sizeof h->magic);
  h->version = RT_PACK_VERSION;
  h->header_bytes = RT_PACK_HEADER_BYTES;
  h->build_id = t->build_id;
  h->dtype = (uint32_t)t->dtype;
  snprintf(h->cpu, sizeof h->cpu, "%s", t->cpu);
  snprintf(h->features, sizeof h->features, "%s", t->features);
  static const unsigned char zeros[RT_PACK_HEADER_BYTES];
  if (put_all(w, zeros, sizeof zeros, e)) {
    rt_pack_abandon(w);
    return -1;
  }
  return 0;
}

int rt_pack_create(const char *path, const rt_pack_target *t, rt_pack_writer **out, oc_error *e) {
  *out = NULL;
  rt_pack_writer *w = oc_calloc(1, sizeof *w);
  if (!w)
    return oc_fail(e, "%s: out of memory", path);
  if (strlen(t->cpu) >= sizeof w->header.cpu || strlen(t->features) >= sizeof w->header.features) {
    free(w);
    return oc_fail(e, "%s: the target's CPU name or feature string is too long for the header", path);
  }
  if (rt_output_open(&w->out, path, e)) {
    free(w);
    return -1;
  }
  if (!rt_output_replaces(&w->out)) { /* stdout, a device or a link: no offsets to seek to, nothing to map */
    rt_output_abandon(&w->out);
    free(w);
    return oc_fail(e, "%s: a packed file must be a regular file", path);
  }
  if (start(w, t, e))
    return -1;
  *out = w;
  return 0;
}

/* Room for a scratch pack of `bytes` in dir, on a file system whose pages can
 * be evicted. The header, padding and table take far less than the slack. */
static int check_scratch_dir(const char *dir, uint64_t bytes, oc_error *e) {
  struct statvfs vfs;
  struct statfs fs;
  if (statvfs(dir, &vfs) || statfs(dir, &fs))
    return oc_fail(e, "%s: cannot hold the packed weights' file: %s", dir, strerror(errno));
  if (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC)
    return oc_fail(e, "%s: a file system in memory (tmpfs or ramfs), where packed weights would take "
                   "the memory they are meant to spare: choose a directory on disk", dir);
  uint64_t room = (uint64_t)vfs.f_bavail * vfs.f_frsize, need = bytes + ((uint64_t)64 << 20);
  if (room < need)
    return oc_fail(e, "%s: %.2f GB free, but the packed weights need %.2f GB: free some space or "
                   "choose another directory", dir, (double)room / 1e9, (double)need / 1e9);
  return 0;
}

/* A file in dir that no name points to: O_TMPFILE where the file system has
 * it, else a fresh name unlinked at once. -1 with errno set on failure. */
static int unnamed_file(const char *dir) {
  int fd = rt_unnamed_file(dir, 0600);
  if (fd >= 0 || errno != EOPNOTSUPP)
    return fd;
  size_t len = strlen(dir) + sizeof "/olmoc-pack.XXXXXX";
  char *path = oc_malloc(len);
  if (!path) {
    errno = ENOMEM;
    return -1;
  }
  snprintf(path, len, "%s/olmoc-pack.XXXXXX", dir);
  fd = mkstemp(path);
  if (fd >= 0)
    unlink(path);
  int err = errno;
  free(path);
  errno = err;
  return fd;
}

int rt_pack_create_scratch(const char *dir, uint64_t bytes, rt_pack_writer **out, oc_error *e) {
  *out = NULL;
  if (check_scratch_dir(dir, bytes, e))
    return -1;
  rt_pack_writer *w = oc_calloc(1, sizeof *w);
  if (!w || !(w->out.path = oc_strdup(dir))) {
    free(w);
    return oc_fail(e, "%s: out of memory", dir);
  }
  int fd = unnamed_file(dir);
  int err = errno;
  if (fd < 0 || !(w->out.f = fdopen(fd, "w+"))) {
    err = fd < 0 ? err : errno;
    if (fd >= 0)
      close(fd);
    free(w->out.path);
    free(w);
    return oc_fail(e, "%s: cannot create the packed weights' file there: %s", dir, strerror(err));
  }
  if (start(w, &(rt_pack_target){"", "", 0, 0}, e))
    return -1;
  *out = w;
  return 0;
}

int rt_pack_begin(rt_pack_writer *w, rt_pack_kind kind, const char *name, int *index, oc_error *e) {
  if (w->in_section)
    return oc_fail(e, "%s: section %s begun inside another", w->out.path, name);
  if (w->n == w->cap) {
    int cap = w->cap ? 2 * w->cap : 256;
    rt_pack_section *t = oc_realloc(w->table, (size_t)cap * sizeof *t);
    if (!t)
      return oc_fail(e, "%s: out of memory for the section table", w->out.path);
    w->table = t, w->cap = cap;
  }
  if (pad_to(w, RT_PACK_ALIGN, e))
    return -1;
  rt_pack_section *s = &w->table[w->n];
  memset(s, 0, sizeof *s);
  s->kind = (uint32_t)kind;
  s->offset = w->at;
  snprintf(s->name, sizeof s->name, "%s", name);
  rt_checksum_init(&w->sum);
  w->in_section = true;
  if (index)
    *index = w->n;
  return 0;
}

int rt_pack_write(rt_pack_writer *w, const void *data, size_t n, oc_error *e) {
  rt_checksum_update(&w->sum, data, n);
  return put_all(w, data, n, e);
}

int rt_pack_end(rt_pack_writer *w, oc_error *e) {
  (void)e;
  rt_pack_section *s = &w->table[w->n++];
  s->bytes = w->at - s->offset;
  s->checksum = rt_checksum_final(&w->sum);
  w->in_section = false;
  return 0;
}

int rt_pack_add(rt_pack_writer *w, rt_pack_kind kind, const char *name, const void *data, size_t n,
                int *index, oc_error *e) {
  return rt_pack_begin(w, kind, name, index, e) || rt_pack_write(w, data, n, e) || rt_pack_end(w, e)
             ? -1
             : 0;
}

static int add_note(rt_pack_writer *w, const void *base, size_t n, int index, const char *name,
                    oc_error *e) {
  if (w->n_notes == w->cap_notes) {
    int cap = w->cap_notes ? 2 * w->cap_notes : 256;
    note *grown = oc_realloc(w->notes, (size_t)cap * sizeof *grown);
    if (!grown)
      return oc_fail(e, "%s: out of memory", w->out.path);
    w->notes = grown, w->cap_notes = cap;
  }
  char *copy = name ? oc_strdup(name) : NULL;
  if (name && !copy)
    return oc_fail(e, "%s: out of memory", w->out.path);
  w->notes[w->n_notes++] = (note){base, n, index, copy};
  return 0;
}

int rt_pack_note(rt_pack_writer *w, const void *base, size_t n, int index, oc_error *e) {
  return add_note(w, base, n, index, NULL, e);
}

int rt_pack_offer(rt_pack_writer *w, const void *base, size_t n, const char *name, oc_error *e) {
  return add_note(w, base, n, -1, name, e);
}

static note *find_note(const rt_pack_writer *w, const void *ptr) {
  const unsigned char *p = ptr;
  for (int i = w->n_notes - 1; i >= 0; i--) /* the latest first: a section over an offer */
    if (p >= w->notes[i].base && p < w->notes[i].base + w->notes[i].n)
      return &w->notes[i];
  return NULL;
}

void rt_release_pages(const void *p, size_t n) {
  uintptr_t lo = ((uintptr_t)p + PAGE - 1) / PAGE * PAGE, hi = ((uintptr_t)p + n) / PAGE * PAGE;
  if (hi > lo)
    (void)madvise((void *)lo, hi - lo, MADV_DONTNEED); /* a hint: failure only costs memory */
}

void rt_pack_release(const rt_pack_writer *w, const void *p, size_t n) {
  const note *r = n ? find_note(w, p) : NULL;
  if (r && r->name)
    rt_release_pages(p, n);
}

int rt_pack_resolve(rt_pack_writer *w, const void *ptr, const char *what, int *index,
                    uint64_t *offset, oc_error *e) {
  note *r = find_note(w, ptr);
  if (!r)
    return oc_fail(e, "%s: points at memory that is not in the packed file", what);
  if (r->index < 0) { /* an offered region, first used: written now, piece by piece */
    int rc = rt_pack_begin(w, RT_PACK_BUFFER, r->name, index, e);
    for (size_t at = 0; !rc && at < r->n; at += PIECE) {
      size_t len = r->n - at < PIECE ? r->n - at : PIECE;
      rc = rt_pack_write(w, r->base + at, len, e);
      rt_pack_release(w, r->base + at, len);
    }
    if (rc || rt_pack_end(w, e))
      return -1;
    r = find_note(w, ptr); /* the notes may have moved */
    r->index = *index;
  }
  *index = r->index;
  *offset = (uint64_t)((const unsigned char *)ptr - r->base);
  return 0;
}

/* Maps len bytes of fd from `at` read-only, kept until the writer ends. */
static const unsigned char *map_back(rt_pack_writer *w, int fd, uint64_t at, uint64_t len, oc_error *e) {
  uint64_t start = at / PAGE * PAGE, delta = at - start;
  size_t size = (size_t)(delta + (len ? len : 1));
  void **maps = oc_realloc(w->maps, (size_t)(w->n_maps + 1) * sizeof *maps);
  if (maps)
    w->maps = maps;
  size_t *lens = oc_realloc(w->map_len, (size_t)(w->n_maps + 1) * sizeof *lens);
  if (lens)
    w->map_len = lens;
  if (!maps || !lens) {
    oc_fail(e, "%s: out of memory", w->out.path);
    return NULL;
  }
  void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, (off_t)start);
  if (m == MAP_FAILED) {
    oc_fail(e, "%s: cannot map %llu written bytes back: %s", w->out.path, (unsigned long long)len,
            strerror(errno));
    return NULL;
  }
  w->maps[w->n_maps] = m;
  w->map_len[w->n_maps++] = size;
  return (const unsigned char *)m + delta;
}

const void *rt_pack_map(rt_pack_writer *w, int index, oc_error *e) {
  const rt_pack_section *s = &w->table[index];
  const unsigned char *base = map_back(w, w->fd, s->offset, s->bytes, e);
  return !base || rt_pack_note(w, base, (size_t)s->bytes, index, e) ? NULL : base;
}

const void *rt_pack_stage(rt_pack_writer *w, const char *name, uint64_t n, rt_pack_fill_fn fill,
                          void *ctx, oc_error *e) {
  if (w->scratch < 0) { /* beside the pack: gone when closed, whatever happens */
    char dir[4096];
    if ((w->scratch = unnamed_file(rt_output_dir_of(w->out.path, dir, sizeof dir))) < 0) {
      oc_fail(e, "%s: cannot make a scratch file beside it: %s", w->out.path, strerror(errno));
      return NULL;
    }
  }
  uint64_t start = (w->scratch_at + PAGE - 1) / PAGE * PAGE;
  unsigned char *buf = oc_malloc(PIECE);
  int rc = buf ? 0 : oc_fail(e, "out of memory staging %s", name);
  for (uint64_t at = 0; !rc && at < n; at += PIECE) {
    size_t len = n - at < PIECE ? (size_t)(n - at) : PIECE;
    if (!(rc = fill(ctx, at, buf, len, e)) && pwrite(w->scratch, buf, len, (off_t)(start + at)) != (ssize_t)len)
      rc = oc_fail(e, "%s: cannot write the scratch file beside it: %s", w->out.path, strerror(errno));
  }
  free(buf);
  w->scratch_at = start + n;
  const unsigned char *base = rc ? NULL : map_back(w, w->scratch, start, n, e);
  return !base || rt_pack_offer(w, base, (size_t)n, name, e) ? NULL : base;
}

static void unmap_all(rt_pack_writer *w) {
  for (int i = 0; i < w->n_maps; i++)
    munmap(w->maps[i], w->map_len[i]);
  w->n_maps = 0;
}

static void free_writer(rt_pack_writer *w) {
  unmap_all(w);
  if (w->scratch >= 0)
    close(w->scratch);
  for (int i = 0; i < w->n_notes; i++)
    free(w->notes[i].name);
  free(w->maps);
  free(w->map_len);
  free(w->notes);
  free(w->table);
  free(w);
}

int rt_pack_finish_to(rt_pack_writer *w, rt_output *out, oc_error *e) {
  rt_pack_header *h = &w->header;
  size_t table_bytes = (size_t)w->n * sizeof *w->table;
  int rc = w->in_section ? oc_fail(e, "%s: a section was left open", w->out.path) : 0;
  if (!rc && !(rc = pad_to(w, RT_PACK_ALIGN, e))) {
    h->n_sections = (uint32_t)w->n;
    h->table_offset = w->at;
    h->table_checksum = rt_checksum64(w->table, table_bytes);
    rc = put_all(w, w->table, table_bytes, e);
  }
  if (!rc) {
    h->pack_bytes = w->at;
    h->header_checksum = 0;
    h->header_checksum = rt_checksum64(h, sizeof *h);
    if (pwrite(w->fd, h, sizeof *h, 0) != (ssize_t)sizeof *h)
      rc = oc_fail(e, "%s: cannot write the header: %s", w->out.path, strerror(errno));
  }
  unmap_all(w);
  if (rc) {
    rt_pack_abandon(w);
    return -1;
  }
  rc = rt_output_ready(&w->out, e);
  *out = w->out; /* ready abandons it on failure: a zero output then */
  free_writer(w);
  return rc;
}

int rt_pack_finish(rt_pack_writer *w, oc_error *e) {
  rt_output out;
  rt_output *placed = &out;
  return rt_pack_finish_to(w, &out, e) || rt_output_commit(&placed, 1, e) ? -1 : 0;
}

void rt_pack_abandon(rt_pack_writer *w) {
  if (!w)
    return;
  unmap_all(w);
  rt_output_abandon(&w->out);
  free_writer(w);
}

/* ---- embedding ---- */

#define TRAILER_MAGIC "OLMOCEMB"

/* The last 24 bytes of a file with an appended pack. */
typedef struct trailer {
  char magic[8];
  uint64_t at, bytes;
} trailer;

#define MIB ((off_t)1 << 20)
#define APPEND_PIECE (64 * MIB) /* copied between progress reports */

int rt_pack_append(int in, const char *pack_path, int fd, const char *path, const oc_progress *progress,
                   oc_error *e) {
  struct stat s_in, s_out;
  if (fstat(in, &s_in) || fstat(fd, &s_out))
    return oc_fail(e, "%s: cannot append %s: %s", path, pack_path, strerror(errno));
  uint64_t at = ((uint64_t)s_out.st_size + PAGE - 1) / PAGE * PAGE;
  off_t from = 0, to = (off_t)at; /* explicit offsets: the descriptors' own are the callers' */
  int rc = ftruncate(fd, to) ? oc_fail(e, "%s: cannot write: %s", path, strerror(errno)) : 0;
  oc_step copied;
  oc_step_begin(&copied, progress, "embedding weights", (s_in.st_size + MIB - 1) / MIB, "MiB", "B");
  /* in the kernel, no copy in this process */
  for (off_t left = s_in.st_size, reported = 0; !rc && left > 0;) {
    ssize_t k = copy_file_range(in, &from, fd, &to, (size_t)(left < APPEND_PIECE ? left : APPEND_PIECE), 0);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      rc = oc_fail(e, "%s: cannot append %s: %s", path, pack_path, k < 0 ? strerror(errno) : "no progress");
      break;
    }
    left -= k;
    off_t at = s_in.st_size - left;
    if (at - reported >= APPEND_PIECE || !left) {
      oc_step_add(&copied, (left ? at / MIB : copied.total) - copied.done, (double)(at - reported));
      reported = at;
    }
  }
  oc_step_end(&copied);
  trailer t = {TRAILER_MAGIC, at, (uint64_t)s_in.st_size};
  if (!rc && pwrite(fd, &t, sizeof t, to) != (ssize_t)sizeof t)
    rc = oc_fail(e, "%s: cannot write: %s", path, strerror(errno));
  return rc;
}

int rt_pack_find_embedded(const char *path, uint64_t *at, bool *found, oc_error *e) {
  *found = false;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return oc_fail(e, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  trailer t;
  int rc = 0;
  if (fstat(fd, &st))
    rc = oc_fail(e, "%s: cannot stat: %s", path, strerror(errno));
  else if (st.st_size >= (off_t)sizeof t &&
           pread(fd, &t, sizeof t, st.st_size - (off_t)sizeof t) == (ssize_t)sizeof t &&
           memcmp(t.magic, TRAILER_MAGIC, sizeof t.magic) == 0) {
    uint64_t size = (uint64_t)st.st_size - sizeof t; /* where the trailer starts */
    if (t.at % PAGE || t.at > size || t.bytes != size - t.at)
      rc = oc_fail(e, "%s: the embedded weights' trailer points outside the file (damaged)", path);
    *at = t.at;
    *found = !rc;
  }
  close(fd);
  return rc;
}
