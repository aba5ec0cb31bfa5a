/* The generation front end (session.h): what `olmoc run` and a compiled model
 * binary do once the model is open. A session keeps the token ids its KV
 * cache holds, so each chat turn feeds only what the cache lacks. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "olmoc/session.h"

/* The model's generation_config.json gives defaults; the command line wins. */
static rt_sampling resolve_sampling(const cli_generate_options *o, const cli_generator *g) {
  rt_sampling s = g->defaults;
  if (o->set_temp) s.temperature = o->sampling.temperature;
  if (o->set_top_k) s.top_k = (int)o->top_k;
  if (o->set_top_p) s.top_p = o->sampling.top_p;
  if (o->set_min_p) s.min_p = o->sampling.min_p;
  if (o->set_penalty) s.repetition_penalty = o->sampling.repetition_penalty;
  s.seed = o->seed_given ? (uint64_t)o->seed : (uint64_t)time(NULL);
  return s;
}

/* The first Ctrl-C asks generation to stop after the token in flight, so the
 * text so far and the timings are printed; the handler then steps aside, so
 * a second Ctrl-C (say, during a long prompt) ends the process at once. */
static volatile sig_atomic_t interrupted;
static void on_interrupt(int sig) {
  interrupted = 1;
  signal(sig, SIG_DFL);
}

typedef struct session {
  const cli_generate_options *o;
  const cli_generator *g;
  rt_sampler *sampler;
  rt_chat_template chat;
  int32_t *cached; /* [ctx]: the tokens in the KV cache, so a next turn reuses them */
  int64_t n_cached;
} session;

/* Streams each token's text as soon as it is whole UTF-8, and keeps the reply. */
typedef struct streamer {
  session *s;
  rt_detokenizer detok;
  char *reply; /* everything streamed this turn */
  size_t len, cap;
} streamer;

static void emit(streamer *st, const char *text, size_t n) {
  fwrite(text, 1, n, stdout);
  fflush(stdout);
  if (st->len + n + 1 > st->cap) {
    size_t cap = 2 * (st->len + n + 1);
    char *grown = realloc(st->reply, cap);
    if (!grown)
      return; /* the reply is on screen; only the conversation's record loses it */
    st->reply = grown, st->cap = cap;
  }
  memcpy(st->reply + st->len, text, n);
  st->len += n;
  st->reply[st->len] = '\0';
}

static int on_token(void *user, int32_t id) {
  streamer *st = user;
  session *s = st->s;
  if (s->n_cached < s->g->model->ctx)
    s->cached[s->n_cached++] = id;
  size_t n = 0;
  rt_tokenizer_bytes(st->detok.t, id, &n);
  size_t need = 3 * n + 3; /* each stray byte may become a 3-byte U+FFFD */
  char buf[1024], *text = need <= sizeof buf ? buf : malloc(need);
  if (text) {
    emit(st, text, rt_detokenizer_push(&st->detok, id, text, need));
    if (text != buf)
      free(text);
  }
  return interrupted;
}

static const char *stop_reason(rt_stop s) {
  switch (s) {
  case RT_STOP_EOS: return "end of sequence";
  case RT_STOP_LENGTH: return "token limit";
  case RT_STOP_CONTEXT: return "context full";
  case RT_STOP_CALLER: return "interrupted";
  }
  return "?";
}

static void print_timings(const cli_generator *m, const rt_generation_stats *s) {
  fprintf(stderr,
          "\n\nload: %.0f ms | prompt: %lld tokens, %.1f tok/s | generation: %lld tokens, "
          "%.1f tok/s | stop: %s\n",
          1e3 * m->load_seconds, (long long)s->prompt_tokens,
          s->prompt_seconds > 0 ? (double)s->prompt_tokens / s->prompt_seconds : 0.0,
          (long long)s->generated_tokens,
          s->generate_seconds > 0 ? (double)s->generated_tokens / s->generate_seconds : 0.0,
          stop_reason(s->stop));
}

/* Encodes text, keeps the longest prefix the KV cache already holds (a chat
 * turn repeats the whole conversation), and generates after it. */
