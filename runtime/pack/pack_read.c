/* Reading a packed file (olmoc/pack.h): the header and the table are checked
 * before anything else is trusted (magic, version, header checksum, target
 * CPU, build, size, table checksum, every section inside the pack), then the
 * metadata sections are read and verified, then the buffers are read into
 * anonymous 2 MiB-page memory and verified (threads split the sections), or
 * mmap'ed. Invariant: after rt_pack_open succeeds every section's bytes lie
 * inside the file and data[i] points at all of them. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "olmoc/alloc.h"
#include "olmoc/pack.h"

#define PAGE 4096u
#define HUGE_PAGE (2u << 20)

struct rt_pack {
  char *path;
  int fd;
  uint64_t at; /* the pack's first byte in the file */
  rt_pack_header header;
  rt_pack_section *table; /* [header.n_sections] */
  const void **data;      /* [n]: where each section's bytes are */
  void **meta;            /* [n]: malloc'ed copies of the metadata sections, else NULL */
  void *buffers;          /* every buffer section: a mapping of the file, or oc_huge_alloc memory */
  size_t buffers_len;
  bool mapped;            /* buffers is the file mapping (munmap), else free() */
};

static int read_at(rt_pack *p, void *buf, size_t n, uint64_t offset, oc_error *e) {
  unsigned char *b = buf;
  while (n) {
    ssize_t k = pread(p->fd, b, n > (1u << 30) ? 1u << 30 : n, (off_t)(p->at + offset));
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return oc_fail(e, "%s: cannot read %zu bytes at %" PRIu64 ": %s", p->path, n, offset,
                     k < 0 ? strerror(errno) : "the file ends first (truncated)");
    b += k, n -= (size_t)k, offset += (uint64_t)k;
  }
  return 0;
}

static const char *dtype_name(uint32_t d) {
  return d == RT_PACK_F32 ? "f32" : d == RT_PACK_BF16 ? "bf16" : d == RT_PACK_Q8 ? "q8" : d == RT_PACK_Q4 ? "q4" : "unknown";
}

/* What the header says, checked in the order that gives the most useful
 * message: what the file is, its version, its integrity, then whom it is for. */
static int check_header(rt_pack *p, uint64_t file_bytes, const rt_pack_expect *x, oc_error *e) {
  rt_pack_header *h = &p->header;
  if (memcmp(h->magic, RT_PACK_MAGIC, sizeof h->magic))
    return oc_fail(e, "%s: not an olmoc packed weights file (it does not start with \"%s\")", p->path,
                   RT_PACK_MAGIC);
  if (h->version != RT_PACK_VERSION)
    return oc_fail(e, "%s: packed-file version %" PRIu32 ", but this binary reads version %d "
                   "(recompile the model with this olmoc)", p->path, h->version, RT_PACK_VERSION);
  uint64_t sum = h->header_checksum;
  h->header_checksum = 0;
  uint64_t want = rt_checksum64(h, sizeof *h);
  h->header_checksum = sum;
  if (sum != want || h->header_bytes != RT_PACK_HEADER_BYTES)
    return oc_fail(e, "%s: the header's checksum does not match: the file is damaged", p->path);
  h->cpu[sizeof h->cpu - 1] = h->features[sizeof h->features - 1] = '\0';
  if (x && (strcmp(h->cpu, x->cpu) || strcmp(h->features, x->features)))
    return oc_fail(e, "%s: packed for target CPU %s%s, but this binary's kernels were compiled for "
                   "%s: use the weights file compiled with this binary", p->path, h->cpu,
                   strcmp(h->cpu, x->cpu) ? "" : " with other CPU features", x->cpu);
  if (h->dtype != RT_PACK_F32 && h->dtype != RT_PACK_BF16 && h->dtype != RT_PACK_Q8 && h->dtype != RT_PACK_Q4)
    return oc_fail(e, "%s: weights in an unknown dtype (code %" PRIu32 "), which this binary cannot run",
                   p->path, h->dtype);
  if (x && x->dtype && h->dtype != x->dtype)
    return oc_fail(e, "%s: %s weights, but this binary's kernels were compiled for %s weights: use "
                   "the weights file compiled with this binary", p->path, dtype_name(h->dtype),
                   dtype_name(x->dtype));
  if (x && h->build_id != x->build_id)
    return oc_fail(e, "%s: written by another `olmoc compile` (build %016" PRIx64 "; this binary "
                   "is build %016" PRIx64 "): use the weights file compiled with this binary",
                   p->path, h->build_id, x->build_id);
  if (h->pack_bytes > file_bytes - p->at)
    return oc_fail(e, "%s: truncated: the header says the pack is %" PRIu64 " bytes, the file "
                   "holds %" PRIu64, p->path, h->pack_bytes, file_bytes - p->at);
  uint64_t table_bytes = (uint64_t)h->n_sections * sizeof(rt_pack_section);
  if (h->table_offset < RT_PACK_HEADER_BYTES || h->table_offset > h->pack_bytes ||
      table_bytes != h->pack_bytes - h->table_offset)
    return oc_fail(e, "%s: the section table (%" PRIu32 " entries at %" PRIu64 ") does not end "
                   "the pack: the file is damaged", p->path, h->n_sections, h->table_offset);
  return 0;
}

