/* The generation front end (session.h): what `olmoc run` and a compiled model
 * binary do once the model is open. A session keeps the token ids its KV
 * cache holds, so each chat turn feeds only what the cache lacks. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "session_internal.h"

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

void session_arm_interrupt(void) {
  interrupted = 0;
  signal(SIGINT, on_interrupt);
}

/* What the generation loop calls back: the session records the ids its KV
 * cache is fed, the stream prints. */
typedef struct sink {
  session *s;
  reply_stream *r;
} sink;

static int on_token(void *user, int32_t id) {
  sink *k = user;
  if (k->s->n_cached < k->s->g->model->ctx)
    k->s->cached[k->s->n_cached++] = id;
  return stream_token_add(k->r, id) || interrupted;
}

static void on_logits(void *user, const float *logits) { stream_logits(((sink *)user)->r, logits); }

static const char *stop_reason(const rt_generation_stats *s, const reply_stream *r) {
  if (r->stopped)
    return "stop string";
  switch (s->stop) {
  case RT_STOP_EOS: return "end of sequence";
  case RT_STOP_LENGTH: return "token limit";
  case RT_STOP_CONTEXT: return "context full";
  case RT_STOP_CALLER: return "interrupted";
  }
  return "?";
}

static double rate(int64_t tokens, double seconds) { return seconds > 0 ? (double)tokens / seconds : 0.0; }

void session_timings(const session *s, const rt_generation_stats *st, const reply_stream *r, bool with_load) {
  char load[64] = "";
  if (with_load)
    snprintf(load, sizeof load, "load: %.0f ms | ", 1e3 * s->g->load_seconds);
  fprintf(stderr,
          "\n\n%sprompt: %lld tokens, %.1f tok/s | ttft: %.0f ms | generation: %lld tokens, %.1f tok/s | "
          "stop: %s\n",
          load, (long long)st->prompt_tokens, rate(st->prompt_tokens, st->prompt_seconds),
          1e3 * st->first_token_seconds, (long long)st->generated_tokens,
          rate(st->generated_tokens, st->generate_seconds), stop_reason(st, r));
}

void session_rewind(session *s) {
  s->g->model->rewind(s->g->model->self, 0);
  s->n_cached = 0;
}

/* --verbose-prompt: the prompt as the model gets it, and its ids. */
static void print_prompt(const session *s, const char *text, const int32_t *ids, size_t n, int64_t cached) {
  fputs("prompt: ", stderr);
  json_string(stderr, text, strlen(text));
  fprintf(stderr, "\nprompt: %zu tokens, %lld of them already in the KV cache\n", n, (long long)cached);
  for (size_t i = 0; i < n; i++) {
    fprintf(stderr, "%8d ", ids[i]);
    token_string(stderr, s->g->tokenizer, ids[i]);
    fputc('\n', stderr);
  }
}

int session_generate(session *s, const char *text, const int32_t *ids, size_t n, reply_stream *r,
                     rt_generation_stats *stats, oc_error *e) {
  const rt_model *m = s->g->model;
  int64_t keep = 0;
  while (keep < s->n_cached && keep + 1 < (int64_t)n && s->cached[keep] == ids[keep])
    keep++;
  if (s->o->verbose_prompt)
    print_prompt(s, text, ids, n, keep);
  m->rewind(m->self, keep);
  int64_t fits = m->ctx - keep < (int64_t)n - keep ? m->ctx - keep : (int64_t)n - keep;
  memcpy(s->cached + keep, ids + keep, (size_t)fits * sizeof *ids);
  s->n_cached = keep + fits;

  sink k = {s, r};
  rt_generation g = {.max_new = s->o->tokens, .eos = s->g->eos, .n_eos = s->g->n_eos,
                     .ignore_eos = s->o->ignore_eos,
                     .on_token = on_token, .on_logits = r->per_token ? on_logits : NULL, .user = &k};
  int rc = rt_generate(m, s->sampler, ids + keep, (int64_t)n - keep, &g, stats, e);
  stream_finish(r);
  if (!rc && r->write_error) /* stopped at the first lost write, as for nobody to read */
    rc = oc_fail(e, "standard output: cannot write: %s", strerror(r->write_error));
  /* What the cache holds is what it was fed: the last sampled token never was. */
  s->n_cached = m->position(m->self);
  return rc;
}

