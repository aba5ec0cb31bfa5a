/* oc_file_read and oc_text_where: one reader for every small model file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "olmoc/alloc.h"
#include "olmoc/file.h"

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir), m = strlen(name);
  char *p = oc_malloc(n + m + 2);
  if (p)
    snprintf(p, n + m + 2, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
  return p;
}

FILE *oc_open_regular(const char *path, oc_error *e) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO's open would wait for a writer */
  if (fd < 0) {
    int err = errno;
    oc_fail(e, "%s: cannot open: %s", path, strerror(err));
    errno = err;
    return NULL;
  }
  struct stat st;
  FILE *f = NULL;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode))
    oc_fail(e, "%s: not a regular file", path), errno = EINVAL;
  else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) || !(f = fdopen(fd, "rb")))
    oc_fail(e, "%s: cannot open: %s", path, strerror(errno));
  if (!f)
    close(fd);
  return f;
}

int oc_file_read(oc_file *f, const char *path, const char *name, size_t max_bytes, bool optional,
                 oc_error *e) {
  *f = (oc_file){0};
  struct stat st;
  bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
  f->path = is_dir && name ? join(path, name) : oc_strdup(path);
  if (!f->path)
    return oc_fail(e, "%s: out of memory", path);
  FILE *in = oc_open_regular(f->path, e);
  if (!in) {
    if (optional && errno == ENOENT)
      return 0;
    oc_file_free(f);
    return -1;
  }
  int rc = 0;
  if (fstat(fileno(in), &st) != 0)
    rc = oc_fail(e, "%s: cannot read: %s", f->path, strerror(errno));
  else if ((size_t)st.st_size > max_bytes)
    rc = oc_fail(e, "%s: %lld bytes, more than the %zu olmoc reads in such a file", f->path,
                 (long long)st.st_size, max_bytes);
  else if (!(f->data = oc_malloc((size_t)st.st_size + 1)))
    rc = oc_fail(e, "%s: out of memory", f->path);
  else if ((f->len = fread(f->data, 1, (size_t)st.st_size, in)) != (size_t)st.st_size)
    rc = oc_fail(e, "%s: read error: %s", f->path, ferror(in) ? strerror(errno) : "file shrank");
  fclose(in);
  if (rc) {
    oc_file_free(f);
    return rc;
  }
  f->data[f->len] = '\0';
  return 0;
}

void oc_file_free(oc_file *f) {
  free(f->path);
  free(f->data);
  *f = (oc_file){0};
}

char *oc_text_where(const char *text, size_t len, const char *at, char *buf, size_t n) {
  if (!at || at < text || at > text + len)
    at = text + len;
  int line = 1, col = 1;
  for (const char *p = text; p < at; p++)
    if (*p == '\n')
      line++, col = 1;
    else
      col++;
  if (at == text + len) {
    snprintf(buf, n, "line %d, column %d (unexpected end of file)", line, col);
    return buf;
  }
  char near[24];
  size_t k = 0;
  for (const char *p = at; p < text + len && *p != '\n' && k < sizeof near - 1; p++)
    near[k++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
  near[k] = '\0';
  if (k == 0)
    snprintf(buf, n, "line %d, column %d (at the end of the line)", line, col);
  else
    snprintf(buf, n, "line %d, column %d (near '%s')", line, col, near);
  return buf;
}