static int check_table(rt_pack *p, oc_error *e) {
  const rt_pack_header *h = &p->header;
  size_t n = h->n_sections;
  if (!(p->table = oc_malloc(n * sizeof *p->table + 1)) || !(p->data = oc_calloc(n + 1, sizeof *p->data)) ||
      !(p->meta = oc_calloc(n + 1, sizeof *p->meta)))
    return oc_fail(e, "%s: out of memory for %zu sections", p->path, n);
  if (read_at(p, p->table, n * sizeof *p->table, h->table_offset, e))
    return -1;
  if (rt_checksum64(p->table, n * sizeof *p->table) != h->table_checksum)
    return oc_fail(e, "%s: the section table's checksum does not match: the file is damaged", p->path);
  for (size_t i = 0; i < n; i++) {
    rt_pack_section *s = &p->table[i];
    s->name[sizeof s->name - 1] = '\0';
    if (s->kind < RT_PACK_BUFFER || s->kind > RT_PACK_TENSORS || s->offset % RT_PACK_ALIGN ||
        s->offset < RT_PACK_HEADER_BYTES || s->offset > h->table_offset ||
        s->bytes > h->table_offset - s->offset)
      return oc_fail(e, "%s: section %zu (%s) is not a known kind inside the pack: the file is damaged",
                     p->path, i, s->name);
  }
  return 0;
}

static int damaged(const rt_pack *p, int i, oc_error *e) {
  return oc_fail(e, "%s: section %d (%s) fails its checksum: the file is damaged", p->path, i,
                 p->table[i].name);
}

/* Every buffer section, read into 2 MiB-aligned anonymous memory advised to
 * use huge pages (the host decides), or mapped from the file; verified
 * unless mapped unchecked. */
static int load_buffers(rt_pack *p, rt_pack_load how, const oc_progress *progress, oc_error *e) {
  int n = (int)p->header.n_sections, buffers = 0;
  uint64_t lo = UINT64_MAX, hi = 0;
  for (int i = 0; i < n; i++)
    if (p->table[i].kind == RT_PACK_BUFFER) {
      buffers++;
      lo = p->table[i].offset < lo ? p->table[i].offset : lo;
      hi = p->table[i].offset + p->table[i].bytes > hi ? p->table[i].offset + p->table[i].bytes : hi;
    }
  if (hi <= lo)
    return 0;
  unsigned char *base;
  if (how != RT_PACK_READ) {
    uint64_t start = (p->at + lo) / PAGE * PAGE;
    p->buffers_len = (size_t)(p->at + hi - start);
    p->buffers = mmap(NULL, p->buffers_len, PROT_READ, MAP_PRIVATE, p->fd, (off_t)start);
    p->mapped = p->buffers != MAP_FAILED;
    if (!p->mapped) {
      p->buffers = NULL;
      return oc_fail(e, "%s: cannot mmap %zu bytes of weights: %s", p->path, p->buffers_len, strerror(errno));
    }
    base = (unsigned char *)p->buffers + (p->at + lo - start);
  } else {
    uint64_t available = rt_memory_available();
    if (available && hi - lo > available) /* reading would end in the OOM killer */
      return oc_fail(e, "%s: %.1f GB of weights do not fit in the %.1f GB of memory available: "
                     "use --mmap (the weights then page in from the file)", p->path,
                     (double)(hi - lo) / 1e9, (double)available / 1e9);
    size_t len = (size_t)(hi - lo + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    if (!(p->buffers = base = oc_huge_alloc(len)))
      return oc_fail(e, "%s: out of memory for %zu bytes of weights", p->path, len);
    p->buffers_len = len;
  }
  for (int i = 0; i < n; i++)
    if (p->table[i].kind == RT_PACK_BUFFER)
      p->data[i] = base + (p->table[i].offset - lo);
  if (how == RT_PACK_MMAP)
    return 0;
  bool copy = how == RT_PACK_READ;
  int bad = -1; /* the first section that failed, by index */
  oc_error err = {{0}};
  oc_step read;
  oc_step_begin(&read, progress, copy ? "reading weights" : "checking weights", buffers, "sections", "B");
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < n; i++) {
    const rt_pack_section *s = &p->table[i];
    if (s->kind != RT_PACK_BUFFER)
      continue;
    oc_error mine;
    int rc = copy ? read_at(p, (void *)p->data[i], (size_t)s->bytes, s->offset, &mine) : 0;
    if (!rc && rt_checksum64(p->data[i], (size_t)s->bytes) != s->checksum)
      rc = damaged(p, i, &mine);
#pragma omp critical
    {
      if (rc && (bad < 0 || i < bad))
        bad = i, err = mine;
      oc_step_add(&read, 1, (double)s->bytes);
    }
  }
  oc_step_end(&read);
  if (bad >= 0)
    *e = err;
  return bad >= 0 ? -1 : 0;
}

