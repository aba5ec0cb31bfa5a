/* cli_line_editor on libedit: emacs keys (or the user's ~/.editrc), a history
 * of the session's lines, and Ctrl-C as a line editor's key rather than a
 * signal while a line is being typed (the terminal's ISIG is off in edit
 * mode only, so Ctrl-C during a reply still interrupts it). */
#include <errno.h>
#include <histedit.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "olmoc/alloc.h"
#include "olmoc/line_editor.h"

struct cli_line_editor {
  EditLine *el;
  History *history;
  char *locale; /* LC_CTYPE before open, restored at close */
};

static const char *prompt(EditLine *el) {
  (void)el;
  return "> ";
}

/* Ctrl-C: clears what is typed; on an empty line, says how to leave. */
static unsigned char clear_or_hint(EditLine *el, int ch) {
  (void)ch;
  const LineInfoW *li = el_wline(el);
  int len = (int)(li->lastchar - li->buffer), after = (int)(li->lastchar - li->cursor);
  if (len == 0) {
    fputs("\n(/exit or Ctrl-D to leave)", stderr);
    return CC_REDISPLAY;
  }
  el_cursor(el, after);
  el_deletestr(el, len);
  return CC_REFRESH;
}

int cli_line_editor_open(cli_line_editor **out, const char *name, oc_error *e) {
  cli_line_editor *l = *out = oc_calloc(1, sizeof *l);
  if (!l)
    return oc_fail(e, "out of memory for the line editor");
  /* libedit reads the terminal's bytes as characters of the user's locale */
  const char *was = setlocale(LC_CTYPE, NULL);
  l->locale = was ? oc_strdup(was) : NULL;
  setlocale(LC_CTYPE, "");
  HistEvent ev;
  if (!(l->el = el_init(name, stdin, stderr, stderr)) || !(l->history = history_init())) {
    cli_line_editor_close(l);
    *out = NULL;
    return oc_fail(e, "cannot start the line editor (libedit) on standard input");
  }
  history(l->history, &ev, H_SETSIZE, 1000);
  history(l->history, &ev, H_SETUNIQUE, 1);
  el_set(l->el, EL_EDITOR, "emacs");
  el_set(l->el, EL_SIGNAL, 1); /* window resizes, and the terminal restored on a fatal signal */
  el_set(l->el, EL_PROMPT, prompt);
  el_set(l->el, EL_HIST, history, l->history);
  el_set(l->el, EL_SETTY, "-d", "-isig", NULL);
  /* the wide call keeps these literals; the narrow one copies and leaks them */
  el_wset(l->el, EL_ADDFN, L"olmoc-clear-or-hint", L"clear the line, or say how to leave", clear_or_hint);
  el_set(l->el, EL_BIND, "^C", "olmoc-clear-or-hint", NULL);
  el_source(l->el, NULL); /* ~/.editrc, if there is one */
  return 0;
}

void cli_line_editor_close(cli_line_editor *l) {
  if (!l)
    return;
  if (l->history)
    history_end(l->history);
  if (l->el)
    el_end(l->el);
  if (l->locale)
    setlocale(LC_CTYPE, l->locale);
  free(l->locale);
  free(l);
}

char *cli_line_editor_read(cli_line_editor *l) {
  int n;
  const char *line;
  while (!(line = el_gets(l->el, &n)) && n < 0 && errno == EINTR) {
  }
  if (!line || n <= 0) {
    fputc('\n', stderr); /* the shell's prompt on a line of its own */
    return NULL;
  }
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    n--;
  char *copy = oc_malloc((size_t)n + 1);
  if (!copy)
    return NULL;
  memcpy(copy, line, (size_t)n);
  copy[n] = '\0';
  HistEvent ev;
  if (n > 0)
    history(l->history, &ev, H_ENTER, copy);
  return copy;
}