/* One prompt, no template: the prompt echoed (unless asked not to), then the reply. */
static int complete(session *s, const char *prompt, oc_error *e) {
  int32_t *ids = NULL;
  size_t n = 0;
  reply_stream r;
  rt_generation_stats stats;
  if (stream_init(&r, s, e) || rt_tokenizer_encode(s->g->tokenizer, prompt, strlen(prompt), &ids, &n, e)) {
    stream_free(&r);
    return -1;
  }
  if (!s->o->no_display_prompt && !s->o->json)
    fputs(prompt, stdout);
  int rc = session_generate(s, prompt, ids, n, &r, &stats, e);
  if (!rc)
    session_timings(s, &stats, &r, true);
  stream_free(&r);
  free(ids);
  return rc;
}

/* -f and --system-prompt-file: the file's text, less one final newline, as
 * an editor leaves it (llama.cpp's -f does the same). */
static int read_text(const char *option, const char *path, char **text, oc_error *e) {
  size_t len;
  if (cli_read_file(path, text, &len, e))
    return oc_wrap(e, "%s", option);
  if (len && (*text)[len - 1] == '\n')
    (*text)[len - 1] = '\0';
  return 0;
}

static int check_options(const cli_generate_options *o, oc_error *e) {
  if (o->prompt && o->prompt_file)
    return oc_fail(e, "-p and -f both give the prompt: give one");
  if (o->system && o->system_file)
    return oc_fail(e, "--system and --system-prompt-file both give the system message: give one");
  for (int i = 0; i < o->stop.n; i++)
    if (!o->stop.item[i][0])
      return oc_fail(e, "--stop, --reverse-prompt: the empty string would stop before any text");
  return 0;
}

/* --mlock: what the process has mapped once the model is open (weights,
 * packed panels, arena, KV cache) stays in memory, each page locked as it is
 * first touched (MCL_ONFAULT: nothing is read in ahead for it). */
static void lock_memory(void) {
  if (!mlockall(MCL_CURRENT | MCL_ONFAULT))
    return;
  char limit[64] = "unlimited";
  struct rlimit rl;
  if (!getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY)
    snprintf(limit, sizeof limit, "%llu KiB", (unsigned long long)rl.rlim_cur / 1024);
  fprintf(stderr, "warning: --mlock: cannot lock the model in memory: %s (the limit, `ulimit -l`, is %s)\n",
          strerror(errno), limit);
}

int cli_generate(const cli_generate_options *o, const cli_generator *g, oc_error *e) {
  session s = {.o = o, .g = g, .system = o->system};
  char *piped = NULL, *system = NULL;
  int rc = -1;
  rt_sampling sampling = resolve_sampling(o, g);
  if (check_options(o, e) || (o->system_file && read_text("--system-prompt-file", o->system_file, &system, e)) ||
      rt_sampler_new(&sampling, g->model->vocab, &s.sampler, e))
    goto done;
  if (system)
    s.system = system;
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
  if (o->prompt_file) {
    if (read_text("-f", o->prompt_file, &piped, e))
      goto done;
    prompt = piped;
  } else if (!prompt && !(chat && isatty(STDIN_FILENO))) {
    if (isatty(STDIN_FILENO)) {
      oc_fail(e, "no prompt: give -p TEXT or -f FILE, pipe one in, or use --chat on a terminal");
      goto done;
    }
    size_t len;
    if (cli_read_file("-", &piped, &len, e))
      goto done;
    prompt = piped;
  }
  if (o->mlock)
    lock_memory();
  session_arm_interrupt();
  rc = chat ? session_converse(&s, prompt, e) : complete(&s, prompt, e);
done:
  free(piped);
  free(system);
  free(s.cached);
  rt_sampler_free(s.sampler);
  return rc;
}

int cli_generate_status(int status) { return status == 0 && interrupted ? CLI_INTERRUPTED : status; }