static int respond(session *s, const char *text, streamer *st, oc_error *e) {
  int32_t *ids = NULL;
  size_t n = 0;
  if (rt_tokenizer_encode(s->g->tokenizer, text, strlen(text), &ids, &n, e))
    return -1;
  int64_t keep = 0;
  while (keep < s->n_cached && keep + 1 < (int64_t)n && s->cached[keep] == ids[keep])
    keep++;
  s->g->model->rewind(s->g->model->self, keep);
  int64_t fits = s->g->model->ctx - keep < (int64_t)n - keep ? s->g->model->ctx - keep : (int64_t)n - keep;
  memcpy(s->cached + keep, ids + keep, (size_t)fits * sizeof *ids);
  s->n_cached = keep + fits;

  rt_generation g = {.max_new = s->o->tokens, .eos = s->g->eos, .n_eos = s->g->n_eos,
                     .on_token = on_token, .user = st};
  st->s = s;
  rt_detokenizer_init(&st->detok, s->g->tokenizer);
  rt_generation_stats stats;
  int rc = rt_generate(s->g->model, s->sampler, ids + keep, (int64_t)n - keep, &g, &stats, e);
  char tail[64];
  emit(st, tail, rt_detokenizer_flush(&st->detok, tail, sizeof tail));
  /* What the cache holds is what it was fed: the last sampled token never was. */
  s->n_cached = s->g->model->position(s->g->model->self);
  if (!rc)
    print_timings(s->g, &stats);
  free(ids);
  return rc;
}

/* Reads one line from a terminal; NULL at end of input or on an empty line. */
static char *read_line(void) {
  char *line = NULL;
  size_t cap = 0;
  fprintf(stderr, "> ");
  ssize_t n = getline(&line, &cap, stdin);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = '\0';
  if (n <= 0) {
    free(line);
    return NULL;
  }
  return line;
}

#define MAX_TURNS 256

/* A conversation: one turn with `first`, or turns read from the terminal. */
static int converse(session *s, const char *first, oc_error *e) {
  rt_chat_message turns[MAX_TURNS];
  char *owned[MAX_TURNS] = {0}; /* strings this function allocated, by turn */
  size_t n = 0;
  if (s->o->system)
    turns[n++] = (rt_chat_message){"system", s->o->system};
  int rc = 0;
  while (!rc && !interrupted && n + 2 <= MAX_TURNS) {
    const char *said = first;
    if (!first && !(said = owned[n] = read_line()))
      break;
    turns[n++] = (rt_chat_message){"user", said};
    char *prompt = NULL;
    streamer st = {0};
    rc = rt_chat_render(&s->chat, turns, n, true, &prompt, e) || respond(s, prompt, &st, e);
    free(prompt);
    owned[n] = st.reply;
    turns[n++] = (rt_chat_message){"assistant", st.reply ? st.reply : ""};
    if (first)
      break;
  }
  for (size_t i = 0; i < MAX_TURNS; i++)
    free(owned[i]);
  return rc;
}

int cli_generate(const cli_generate_options *o, const cli_generator *g, oc_error *e) {
  session s = {.o = o, .g = g};
  char *piped = NULL;
  int rc = -1;
  rt_sampling sampling = resolve_sampling(o, g);
  if (rt_sampler_new(&sampling, g->model->vocab, &s.sampler, e))
    goto done;
  if (!(s.cached = malloc((size_t)g->model->ctx * sizeof *s.cached))) {
    oc_fail(e, "out of memory");
    goto done;
  }
  if (!o->seed_given && sampling.temperature > 0)
    fprintf(stderr, "seed: %llu\n", (unsigned long long)sampling.seed);
  bool chat = o->chat || o->chat_template;
  if (chat && (o->chat_template ? rt_chat_template_named(o->chat_template, &s.chat, e)
                                : g->chat_template(g->ctx, &s.chat, e)))
    goto done;
  const char *prompt = o->prompt;
  if (!prompt && !(chat && isatty(STDIN_FILENO))) {
    if (isatty(STDIN_FILENO)) {
      oc_fail(e, "no prompt: give -p TEXT, pipe one in, or use --chat on a terminal");
      goto done;
    }
    size_t len;
    if (cli_read_file("-", &piped, &len, e))
      goto done;
    prompt = piped;
  }
  signal(SIGINT, on_interrupt);
  if (chat)
    rc = converse(&s, prompt, e);
  else {
    streamer st = {0};
    fputs(prompt, stdout);
    rc = respond(&s, prompt, &st, e);
    free(st.reply);
  }
done:
  free(piped);
  free(s.cached);
  rt_sampler_free(s.sampler);
  return rc;
}

int cli_generate_status(int status) { return status == 0 && interrupted ? CLI_INTERRUPTED : status; }
