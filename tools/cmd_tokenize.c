/* `olmoc tokenize`: show how a model's tokenizer splits text: one token per
 * line (id and the piece's text), or just the ids on one line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "olmoc/driver.h"

static const char usage[] =
    "usage: olmoc tokenize [-m MODEL] (TEXT | -f FILE) [--ids-only]\n"
    "\n"
    "options:\n"
    "  -m, --model DIR         the model whose tokenizer.json to use (default: the bundled one)\n"
    "  -f, --file FILE         tokenize the text of FILE ('-': standard input), which must be\n"
    "                          UTF-8 without NUL bytes (the error names the first bad byte)\n"
    "  --allow-invalid-utf8    tokenize FILE's bytes as they are (ill-formed UTF-8 as U+FFFD)\n"
    "  --ids-only              print only the ids, comma-separated on one line\n"
    "  -h, --help              show this help\n";

/* The piece as a C-style quoted string, so whitespace and bad bytes show. */
static void put_piece(const char *s, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c == '\n')
      fputs("\\n", stdout);
    else if (c == '\t')
      fputs("\\t", stdout);
    else if (c == '\r')
      fputs("\\r", stdout);
    else if (c < 0x20 || c == 0x7f)
      printf("\\x%02x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static int tokenize(const char *dir, const char *text, size_t len, bool ids_only, oc_error *e) {
  rt_tokenizer *t;
  if (rt_tokenizer_load(dir, &t, e))
    return -1;
  int32_t *ids;
  size_t n;
  if (rt_tokenizer_encode(t, text, len, &ids, &n, e)) {
    rt_tokenizer_free(t);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (ids_only) {
      printf(i ? ",%d" : "%d", ids[i]);
      continue;
    }
    size_t piece_len;
    const char *piece = rt_tokenizer_bytes(t, ids[i], &piece_len);
    printf("%d\t", ids[i]);
    put_piece(piece, piece_len);
    putchar('\n');
  }
  if (ids_only)
    putchar('\n');
  free(ids);
  rt_tokenizer_free(t);
  return fflush(stdout) ? oc_fail(e, "standard output: cannot write: %s", strerror(errno)) : 0;
}

int cmd_tokenize(int argc, char **argv) {
  const char *dir = drv_default_model(), *file = NULL, *text = NULL;
  bool ids_only = false, allow_invalid = false;
  const cli_option opts[] = {
      CLI_OPT_STRING("-m", "--model", &dir),
      CLI_OPT_STRING("-f", "--file", &file),
      CLI_OPT_FLAG(NULL, "--ids-only", &ids_only),
      CLI_OPT_FLAG(NULL, "--allow-invalid-utf8", &allow_invalid),
      {0},
  };
  oc_error e = {{0}};
  int parsed = cli_parse(argc, argv, opts, &text, &e);
  if (!parsed && !text == !file)
    parsed = oc_fail(&e, "give either TEXT or -f FILE");
  char *data = NULL;
  size_t len = text ? strlen(text) : 0;
  int failed = !parsed && ((file && cli_read_text(file, allow_invalid, &data, &len, &e)) ||
                           tokenize(dir, file ? data : text, len, ids_only, &e));
  free(data);
  return cli_exit("tokenize", usage, parsed, failed, &e);
}
