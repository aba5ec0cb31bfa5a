/* The text a command evaluates (tokenize -f, perplexity -f), read whole and
 * checked: a NUL byte or ill-formed UTF-8 is refused, naming the file and the
 * offset of the first bad byte (from 0, as xxd and Python count), unless the
 * user allows it; the tokenizer then reads the bytes as they are (ill-formed
 * sequences as U+FFFD). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "olmoc/utf8.h"

int cli_read_text(const char *path, bool allow_invalid, char **data, size_t *len, oc_error *e) {
  if (cli_read_file(path, data, len, e))
    return -1;
  if (allow_invalid)
    return 0;
  const unsigned char *s = (const unsigned char *)*data;
  size_t bad = oc_utf8_valid(s, *len);
  const unsigned char *nul = memchr(s, 0, bad);
  const char *name = strcmp(path, "-") ? path : "standard input";
  int rc = 0;
  if (nul)
    rc = oc_fail(e, "%s: byte %zu is a NUL byte (--allow-invalid-utf8 reads the text as it is)", name,
                 (size_t)(nul - s));
  else if (bad < *len)
    rc = oc_fail(e, "%s: byte %zu is not UTF-8 (0x%02x) (--allow-invalid-utf8 reads the text as it is)", name,
                 bad, s[bad]);
  if (rc) {
    free(*data);
    *data = NULL;
  }
  return rc;
}
