/* Shared pieces of the olmoc command line: the subcommand signature and
 * writing an output file safely (to a temporary beside it, renamed at the end,
 * so a failed write never leaves a partial file). */
#ifndef OLMOC_TOOLS_CLI_H
#define OLMOC_TOOLS_CLI_H

#include <stdio.h>

#include "olmoc/error.h"

typedef struct cli_output {
  FILE *f;
  char *path, *tmp; /* NULL for stdout */
} cli_output;

/* path NULL or "-" is stdout. */
int cli_output_open(cli_output *o, const char *path, oc_error *e);
/* Flushes and renames into place; on failure removes the temporary. */
int cli_output_close(cli_output *o, oc_error *e);
/* Gives up: removes the temporary. */
void cli_output_abandon(cli_output *o);

/* Parses a decimal integer in [min, max] for option `opt`. */
int cli_int(const char *opt, const char *text, long min, long max, long *out, oc_error *e);

int cmd_ir(int argc, char **argv);
int cmd_eval(int argc, char **argv);

#endif
