/* rt_output: files replaced atomically, devices and links written in place,
 * into directories made on the way as `mkdir -p` makes them. It lives in
 * base/, below every library, so that the compiler's writers (pass dumps,
 * IR dumps, compiled binaries) share it with the runtime's (checkpoints,
 * packs). Invariant: a replacing output's temporary is unnamed, or named
 * and registered for cleanup, from open until it is renamed into place; a
 * name made for the rename exists only while the signals are held. A
 * directory is written as a registered scratch directory beside it, renamed
 * (or its files moved) into place while the signals are held. */
#define _GNU_SOURCE /* linkat's AT_SYMLINK_FOLLOW, memrchr */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "olmoc/alloc.h"
#include "olmoc/cleanup.h"
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

const char *rt_output_dir_of(const char *path, char *dir, size_t n) {
  const char *slash = strrchr(path, '/');
  snprintf(dir, n, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
  return dir;
}

/* mode as a new file gets it: less the process's umask. */
static mode_t less_umask(mode_t mode) {
  mode_t mask = umask(0);
  umask(mask);
  return mode & ~mask;
}

/* The file descriptor of o's temporary, O_TMPFILE in path's directory, else
 * a fresh name from o->tmp's template, registered while the signals are
 * held so that none comes between the file and its registration. -1 with
 * errno set on failure. */
static int open_temporary(rt_output *o, mode_t mode, oc_error *e) {
  char dir[4096];
  int fd = rt_unnamed_file(rt_output_dir_of(o->path, dir, sizeof dir), mode);
  if (fd >= 0 || errno != EOPNOTSUPP) {
    o->unnamed = fd >= 0;
    return fd;
  }
  oc_cleanup_hold();
  fd = mkostemp(o->tmp, O_CLOEXEC);
  int err = errno;
  if (fd >= 0 && (o->cleanup = oc_cleanup_add(OC_CLEANUP_FILE, o->tmp, 0, e)) < 0) {
    o->cleanup = 0;
    unlink(o->tmp);
    close(fd);
    fd = -1, err = ENAMETOOLONG;
  }
  oc_cleanup_release();
  if (fd >= 0) /* mkstemp makes the file private; it should have the usual mode */
    fchmod(fd, less_umask(mode));
  errno = err;
  return fd;
}

int rt_output_open_mode(rt_output *o, const char *path, mode_t mode, oc_error *e) {
  *o = (rt_output){.f = stdout};
  if (!path || strcmp(path, "-") == 0)
    return 0;
  const char *slash = strrchr(path, '/');
  int err = slash && slash > path ? make_dirs(path, (size_t)(slash - path)) : 0;
  if (err)
    return oc_fail(e, "%s: cannot create: %s", path, strerror(err));
  if (!(o->path = oc_strdup(path))) {
    *o = (rt_output){0};
    return oc_fail(e, "%s: out of memory", path);
  }
  /* Only a plain file is replaced by renaming. Devices, pipes and symlinks
   * (/dev/full, a fifo, /dev/stdout) are written in place: a rename would
   * put a file where the device or link was. */
  struct stat st;
  if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    if (!(o->f = fopen(path, "w"))) {
      err = errno;
      rt_output_abandon(o);
      return oc_fail(e, "%s: cannot open for writing: %s", path, strerror(err));
    }
    return 0;
  }
  size_t n = strlen(path) + sizeof ".tmp.XXXXXX";
  if (!(o->tmp = oc_malloc(n))) {
    rt_output_abandon(o);
    return oc_fail(e, "%s: out of memory", path);
  }
  snprintf(o->tmp, n, "%s.tmp.XXXXXX", path);
  oc_error registered = {{0}};
  int fd = open_temporary(o, mode, &registered);
  if (fd < 0 || !(o->f = fdopen(fd, "w+"))) {
    err = errno;
    if (fd >= 0) {
      close(fd); /* the temporary exists: abandon removes it */
    } else {
      free(o->tmp);
      o->tmp = NULL;
    }
    rt_output_abandon(o);
    return registered.msg[0] ? oc_fail(e, "%s", registered.msg) : oc_fail(e, "%s: cannot create: %s", path, strerror(err));
  }
  return 0;
}

