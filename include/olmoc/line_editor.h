/* The line editor of interactive chat: libedit (BSD-licensed; GNU readline
 * is GPL-3 and would bind olmoc and every compiled model binary to the GPL)
 * on the terminal of standard input, with a history of the session's lines.
 * Editing and the prompt go to standard error, so standard output holds only
 * the replies. */
#ifndef OLMOC_LINE_EDITOR_H
#define OLMOC_LINE_EDITOR_H

#include "olmoc/error.h"

typedef struct cli_line_editor cli_line_editor;

/* name: the program's, for libedit's ~/.editrc sections. */
int cli_line_editor_open(cli_line_editor **out, const char *name, oc_error *e);
void cli_line_editor_close(cli_line_editor *l);

/* Reads one line after the prompt "> ", without its newline, into a
 * malloc'ed string (the caller frees it), and adds it to the history; NULL
 * at the end of input (Ctrl-D on an empty line). Ctrl-C clears the line
 * being typed, or on an empty line says how to leave. */
char *cli_line_editor_read(cli_line_editor *l);

#endif
