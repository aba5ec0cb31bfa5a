/* `olmoc tokenize`: show how a model's tokenizer splits text: one token per
 * line (id and the piece's text), or just the ids on one line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model.h"

static const char usage[] =
    "usage: olmoc tokenize [-m MODEL] (TEXT | -f FILE) [--ids-only]\n"
    "\n"
    "options:\n"
    "  -m, --model DIR   the model whose tokenizer.json to use (default: the bundled one)\n"
    "  -f, --file FILE   tokenize the raw bytes of FILE ('-': standard input)\n"
    "  --ids-only        print only the ids, comma-separated on one line\n"
    "  -h, --help        show this help\n";

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
  return fflush(stdout) ? oc_fail(e, "writing standard output failed") : 0;
}

int cmd_tokenize(int argc, char **argv) {
  oc_error e = {{0}};
  const char *dir = cli_default_model(), *file = NULL, *text = NULL;
  bool ids_only = false;
  int rc = 0;
  for (int i = 1; i < argc && !rc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(usage, stdout);
      return 0;
    } else if (!strcmp(a, "--ids-only"))
      ids_only = true;
    else if ((!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-f") || !strcmp(a, "--file")) && !v)
      rc = oc_fail(&e, "option '%s' needs a value", a);
    else if (!strcmp(a, "-m") || !strcmp(a, "--model"))
      dir = argv[++i];
    else if (!strcmp(a, "-f") || !strcmp(a, "--file"))
      file = argv[++i];
    else if (a[0] == '-' && a[1])
      rc = oc_fail(&e, "unknown option '%s'", a);
    else if (text)
      rc = oc_fail(&e, "give the text as one argument (quote it)");
    else
      text = a;
  }
  if (!rc && !text == !file)
    rc = oc_fail(&e, "give either TEXT or -f FILE");
  if (rc) {
    fprintf(stderr, "olmoc tokenize: %s\n%s", e.msg, usage);
    return 2;
  }
  char *data = NULL;
  size_t len = text ? strlen(text) : 0;
  rc = (file && cli_read_file(file, &data, &len, &e)) ||
       tokenize(dir, file ? data : text, len, ids_only, &e);
  free(data);
  if (rc)
    fprintf(stderr, "olmoc tokenize: %s\n", e.msg);
  return rc ? 1 : 0;
}