int rt_output_open(rt_output *o, const char *path, oc_error *e) { return rt_output_open_mode(o, path, 0666, e); }

void rt_output_abandon(rt_output *o) {
  if (o->f && o->f != stdout)
    fclose(o->f);
  if (o->tmp && !o->unnamed)
    unlink(o->tmp);
  oc_cleanup_drop(o->cleanup);
  free(o->tmp);
  free(o->path);
  *o = (rt_output){0};
}

int rt_output_ready(rt_output *o, oc_error *e) {
  int failed = ferror(o->f) | fflush(o->f);
  if (!failed && o->tmp)
    failed = fsync(fileno(o->f));
  if (failed) {
    oc_fail(e, "%s: cannot write: %s", o->path ? o->path : "standard output", strerror(errno));
    rt_output_abandon(o);
    return -1;
  }
  return 0;
}

/* Gives an unnamed temporary its name: tmp's template made unique by
 * linking the file there. Returns 0 or an errno. */
static int name_temporary(rt_output *o) {
  char from[64], *x = o->tmp + strlen(o->tmp) - 6;
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  snprintf(from, sizeof from, "/proc/self/fd/%d", fileno(o->f));
  for (int tries = 0; tries < 100; tries++) {
    unsigned char r[6];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
      return errno;
    for (int i = 0; i < 6; i++)
      x[i] = letters[r[i] % (sizeof letters - 1)];
    if (linkat(AT_FDCWD, from, AT_FDCWD, o->tmp, AT_SYMLINK_FOLLOW) == 0) {
      o->unnamed = false;
      return 0;
    }
    if (errno != EEXIST)
      return errno;
  }
  return EEXIST;
}

/* Closes o, in place now, and frees it; returns fclose's errno or 0. */
static int release(rt_output *o) {
  int err = o->f != stdout && o->path && fclose(o->f) ? errno : 0;
  o->f = NULL;
  oc_cleanup_drop(o->cleanup);
  free(o->tmp);
  free(o->path);
  *o = (rt_output){0};
  return err;
}

int rt_output_commit(rt_output *const *o, int n, oc_error *e) {
  int err = 0, at = 0;
  const char *path = NULL;
  oc_cleanup_hold();
  for (int i = 0; !err && i < n; i++)
    if (o[i]->unnamed && (err = name_temporary(o[i])))
      path = o[i]->path;
  for (; !err && at < n; at++) {
    path = o[at]->path ? o[at]->path : "standard output";
    err = o[at]->tmp && rename(o[at]->tmp, o[at]->path) ? errno : 0;
    if (!err) {
      free(o[at]->tmp); /* in place: no longer a temporary, whatever release says */
      o[at]->tmp = NULL;
      err = release(o[at]);
    }
  }
  for (int i = at; i < n; i++)
    rt_output_abandon(o[i]);
  oc_cleanup_release();
  return err ? oc_fail(e, "%s: cannot write: %s", path, strerror(err)) : 0;
}

int rt_output_close(rt_output *o, oc_error *e) {
  return rt_output_ready(o, e) || rt_output_commit(&o, 1, e) ? -1 : 0;
}

int rt_output_copy_into(rt_output *o, const char *from, oc_error *e) {
  FILE *in = oc_open_regular(from, e);
  if (!in)
    return -1;
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    if (fwrite(buf, 1, n, o->f) != n)
      break;
  int bad_read = ferror(in), bad_write = ferror(o->f), err = errno;
  fclose(in);
  if (bad_read || bad_write)
    return oc_fail(e, "%s: %s failed: %s", bad_read ? from : o->path, bad_read ? "read" : "write", strerror(err));
  return 0;
}

int rt_output_copy(const char *from, const char *to, oc_error *e) {
  rt_output out;
  if (rt_output_open(&out, to, e))
    return -1;
  if (rt_output_copy_into(&out, from, e)) {
    rt_output_abandon(&out);
    return -1;
  }
  return rt_output_close(&out, e);
}

