/* Reading the small text files a model directory holds (config.json,
 * tokenizer.json, generation_config.json, ...), the same way everywhere: a
 * directory stands for the named file inside it, sizes are bounded, and every
 * message names the file. */
#ifndef OLMOC_FILE_H
#define OLMOC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "olmoc/error.h"

typedef struct oc_file {
  char *path; /* the file actually read, for messages */
  char *data; /* [len + 1], NUL-terminated; NULL when an optional file is absent */
  size_t len;
} oc_file;

/* path opened for reading if it is a regular file: a FIFO, a device or a
 * directory is refused by name ("not a regular file") without waiting on
 * it. NULL with the message in e, errno ENOENT when there is no such file. */
FILE *oc_open_regular(const char *path, oc_error *e);

/* Reads `path`, or `path/name` when path is a directory (name may be NULL:
 * then a directory is an error). At most max_bytes. With optional, a file
 * that does not exist is not an error: f->data is NULL. */
int oc_file_read(oc_file *f, const char *path, const char *name, size_t max_bytes, bool optional,
                 oc_error *e);
void oc_file_free(oc_file *f);

/* "line 3, column 7 (near 'x: 1}')" for byte `at` of text[0..len), for
 * parse errors; returns buf. */
char *oc_text_where(const char *text, size_t len, const char *at, char *buf, size_t n);

#endif
