/* cli_parse and its helpers: a command's options declared as a table, parsed
 * and range-checked alike everywhere, and cli_read_file for the inputs.
 * Invariant: a parse either fills every target it meets or stops at the
 * first bad argument with a message naming it; nothing is printed here but
 * by cli_exit. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "olmoc/args.h"
#include "olmoc/file.h"

int cli_int(const char *opt, const char *text, long min, long max, long *out, oc_error *e) {
  char *end;
  errno = 0;
  long v = text ? strtol(text, &end, 10) : 0;
  if (!text || errno || end == text || *end || v < min || v > max)
    return oc_fail(e, "%s: expected an integer in [%ld, %ld], found '%s'", opt, min, max,
                   text ? text : "");
  *out = v;
  return 0;
}

static const cli_option *find_option(const cli_option *opts, const char *arg) {
  for (const cli_option *o = opts; o->short_name || o->long_name; o++)
    if ((o->short_name && !strcmp(arg, o->short_name)) || (o->long_name && !strcmp(arg, o->long_name)))
      return o;
  return NULL;
}

static int set_value(const cli_option *o, const char *name, const char *v, oc_error *e) {
  switch (o->kind) {
  case CLI_FLAG:
    *(bool *)o->target = true;
    return 0;
  case CLI_STRING:
    *(const char **)o->target = v;
    return 0;
  case CLI_INT:
    return cli_int(name, v, (long)o->min, (long)o->max, o->target, e);
  case CLI_FLOAT: {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= o->min && x <= o->max))
      return oc_fail(e, "%s: expected a number in [%g, %g], found '%s'", name, o->min, o->max, v);
    *(float *)o->target = (float)x;
    return 0;
  }
  case CLI_LIST: {
    cli_list *l = o->target;
    if (l->n == CLI_LIST_MAX)
      return oc_fail(e, "%s: given more than %d times", name, CLI_LIST_MAX);
    l->item[l->n++] = v;
    return 0;
  }
  }
  return -1;
}

int cli_parse(int argc, char **argv, const cli_option *opts, const char **positional, oc_error *e) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help"))
      return 1;
    /* --name=value is --name value */
    char name[64];
    const char *eq = strncmp(a, "--", 2) ? NULL : strchr(a, '=');
    if (eq && (size_t)(eq - a) < sizeof name) {
      snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
      a = name;
    }
    const cli_option *o = find_option(opts, a);
    if (o && eq && o->kind == CLI_FLAG)
      return oc_fail(e, "option '%s' takes no value", a);
    if (!o) {
      if (a[0] == '-' && a[1])
        return oc_fail(e, "unknown option '%s'", a);
      if (!positional)
        return oc_fail(e, "unexpected argument '%s'", a);
      if (*positional)
        return oc_fail(e, "one argument expected, found '%s' and '%s' (quote text with spaces)",
                       *positional, a);
      *positional = a;
      continue;
    }
    const char *v = eq ? eq + 1 : NULL;
    if (o->kind != CLI_FLAG && !v && !(v = i + 1 < argc ? argv[++i] : NULL))
      return oc_fail(e, "option '%s' needs a value", a);
    if (set_value(o, a, v, e))
      return -1;
    if (o->given)
      *o->given = true;
  }
  return 0;
}

/* The message and where the options are, not the whole help: a 30-line
 * usage pushes the one line that matters off the screen. */
void cli_usage_error(const char *program, const char *msg) {
  fprintf(stderr, "%s: %s\nsee `%s --help` for the options\n", program, msg, program);
}

int cli_exit(const char *command, const char *usage, int parsed, int failed, const oc_error *e) {
  if (parsed == 1) {
    fputs(usage, stdout);
    return 0;
  }
  if (parsed < 0) {
    char program[64];
    snprintf(program, sizeof program, "olmoc %s", command);
    cli_usage_error(program, e->msg);
    return 2;
  }
  if (failed) {
    fprintf(stderr, "olmoc %s: %s\n", command, e->msg);
    return 1;
  }
  return 0;
}

int cli_read_file(const char *path, char **data, size_t *len, oc_error *e) {
  if (strcmp(path, "-")) {
    oc_file f;
    if (oc_file_read(&f, path, NULL, CLI_TEXT_MAX_BYTES, false, e))
      return -1;
    *data = f.data, *len = f.len;
    free(f.path);
    return 0;
  }
  size_t n = 0, cap = 0;
  char *buf = NULL;
  for (size_t got = 1; got;) {
    if (n > CLI_TEXT_MAX_BYTES) { /* `yes | olmoc run` would read until the OOM killer came */
      free(buf);
      return oc_fail(e, "standard input: more than the %zu MiB olmoc reads as a text", CLI_TEXT_MAX_BYTES >> 20);
    }
    if (n + 1 >= cap) {
      char *grown = realloc(buf, cap = cap ? 2 * cap : 65536);
      if (!grown) {
        free(buf);
        return oc_fail(e, "standard input: out of memory reading it");
      }
      buf = grown;
    }
    n += got = fread(buf + n, 1, cap - n - 1, stdin);
  }
  if (ferror(stdin)) {
    free(buf);
    return oc_fail(e, "standard input: read error: %s", strerror(errno));
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  return 0;
}
