/* Output files written safely, the directories they need made first (as
 * `mkdir -p`): a plain file is written to a temporary beside
 * it and renamed into place only when complete, so a failed or interrupted
 * write never leaves a partial file. Devices, pipes and symlinks (/dev/full,
 * a fifo, /dev/stdout) are written in place: renaming over them would put a
 * file where the device or link was. */
#ifndef OLMOC_OUTPUT_H
#define OLMOC_OUTPUT_H

#include <stdio.h>

#include "olmoc/error.h"

typedef struct rt_output {
  FILE *f;
  char *path, *tmp; /* path NULL for stdout; tmp NULL when written in place */
} rt_output;

/* path NULL or "-" is standard output; the directories before its last
 * component are made when missing. */
int rt_output_open(rt_output *o, const char *path, oc_error *e);
/* Flushes, syncs and renames into place; on failure removes the temporary. */
int rt_output_close(rt_output *o, oc_error *e);
/* Gives up: removes the temporary. */
void rt_output_abandon(rt_output *o);
/* Copies the file `from` to `to` as rt_output_open and close write it. */
int rt_output_copy(const char *from, const char *to, oc_error *e);
/* Makes dir and every directory above it that is missing. */
int rt_output_make_dir(const char *dir, oc_error *e);

#endif
