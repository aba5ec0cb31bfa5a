/* The cleanup table and the signal handler (olmoc/cleanup.h). Invariant: a
 * slot's kind, pid and path are written only while the slot is FILLING, by
 * the thread that claimed it, and read by the handler only after it moved
 * the slot from ARMED to TAKEN, which no other state change can undo; so the
 * handler, on whatever thread it runs, never reads a path being written. */
#define _GNU_SOURCE /* getdents64 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "olmoc/cleanup.h"

enum { FREE, FILLING, ARMED, TAKEN };

#define SLOTS 64 /* a compile has a scratch directory, its cc and a few outputs at a time */

typedef struct slot {
  atomic_int state;
  oc_cleanup_kind kind;
  pid_t pid;
  char path[4096];
} slot;

static slot slots[SLOTS];
static atomic_int holding; /* oc_cleanup_hold's depth */
static atomic_int pending; /* a signal that came while holding, or 0 */
static const int handled[] = {SIGINT, SIGTERM, SIGHUP};

int oc_cleanup_add(oc_cleanup_kind kind, const char *path, pid_t pid, oc_error *e) {
  if (path && strlen(path) >= sizeof slots[0].path)
    return oc_fail(e, "%s: path too long", path);
  for (int i = 0; i < SLOTS; i++) {
    int expected = FREE;
    if (!atomic_compare_exchange_strong(&slots[i].state, &expected, FILLING))
      continue;
    slots[i].kind = kind;
    slots[i].pid = pid;
    strcpy(slots[i].path, path ? path : "");
    atomic_store(&slots[i].state, ARMED);
    return i + 1;
  }
  return oc_fail(e, "%s: more than %d temporaries at once", path ? path : "a child process", SLOTS);
}

void oc_cleanup_drop(int slot) {
  int expected = ARMED;
  if (slot > 0) /* a TAKEN slot stays so: the handler is using it */
    atomic_compare_exchange_strong(&slots[slot - 1].state, &expected, FREE);
}

void oc_remove_scratch(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  /* Entries removed while the directory is read may hide others from that
   * pass: pass again until one finds nothing (a few at most). */
  for (int pass = 0, found = 1; fd >= 0 && found && pass < 8; pass++) {
    char buf[8192];
    ssize_t n;
    found = 0;
    lseek(fd, 0, SEEK_SET);
    while ((n = getdents64(fd, buf, sizeof buf)) > 0)
      for (ssize_t at = 0; at < n; at += ((struct dirent64 *)(buf + at))->d_reclen) {
        const char *name = ((struct dirent64 *)(buf + at))->d_name;
        if (strcmp(name, ".") && strcmp(name, "..")) {
          unlinkat(fd, name, 0);
          found = 1;
        }
      }
  }
  if (fd >= 0)
    close(fd);
  rmdir(path);
}

/* Takes every armed slot, process groups first (a child could still write
 * into a directory), and undoes what it names. Async-signal-safe. */
static void clean_up(void) {
  for (int groups = 1; groups >= 0; groups--)
    for (int i = 0; i < SLOTS; i++) {
      slot *s = &slots[i];
      int expected = ARMED; /* an armed slot's kind is settled: read it, then take the slot */
      if (atomic_load(&s->state) != ARMED || (s->kind == OC_CLEANUP_GROUP) != groups ||
          !atomic_compare_exchange_strong(&s->state, &expected, TAKEN))
        continue;
      if (s->kind == OC_CLEANUP_GROUP) {
        kill(-s->pid, SIGKILL);
        while (waitpid(-s->pid, NULL, 0) > 0 || errno == EINTR) {
        }
      } else if (s->kind == OC_CLEANUP_FILE) {
        unlink(s->path);
      } else if (s->kind == OC_CLEANUP_DIR) {
        rmdir(s->path);
      } else {
        oc_remove_scratch(s->path);
      }
    }
}

/* Cleans up, then dies of sig: at once outside the handler, as the handler
 * returns inside it (sig is blocked there until then). */
static void die(int sig) {
  clean_up();
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  sigaction(sig, &dfl, NULL);
  raise(sig);
}

static void on_signal(int sig) {
  int saved = errno;
  atomic_store(&pending, sig);
  if (!atomic_load(&holding)) { /* else oc_cleanup_release delivers it */
    int got = atomic_exchange(&pending, 0);
    die(got ? got : sig);
  }
  errno = saved;
}

void oc_cleanup_on_signals(void) {
  struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof handled / sizeof *handled; i++)
    sigaddset(&sa.sa_mask, handled[i]); /* one at a time */
  for (size_t i = 0; i < sizeof handled / sizeof *handled; i++) {
    struct sigaction old;
    if (sigaction(handled[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
      sigaction(handled[i], &sa, NULL);
  }
  prctl(PR_SET_CHILD_SUBREAPER, 1); /* a hint: without it a killed cc's own children are init's */
}

void oc_cleanup_hold(void) { atomic_fetch_add(&holding, 1); }

void oc_cleanup_release(void) {
  if (atomic_fetch_sub(&holding, 1) != 1)
    return;
  int sig = atomic_exchange(&pending, 0);
  if (sig)
    die(sig);
}
