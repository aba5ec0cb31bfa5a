/* Shared pieces of the olmoc command line: the subcommands, option values
 * and reading input files. */
#ifndef OLMOC_TOOLS_CLI_H
#define OLMOC_TOOLS_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "olmoc/error.h"
#include "olmoc/output.h"

/* Parses a decimal integer in [min, max] for option `opt`. */
int cli_int(const char *opt, const char *text, long min, long max, long *out, oc_error *e);

/* Parses "1,2,3" into a malloc'ed array of ids in [0, INT32_MAX]. */
int cli_ids(const char *opt, const char *list, int32_t **ids, size_t *n, oc_error *e);

/* Reads a whole file ("-": standard input) as raw bytes into a malloc'ed,
 * NUL-terminated buffer. */
int cli_read_file(const char *path, char **data, size_t *len, oc_error *e);

int cmd_ir(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);

#endif
