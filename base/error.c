/* oc_fail and oc_wrap: the one place messages are formatted. */
#include "olmoc/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int oc_fail(oc_error *e, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}

int oc_wrap(oc_error *e, const char *fmt, ...) {
  if (e) {
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
    va_end(ap);
    strcat(prefix, ": ");
    /* Shift the old message right to make room, truncating its end if needed. */
    size_t np = strlen(prefix), cap = sizeof e->msg - 1;
    size_t nm = strnlen(e->msg, cap);
    if (np > cap)
      np = cap;
    if (np + nm > cap)
      nm = cap - np;
    memmove(e->msg + np, e->msg, nm);
    memcpy(e->msg, prefix, np);
    e->msg[np + nm] = '\0';
  }
  return -1;
}
