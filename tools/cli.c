/* The option values only the olmoc commands take: lists of token ids. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_ids(const char *opt, const char *list, int32_t **ids, size_t *n, oc_error *e) {
  *ids = NULL;
  *n = 0;
  if (!list || !*list)
    return oc_fail(e, "%s: expected a comma-separated list of token ids", opt);
  size_t count = 1;
  for (const char *c = list; *c; c++)
    count += *c == ',';
  int32_t *out = malloc(count * sizeof *out);
  if (!out)
    return oc_fail(e, "%s: out of memory", opt);
  const char *p = list;
  for (size_t i = 0; i < count; i++) {
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (end == p || errno || v < 0 || v > INT32_MAX || (*end != ',' && *end != '\0')) {
      free(out);
      return oc_fail(e, "%s: entry %zu of '%s' is not a token id", opt, i + 1, list);
    }
    out[i] = (int32_t)v;
    p = end + 1;
  }
  *ids = out;
  *n = count;
  return 0;
}
