/* Shared pieces of the olmoc command line: the subcommands, the option
 * values only they take and the text files they read (the option table
 * itself is olmoc/args.h). */
#ifndef OLMOC_TOOLS_CLI_H
#define OLMOC_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "olmoc/args.h"
#include "olmoc/error.h"
#include "olmoc/output.h"

/* Parses "1,2,3" into a malloc'ed array of ids in [0, INT32_MAX]. */
int cli_ids(const char *opt, const char *list, int32_t **ids, size_t *n, oc_error *e);

/* The text at path ("-": standard input) as cli_read_file reads it, refused
 * (nothing kept) at its first NUL byte or ill-formed UTF-8 unless
 * allow_invalid, the message naming the file and the byte (text_input.c). */
int cli_read_text(const char *path, bool allow_invalid, char **data, size_t *len, oc_error *e);

int cmd_ir(int argc, char **argv);
int cmd_passes(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_compile(int argc, char **argv);

#endif
