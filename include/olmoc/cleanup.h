/* What a process ended by SIGINT, SIGTERM or SIGHUP leaves behind: nothing
 * registered here. Code that makes a named temporary (a file, a scratch
 * directory, a child process group writing into one) registers it while it
 * exists; the handler the olmoc command installs (oc_cleanup_on_signals)
 * kills and reaps the registered process groups, removes the registered
 * files and directories, and re-raises the signal with its default action,
 * so the process still dies of it. The handler does only async-signal-safe
 * work on a fixed table. oc_cleanup_hold defers the handled signals while a
 * set of outputs is put in place, so that they appear together or not at
 * all. Without the handler, registering costs nothing and signals act as
 * they always do. */
#ifndef OLMOC_CLEANUP_H
#define OLMOC_CLEANUP_H

#include <sys/types.h>

#include "olmoc/error.h"

typedef enum oc_cleanup_kind {
  OC_CLEANUP_FILE,    /* unlinked */
  OC_CLEANUP_DIR,     /* a directory this process made: removed if empty, never emptied */
  OC_CLEANUP_SCRATCH, /* a private directory: its entries removed, then it */
  OC_CLEANUP_GROUP,   /* a child's process group: killed (SIGKILL) and reaped, before any path */
} oc_cleanup_kind;

/* Registers path (kind GROUP: pid, path NULL); returns the slot (> 0) for
 * oc_cleanup_drop, or -1 with e filled when the table is full or path too long. */
int oc_cleanup_add(oc_cleanup_kind kind, const char *path, pid_t pid, oc_error *e);
/* Forgets slot (0 is none): what it named is gone or in place. */
void oc_cleanup_drop(int slot);

/* Installs the handler for SIGINT, SIGTERM and SIGHUP, each unless it is
 * ignored (nohup), and makes this process the reaper of its children's
 * orphans, so that a killed group's members can all be waited for. */
void oc_cleanup_on_signals(void);

/* Between hold and release (nested: the outermost release counts) the
 * handled signals wait; release delivers one that came meanwhile. */
void oc_cleanup_hold(void);
void oc_cleanup_release(void);

/* Removes the entries of directory path (not below: it holds only files),
 * then path itself: what the handler does to a SCRATCH directory. */
void oc_remove_scratch(const char *path);

#endif
