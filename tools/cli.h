/* Shared pieces of the olmoc command line: the subcommands and the option
 * values only they take (the option table itself is olmoc/args.h). */
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

int cmd_ir(int argc, char **argv);
int cmd_passes(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_compile(int argc, char **argv);

#endif
