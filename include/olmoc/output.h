/* Output files written safely, the directories they need made first (as
 * `mkdir -p`): a plain file is written to a temporary beside it and put in
 * place only when complete, so a failed or interrupted write never leaves a
 * partial file. The temporary is unnamed (O_TMPFILE) where the file system
 * allows, so that nothing is left even by SIGKILL, and gets a name only for
 * the rename into place; elsewhere it is PATH.tmp.XXXXXX, registered for
 * removal on a signal (olmoc/cleanup.h). Several outputs can be put in
 * place together (rt_output_commit). Devices, pipes and symlinks
 * (/dev/full, a fifo, /dev/stdout) are written in place: renaming over them
 * would put a file where the device or link was. */
#ifndef OLMOC_OUTPUT_H
#define OLMOC_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "olmoc/error.h"

typedef struct rt_output {
  FILE *f;      /* opened read-write when it replaces a file */
  char *path;   /* NULL for stdout */
  char *tmp;    /* the temporary's name beside path (NULL when written in place) */
  bool unnamed; /* the temporary has no name yet (O_TMPFILE): tmp is linked at commit */
  int cleanup;  /* tmp's slot in the cleanup table, or 0 */
} rt_output;

/* path NULL or "-" is standard output; the directories before its last
 * component are made when missing. A file made new has mode 0666 (less the
 * umask); rt_output_open_mode chooses another (0777: an executable). */
int rt_output_open(rt_output *o, const char *path, oc_error *e);
int rt_output_open_mode(rt_output *o, const char *path, mode_t mode, oc_error *e);
/* Whether o replaces a regular file through a temporary (not in place). */
static inline bool rt_output_replaces(const rt_output *o) { return o->tmp != NULL; }
/* Flushes and syncs: o is complete, not yet in place. On failure abandons it. */
int rt_output_ready(rt_output *o, oc_error *e);
/* Puts every ready output of o[0..n) in place, the handled signals held off
 * meanwhile (olmoc/cleanup.h): the temporaries are named first, then all
 * renamed. On failure every output not yet in place is abandoned. */
int rt_output_commit(rt_output *const *o, int n, oc_error *e);
/* rt_output_ready and rt_output_commit for o alone. */
int rt_output_close(rt_output *o, oc_error *e);
/* Gives up: removes the temporary (nothing for one never opened or zeroed). */
void rt_output_abandon(rt_output *o);
/* Copies the file `from` into o. */
int rt_output_copy_into(rt_output *o, const char *from, oc_error *e);
/* Copies the file `from` to `to` as rt_output_open and close write it. */
int rt_output_copy(const char *from, const char *to, oc_error *e);
/* The directory path's file is in ("dir/", or "."), into dir[n]; returns dir. */
const char *rt_output_dir_of(const char *path, char *dir, size_t n);
/* Makes dir and every directory above it that is missing. */
int rt_output_make_dir(const char *dir, oc_error *e);

/* A directory written whole or not at all: its files go into the scratch
 * directory tmp (PATH.tmp.XXXXXX, registered for removal on a signal) and
 * all appear at rt_output_dir_commit, by one rename when PATH is missing or
 * empty, else moved in one by one (replacing files of the same names, the
 * others kept), the signals held off meanwhile. */
typedef struct rt_output_dir {
  char *path, *tmp;
  int cleanup; /* tmp's slot in the cleanup table */
} rt_output_dir;

/* Makes the directories above path when missing, and tmp. */
int rt_output_dir_open(rt_output_dir *d, const char *path, oc_error *e);
/* Puts tmp's files in place; on failure (some may be) nothing is left in tmp. */
int rt_output_dir_commit(rt_output_dir *d, oc_error *e);
/* Gives up: removes tmp and what it holds. e (NULL: none), the message of
 * what failed, then names path where it named tmp: the files asked for. */
void rt_output_dir_abandon(rt_output_dir *d, oc_error *e);

/* A regular file in dir that no name points to (O_TMPFILE), read-write, of
 * mode `mode` less the umask, that can be linked into dir through
 * /proc/self/fd; -1 with errno set, EOPNOTSUPP where the file system, the
 * kernel or a missing /proc do not allow one. */
int rt_unnamed_file(const char *dir, mode_t mode);

#endif
