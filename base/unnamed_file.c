/* rt_unnamed_file: an O_TMPFILE where the system has them. A file of its own
 * so that a test can stand in for it at link time (tests/test_outputs_named.c
 * makes every file system look as if it had none). */
#define _GNU_SOURCE /* O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "olmoc/output.h"

int rt_unnamed_file(const char *dir, mode_t mode) {
  if (access("/proc/self/fd", X_OK)) { /* it could never be linked to a name */
    errno = EOPNOTSUPP;
    return -1;
  }
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
  if (fd < 0 && errno == EISDIR) /* a kernel before O_TMPFILE opens the directory instead */
    errno = EOPNOTSUPP;
  return fd;
}
