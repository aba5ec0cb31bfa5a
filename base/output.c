/* rt_output: files replaced atomically, devices and links written in place,
 * into directories made on the way as `mkdir -p` makes them. It lives in
 * base/, below every library, so that the compiler's writers (pass dumps,
 * IR dumps, compiled binaries) share it with the runtime's (checkpoints,
 * packs). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "olmoc/alloc.h"
#include "olmoc/file.h"
#include "olmoc/output.h"

/* Makes every missing directory of the first n bytes of path, one mkdir a
 * level: each is atomic, and one that appears meanwhile (EEXIST) is as good
 * as made. Returns 0 or the errno that stopped it. */
static int make_dirs(const char *path, size_t n) {
  char dir[4096];
  if (n >= sizeof dir)
    return ENAMETOOLONG;
  for (size_t i = 1; i <= n; i++) {
    if (i < n && path[i] != '/')
      continue;
    memcpy(dir, path, i);
    dir[i] = '\0';
    struct stat st;
    if (mkdir(dir, 0777) && errno != EEXIST)
      return errno;
    if (stat(dir, &st))
      return errno;
    if (!S_ISDIR(st.st_mode))
      return ENOTDIR;
  }
  return 0;
}

int rt_output_make_dir(const char *dir, oc_error *e) {
  int err = make_dirs(dir, strlen(dir));
  return err ? oc_fail(e, "%s: cannot create the directory: %s", dir, strerror(err)) : 0;
}

int rt_output_open(rt_output *o, const char *path, oc_error *e) {
  *o = (rt_output){.f = stdout};
  if (!path || strcmp(path, "-") == 0)
    return 0;
  const char *slash = strrchr(path, '/');
  int err = slash && slash > path ? make_dirs(path, (size_t)(slash - path)) : 0;
  if (err)
    return oc_fail(e, "%s: cannot create: %s", path, strerror(err));
  /* Only a plain file is replaced by renaming. Devices, pipes and symlinks
   * (/dev/full, a fifo, /dev/stdout) are written in place: a rename would
   * put a file where the device or link was. */
  struct stat st;
  if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    if (!(o->path = oc_strdup(path)))
      return oc_fail(e, "%s: out of memory", path);
    if (!(o->f = fopen(path, "w"))) {
      int err = errno;
      rt_output_abandon(o);
      return oc_fail(e, "%s: cannot open for writing: %s", path, strerror(err));
    }
    return 0;
  }
  size_t n = strlen(path) + sizeof ".tmp.XXXXXX";
  o->path = oc_strdup(path);
  o->tmp = oc_malloc(n);
  if (!o->path || !o->tmp) {
    rt_output_abandon(o);
    return oc_fail(e, "%s: out of memory", path);
  }
  snprintf(o->tmp, n, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(o->tmp);
  /* mkstemp makes the file private; the result should have the usual mode. */
  mode_t mask = umask(0);
  umask(mask);
  if (fd >= 0)
    fchmod(fd, 0666 & ~mask);
  o->f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!o->f) {
    int err = errno;
    if (fd >= 0)
      close(fd); /* the temporary exists: abandon removes it */
    else {
      free(o->tmp);
      o->tmp = NULL;
    }
    rt_output_abandon(o);
    return oc_fail(e, "%s: cannot create: %s", path, strerror(err));
  }
  return 0;
}

void rt_output_abandon(rt_output *o) {
  if (o->f && o->f != stdout)
    fclose(o->f);
  if (o->tmp)
    unlink(o->tmp);
  free(o->tmp);
  free(o->path);
  *o = (rt_output){0};
}

int rt_output_close(rt_output *o, oc_error *e) {
  if (!o->tmp) {
    const char *name = o->path ? o->path : "standard output";
    int failed = ferror(o->f) | fflush(o->f);
    int err = errno;
    if (o->path)
      failed |= fclose(o->f);
    if (failed)
      oc_fail(e, "%s: cannot write: %s", name, strerror(err));
    free(o->path);
    *o = (rt_output){0};
    return failed ? -1 : 0;
  }
  int failed = ferror(o->f) | fflush(o->f) | fsync(fileno(o->f));
  int err = errno;
  failed |= fclose(o->f);
  o->f = NULL;
  if (failed || rename(o->tmp, o->path) != 0) {
    err = failed ? err : errno;
    oc_fail(e, "%s: cannot write: %s", o->path, strerror(err));
    rt_output_abandon(o);
    return -1;
  }
  free(o->tmp);
  free(o->path);
  *o = (rt_output){0};
  return 0;
}

int rt_output_copy(const char *from, const char *to, oc_error *e) {
  FILE *in = oc_open_regular(from, e);
  if (!in)
    return -1;
  rt_output out;
  if (rt_output_open(&out, to, e)) {
    fclose(in);
    return -1;
  }
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    if (fwrite(buf, 1, n, out.f) != n)
      break;
  int bad_read = ferror(in), bad_write = ferror(out.f);
  fclose(in);
  if (bad_read || bad_write) {
    rt_output_abandon(&out);
    return oc_fail(e, "%s: %s failed: %s", bad_read ? from : to, bad_read ? "read" : "write", strerror(errno));
  }
  return rt_output_close(&out, e);
}
