/* Command-line options declared as data, for olmoc and for compiled model
 * binaries alike: a command lists its options and cli_parse fills the
 * targets, so every command treats values, ranges and errors the same way. */
#ifndef OLMOC_ARGS_H
#define OLMOC_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "olmoc/error.h"

typedef enum cli_kind { CLI_FLAG, CLI_STRING, CLI_INT, CLI_FLOAT, CLI_LIST } cli_kind;

/* The values of an option that may be given several times (--stop A --stop
 * B), in order; they point into argv. */
#define CLI_LIST_MAX 16
typedef struct cli_list {
  const char *item[CLI_LIST_MAX];
  int n;
} cli_list;

typedef struct cli_option {
  const char *short_name, *long_name; /* "-m", "--model"; short may be NULL */
  cli_kind kind;
  void *target;     /* bool *, const char **, long *, float *, cli_list * */
  double min, max;  /* range of CLI_INT and CLI_FLOAT values */
  bool *given;      /* set when the option appears, if not NULL */
} cli_option;

#define CLI_OPT_STRING(s, l, target) {(s), (l), CLI_STRING, (target), 0, 0, NULL}
#define CLI_OPT_FLAG(s, l, target) {(s), (l), CLI_FLAG, (target), 0, 0, NULL}
#define CLI_OPT_INT(s, l, target, lo, hi, given) {(s), (l), CLI_INT, (target), (lo), (hi), (given)}
#define CLI_OPT_FLOAT(s, l, target, lo, hi, given) {(s), (l), CLI_FLOAT, (target), (lo), (hi), (given)}
#define CLI_OPT_LIST(s, l, target) {(s), (l), CLI_LIST, (target), 0, 0, NULL}

/* Parses argv[1..argc) against opts (ended by an entry with no names). One
 * bare argument goes to *positional when that is not NULL. Returns 1 when
 * help was asked for, 0 when parsed, -1 with a message. */
int cli_parse(int argc, char **argv, const cli_option *opts, const char **positional, oc_error *e);

/* A usage error of program ("olmoc run", "./model"): the message and one
 * line saying where the options are, on stderr. */
void cli_usage_error(const char *program, const char *msg);

/* The exit code of a command, after printing what it must: the usage for
 * help (0), a usage error (2, cli_usage_error), the message of a failure
 * (1). parsed is cli_parse's result, failed the command's. */
int cli_exit(const char *command, const char *usage, int parsed, int failed, const oc_error *e);

/* Parses a decimal integer in [min, max] for option `opt`. */
int cli_int(const char *opt, const char *text, long min, long max, long *out, oc_error *e);

/* Reads a whole file ("-": standard input) as raw bytes into a malloc'ed,
 * NUL-terminated buffer: a regular file, or standard input, of at most
 * CLI_TEXT_MAX_BYTES (a FIFO or device given by name is refused). */
#define CLI_TEXT_MAX_BYTES ((size_t)256 << 20)
int cli_read_file(const char *path, char **data, size_t *len, oc_error *e);

#endif
