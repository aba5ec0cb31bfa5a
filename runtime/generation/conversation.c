/* Chat (session_internal.h): the conversation as turns rendered by the chat
 * template, one reply per user turn, and on a terminal the interactive loop
 * with its commands. Invariant: turns[0] is the system message when there is
 * one, then user and assistant turns alternate; a full context drops the
 * oldest user/assistant pairs, never the system message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "olmoc/alloc.h"
#include "olmoc/line_editor.h"
#include "session_internal.h"

typedef struct conversation {
  rt_chat_message *turns; /* [n]; every content is malloc'ed and owned here */
  size_t n, cap;
  bool has_system;
  bool told_full; /* the context-full notice is given once */
} conversation;

static int push(conversation *c, const char *role, const char *content, size_t len, oc_error *e) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 16;
    rt_chat_message *t = oc_realloc(c->turns, cap * sizeof *t);
    if (!t)
      return oc_fail(e, "out of memory for the conversation");
    c->turns = t, c->cap = cap;
  }
  char *copy = oc_malloc(len + 1);
  if (!copy)
    return oc_fail(e, "out of memory for the conversation");
  memcpy(copy, content, len);
  copy[len] = '\0';
  c->turns[c->n++] = (rt_chat_message){role, copy};
  return 0;
}

/* Drops turns [at, at + count). */
static void drop(conversation *c, size_t at, size_t count) {
  if (!count)
    return;
  for (size_t i = at; i < at + count; i++)
    free((char *)c->turns[i].content);
  memmove(c->turns + at, c->turns + at + count, (c->n - at - count) * sizeof *c->turns);
  c->n -= count;
}

/* A new conversation: every turn but the system message goes. */
static void clear(conversation *c) { drop(c, c->has_system, c->n - c->has_system); }

static void release(conversation *c) {
  drop(c, 0, c->n);
  free(c->turns);
}

static int set_system(conversation *c, const char *text, oc_error *e) {
  clear(c);
  if (c->has_system)
    drop(c, 0, 1);
  c->has_system = false;
  if (!text || !*text)
    return 0;
  if (push(c, "system", text, strlen(text), e))
    return -1;
  c->has_system = true;
  return 0;
}

/* The conversation rendered with the assistant's opener, as ids. */
static int render(const session *s, const conversation *c, char **text, int32_t **ids, size_t *n, oc_error *e) {
  *ids = NULL;
  if (rt_chat_render(&s->chat, c->turns, c->n, true, text, e))
    return -1;
  return rt_tokenizer_encode(s->g->tokenizer, *text, strlen(*text), ids, n, e);
}

/* The room a reply should have: the -n budget, at most half the context. */
static int64_t reply_room(const session *s) {
  int64_t half = s->g->model->ctx / 2;
  return s->o->tokens >= 0 && s->o->tokens < half ? s->o->tokens : half;
}

/* A user turn and the reply to it. On a terminal a context too small for the
 * conversation drops its oldest turns, and a message too long even alone is
 * said so and forgotten: neither ends the chat. */
static int turn(session *s, conversation *c, const char *said, bool interactive, oc_error *e) {
  if (push(c, "user", said, strlen(said), e))
    return -1;
  char *text = NULL;
  int32_t *ids = NULL;
  size_t n = 0;
  int64_t ctx = s->g->model->ctx;
  for (;;) {
    if (render(s, c, &text, &ids, &n, e))
      goto fail;
    bool older = c->n - c->has_system >= 3; /* a user/assistant pair before this turn */
    if (!interactive || (int64_t)n + reply_room(s) <= ctx || !older)
      break;
    free(text), free(ids);
    text = NULL, ids = NULL;
    drop(c, c->has_system, 2);
    if (!c->told_full)
      fputs("(the context is full: the oldest turns are dropped from now on; the system message stays)\n",
            stderr);
    c->told_full = true;
  }
  if (interactive && (int64_t)n > ctx) {
    fprintf(stderr, "(the message is %zu tokens%s, more than the context's %lld: not sent)\n", n,
            c->has_system ? " with the system message" : "", (long long)ctx);
    drop(c, c->n - 1, 1);
    free(text), free(ids);
    return 0;
  }
  reply_stream r;
  rt_generation_stats stats;
  int rc = stream_init(&r, s, e) || session_generate(s, text, ids, n, &r, &stats, e) ||
           push(c, "assistant", r.text ? r.text : "", r.len, e);
  if (!rc)
    session_timings(s, &stats, &r, !interactive);
  stream_free(&r);
  free(text), free(ids);
  return rc;
fail:
  free(text), free(ids);
  return -1;
}

static const char help[] =
    "/system TEXT   set the system message (no TEXT: none) and start a new conversation\n"
    "/clear         start a new conversation (the system message stays)\n"
    "/help          this list\n"
    "/exit          leave (so does Ctrl-D on an empty line)\n"
    "Ctrl-C stops a reply; while typing, it clears the line.\n";

/* A line that starts with '/': 1 to leave, 0 to go on, -1 on an error. */
static int command(session *s, conversation *c, const char *line, oc_error *e) {
  size_t word = strcspn(line, " \t");
  const char *arg = line + word + strspn(line + word, " \t");
  if (word == 5 && !strncmp(line, "/exit", 5))
    return 1;
  if (word == 5 && !strncmp(line, "/help", 5))
    fputs(help, stderr);
  else if (word == 6 && !strncmp(line, "/clear", 6)) {
    clear(c);
    session_rewind(s);
    fputs("(a new conversation)\n", stderr);
  } else if (word == 7 && !strncmp(line, "/system", 7)) {
    if (set_system(c, arg, e))
      return -1;
    session_rewind(s);
    fputs(*arg ? "(system message set: a new conversation)\n" : "(no system message: a new conversation)\n",
          stderr);
  } else
    fprintf(stderr, "unknown command '%.*s': /help lists the commands\n", (int)word, line);
  return 0;
}

/* Turns read on the terminal until /exit or the end of input. */
static int interact(session *s, conversation *c, oc_error *e) {
  cli_line_editor *editor;
  if (cli_line_editor_open(&editor, "olmoc", e))
    return -1;
  fprintf(stderr, "load: %.0f ms\nolmoc chat: /help for commands, /exit or Ctrl-D to leave\n",
          1e3 * s->g->load_seconds);
  int rc = 0;
  for (char *line; !rc && (line = cli_line_editor_read(editor)); free(line)) {
    session_arm_interrupt(); /* a Ctrl-C that stopped the last reply (or came at the prompt) is spent */
    if (line[0] == '/')
      rc = command(s, c, line, e);
    else if (line[0])
      rc = turn(s, c, line, true, e);
  }
  session_arm_interrupt(); /* leaving by /exit or Ctrl-D is no interruption */
  cli_line_editor_close(editor);
  return rc < 0 ? -1 : 0;
}

int session_converse(session *s, const char *first, oc_error *e) {
  conversation c = {0};
  int rc = set_system(&c, s->system, e);
  if (!rc)
    rc = first ? turn(s, &c, first, false, e) : interact(s, &c, e);
  release(&c);
  return rc;
}