/* ---- directories ---- */

int rt_output_dir_open(rt_output_dir *d, const char *path, oc_error *e) {
  *d = (rt_output_dir){0};
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') /* "ckpt/" is ckpt */
    n--;
  const char *slash = memrchr(path, '/', n);
  struct stat st;
  int err = slash && slash > path ? make_dirs(path, (size_t)(slash - path)) : 0;
  if (!err && lstat(path, &st) == 0 && !S_ISDIR(st.st_mode))
    err = ENOTDIR;
  if (err)
    return oc_fail(e, "%s: cannot create the directory: %s", path, strerror(err));
  d->path = oc_strndup(path, n);
  d->tmp = oc_malloc(n + sizeof ".tmp.XXXXXX");
  if (!d->path || !d->tmp) {
    rt_output_dir_abandon(d, NULL);
    return oc_fail(e, "%s: out of memory", path);
  }
  snprintf(d->tmp, n + sizeof ".tmp.XXXXXX", "%s.tmp.XXXXXX", d->path);
  oc_cleanup_hold(); /* no signal between the directory and its registration */
  bool made = mkdtemp(d->tmp) != NULL;
  err = errno;
  if (made && (d->cleanup = oc_cleanup_add(OC_CLEANUP_SCRATCH, d->tmp, 0, e)) < 0) {
    rmdir(d->tmp);
    d->cleanup = 0;
  }
  oc_cleanup_release();
  if (!made || !d->cleanup) {
    if (!made)
      oc_fail(e, "%s: cannot create the directory: %s", path, strerror(err));
    free(d->tmp);
    d->tmp = NULL;
    rt_output_dir_abandon(d, NULL);
    return -1;
  }
  chmod(d->tmp, less_umask(0777)); /* mkdtemp makes it private; the result should have the usual mode */
  return 0;
}

/* Moves every entry of from into the directory to; returns 0 or an errno. */
static int move_entries(const char *from, const char *to, const char **failed, char *name, size_t n) {
  DIR *dir = opendir(from);
  if (!dir)
    return errno;
  int err = 0;
  for (struct dirent *d; !err && (d = readdir(dir));) {
    if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
      continue;
    snprintf(name, n, "%s/%s", to, d->d_name);
    if (renameat(dirfd(dir), d->d_name, AT_FDCWD, name))
      err = errno, *failed = name;
  }
  closedir(dir);
  return err;
}

int rt_output_dir_commit(rt_output_dir *d, oc_error *e) {
  char name[4096];
  const char *failed = d->path;
  oc_cleanup_hold();
  /* a directory that is not there (or is empty) is replaced whole; else the
   * files go in one by one, replacing theirs and leaving the rest */
  int err = rename(d->tmp, d->path) ? errno : 0;
  if (err == EEXIST || err == ENOTEMPTY)
    err = move_entries(d->tmp, d->path, &failed, name, sizeof name);
  oc_cleanup_release();
  if (err)
    oc_fail(e, "%s: cannot write: %s", failed, strerror(err));
  rt_output_dir_abandon(d, NULL);
  return err ? -1 : 0;
}

/* Each mention of from in msg becomes to (no longer than from). */
static void rename_in(char *msg, const char *from, const char *to) {
  size_t nf = strlen(from), nt = strlen(to);
  for (char *at = strstr(msg, from); at; at = strstr(at + nt, from)) {
    memmove(at + nt, at + nf, strlen(at + nf) + 1);
    memcpy(at, to, nt);
  }
}

void rt_output_dir_abandon(rt_output_dir *d, oc_error *e) {
  if (d->tmp) {
    oc_remove_scratch(d->tmp);
    if (e)
      rename_in(e->msg, d->tmp, d->path);
  }
  oc_cleanup_drop(d->cleanup);
  free(d->tmp);
  free(d->path);
  *d = (rt_output_dir){0};
}
