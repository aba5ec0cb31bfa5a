/* User-facing errors: every fallible function returns 0 on success or -1 and
 * fills an oc_error with a message a person can act on (file, key or tensor,
 * what was expected, what was found). Internal invariants use assert instead. */
#ifndef OLMOC_ERROR_H
#define OLMOC_ERROR_H

typedef struct oc_error {
  char msg[1024];
} oc_error;

/* Formats the message into e (if non-NULL) and returns -1, so callers can write
 * `return oc_fail(e, "...")`. */
int oc_fail(oc_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to an existing message, for adding context on the way up. */
int oc_wrap(oc_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