int rt_pack_open(const char *path, uint64_t at, const rt_pack_expect *x, rt_pack_load how,
                 const oc_progress *progress, rt_pack **out, oc_error *e) {
  *out = NULL;
  rt_pack *p = oc_calloc(1, sizeof *p);
  if (!p || !(p->path = oc_strdup(path))) {
    free(p);
    return oc_fail(e, "%s: out of memory", path);
  }
  p->at = at;
  p->fd = -1;
  struct stat st;
  /* non-blocking, so a FIFO is refused below rather than waited on */
  if ((p->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0 || fstat(p->fd, &st)) {
    oc_fail(e, "%s: cannot open: %s", path, strerror(errno));
    goto fail;
  }
  if (!S_ISREG(st.st_mode)) {
    oc_fail(e, "%s: not a regular file", path);
    goto fail;
  }
  if ((uint64_t)st.st_size < at || (uint64_t)st.st_size - at < RT_PACK_HEADER_BYTES) {
    oc_fail(e, "%s: %lld bytes from byte %llu on, too short for an olmoc packed weights file (the "
            "header alone is %d bytes)", path, (long long)st.st_size - (long long)at,
            (unsigned long long)at, RT_PACK_HEADER_BYTES);
    goto fail;
  }
  if (read_at(p, &p->header, sizeof p->header, 0, e) || check_header(p, (uint64_t)st.st_size, x, e) ||
      check_table(p, e))
    goto fail;
  for (int i = 0; i < (int)p->header.n_sections; i++) {
    const rt_pack_section *s = &p->table[i];
    if (s->kind == RT_PACK_BUFFER)
      continue;
    if (!(p->meta[i] = oc_malloc((size_t)s->bytes + 1))) {
      oc_fail(e, "%s: out of memory for section %s", path, s->name);
      goto fail;
    }
    p->data[i] = p->meta[i];
    if (read_at(p, p->meta[i], (size_t)s->bytes, s->offset, e))
      goto fail;
    if (rt_checksum64(p->meta[i], (size_t)s->bytes) != s->checksum) {
      damaged(p, i, e);
      goto fail;
    }
  }
  if (load_buffers(p, how, progress, e))
    goto fail;
  close(p->fd); /* a mapping outlives its descriptor */
  p->fd = -1;
  *out = p;
  return 0;
fail:
  rt_pack_close(p);
  return -1;
}

void rt_pack_close(rt_pack *p) {
  if (!p)
    return;
  if (p->buffers && p->mapped)
    munmap(p->buffers, p->buffers_len);
  else
    free(p->buffers);
  for (uint32_t i = 0; p->meta && i < p->header.n_sections; i++)
    free(p->meta[i]);
  if (p->fd >= 0)
    close(p->fd);
  free(p->meta);
  free(p->data);
  free(p->table);
  free(p->path);
  free(p);
}

const rt_pack_header *rt_pack_header_of(const rt_pack *p) { return &p->header; }
int rt_pack_count(const rt_pack *p) { return (int)p->header.n_sections; }
const rt_pack_section *rt_pack_section_at(const rt_pack *p, int i) { return &p->table[i]; }
const void *rt_pack_data(const rt_pack *p, int i) { return p->data[i]; }
const char *rt_pack_path(const rt_pack *p) { return p->path; }

int rt_pack_find(const rt_pack *p, rt_pack_kind kind) {
  for (int i = 0; i < (int)p->header.n_sections; i++)
    if (p->table[i].kind == (uint32_t)kind)
      return i;
  return -1;
}
