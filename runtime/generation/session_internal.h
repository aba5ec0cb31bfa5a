/* Shared by the generation front end's files: session.c (the options, one
 * prompt, generating a reply on the session's KV cache), reply_stream.c
 * (what a reply prints as it is generated: text held back at stop strings,
 * per-token JSON and log-probabilities) and conversation.c (chat turns and
 * the interactive loop). */
#ifndef OLMOC_RUNTIME_SESSION_INTERNAL_H
#define OLMOC_RUNTIME_SESSION_INTERNAL_H

#include <stdio.h>

#include "olmoc/session.h"

typedef struct session {
  const cli_generate_options *o;
  const cli_generator *g;
  const char *system; /* --system or --system-prompt-file's text, or NULL */
  rt_sampler *sampler;
  rt_chat_template chat;
  int32_t *cached; /* [ctx]: the tokens in the KV cache, so a next turn reuses them */
  int64_t n_cached;
} session;

/* A generated token not yet reported (--json, --n-probs): its text is
 * text[start, end) of the reply, its top-n alternatives top[0, n_probs). */
typedef struct stream_token {
  int32_t id;
  size_t start, end;
  double logprob;
} stream_token;

typedef struct stream_alternative {
  int32_t id;
  double logprob;
} stream_alternative;

/* A reply as it streams out. Invariant: no stop string can begin before
 * `released`, so text[0, released) is printed and text after it is held back
 * only while it could still be the start of a stop string. */
typedef struct reply_stream {
  const rt_tokenizer *t;
  const cli_list *stop;
  bool json;        /* a JSON object per token on stdout instead of the text */
  int n_probs;      /* top alternatives reported per token */
  bool per_token;   /* json or n_probs: tokens are reported one by one */
  rt_detokenizer detok;
  char *text;       /* the reply so far, NUL-terminated */
  size_t len, cap, released;
  bool stopped;     /* a stop string ended it: text ends before it */
  int write_error;  /* errno of the first write to stdout that failed (the reader gone, a full disk), or 0 */
  int32_t vocab;
  float *logits;    /* [vocab]: this step's logits as the model gave them */
  stream_token *tokens; /* [n_tokens] not yet reported, in order */
  stream_alternative *top; /* [n_tokens * n_probs] */
  size_t n_tokens, cap_tokens;
} reply_stream;

int stream_init(reply_stream *r, const session *s, oc_error *e);
void stream_free(reply_stream *r);
/* This step's logits, as the model gave them, for the next token's report. */
void stream_logits(reply_stream *r, const float *logits);
/* A generated token: streams what it releases; 1 when it completes a stop
 * string or its text cannot be written (write_error: generating more would
 * be for nobody). */
int stream_token_add(reply_stream *r, int32_t id);
/* The end of the reply: whatever was held back goes out (unless stopped). */
void stream_finish(reply_stream *r);

/* s as a JSON string, quoted, to f (the model binary links no JSON writer). */
void json_string(FILE *f, const char *s, size_t n);
/* The text of token id alone, as whole UTF-8 (stray bytes as U+FFFD), quoted. */
void token_string(FILE *f, const rt_tokenizer *t, int32_t id);

/* Generates the reply to text (n ids) after the longest prefix of it that
 * the KV cache holds; r streams it. Prints --verbose-prompt's lines. */
int session_generate(session *s, const char *text, const int32_t *ids, size_t n, reply_stream *r,
                     rt_generation_stats *stats, oc_error *e);
/* Forgets the KV cache: the next reply is computed from nothing. */
void session_rewind(session *s);
/* The timings line on stderr; with_load: the load time leads it. */
void session_timings(const session *s, const rt_generation_stats *st, const reply_stream *r, bool with_load);
/* Ctrl-C from now on: the first stops the reply in flight at its token, the
 * second ends the process; one before this call is forgotten. */
void session_arm_interrupt(void);

/* A chat: one turn with `first`, or (first NULL) turns read on the terminal. */
int session_converse(session *s, const char *first, oc_error *e);

#endif
