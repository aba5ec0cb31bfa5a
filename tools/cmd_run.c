/* `olmoc run`: generate text from a prompt, streamed to stdout as it is
 * produced, with timings on stderr at the end; with --chat, the prompt is
 * wrapped in the model's chat template, and with no prompt on a terminal a
 * multi-turn conversation runs on one KV cache. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "model.h"
#include "olmoc/chat.h"

static const char usage[] =
    "usage: olmoc run [-m MODEL] [-p PROMPT] [options]\n"
    "\n"
    "Generates text after PROMPT (or standard input when it is not a terminal)\n"
    "and streams it to standard output; timings go to standard error.\n"
    "\n"
    "options:\n"
    "  -m, --model DIR         checkpoint directory (default: the bundled models/olmo2-tiny)\n"
    "  -p, --prompt TEXT       the prompt\n"
    "  -n, --tokens N          generate at most N tokens (default 256; -1: until EOS or context)\n"
    "  --temp X                temperature; 0 is greedy (default: generation_config.json, else 0)\n"
    "  --top-k K               keep the K most likely tokens (0: off)\n"
    "  --top-p P               keep the smallest set with probability >= P (1: off)\n"
    "  --min-p P               keep tokens at least P times as likely as the best (0: off)\n"
    "  --repeat-penalty X      penalize tokens already seen (1: off)\n"
    "  --seed S                random seed (default: from the clock, printed)\n"
    "  --ctx N                 KV cache positions (default: the model's context)\n"
    "  -t, --threads N         threads of the JIT (default: all cores)\n"
    "  -O0, -O1, -O2           pass pipeline before running (default -O2; `olmoc passes`)\n"
    "  --passes=A,B            run these passes instead\n"
    "  --dtype q8              int8 matmul weights, quantized at load (JIT only;\n"
    "                          default: the checkpoint's dtype)\n"
    "  --emit-llvm DIR         write each JIT kernel's optimized LLVM IR to DIR\n"
    "  --backend B             jit (default: LLVM kernels, any pipeline) or interp (the\n"
    "                          reference interpreter, one thread, any pipeline)\n"
    "  --target T              the JIT's instruction set: native (default) or avx2\n"
    "  --chat                  apply the model's chat template; interactive on a terminal\n"
    "  --chat-template NAME    use a built-in template (olmo2) instead of the model's\n"
    "  --system TEXT           a system message for --chat\n"
    "  -h, --help              show this help\n";

typedef struct run_options {
  const char *model, *prompt, *chat_template, *system;
  long tokens, ctx, top_k, seed;
  bool chat, seed_given;
  rt_sampling sampling; /* the values given on the command line */
  cli_pipeline pipeline;
  bool set_temp, set_top_k, set_top_p, set_min_p, set_penalty;
} run_options;

/* The model's generation_config.json gives defaults; the command line wins. */
static int resolve_sampling(const run_options *o, const char *dir, rt_sampling *s, oc_error *e) {
  *s = rt_sampling_default();
  bool found;
  if (rt_sampling_load(dir, s, &found, e))
    return -1;
  if (o->set_temp) s->temperature = o->sampling.temperature;
  if (o->set_top_k) s->top_k = (int)o->top_k;
  if (o->set_top_p) s->top_p = o->sampling.top_p;
  if (o->set_min_p) s->min_p = o->sampling.min_p;
  if (o->set_penalty) s->repetition_penalty = o->sampling.repetition_penalty;
  s->seed = o->seed_given ? (uint64_t)o->seed : (uint64_t)time(NULL);
  return 0;
}

static volatile sig_atomic_t interrupted;
static void on_interrupt(int sig) { (void)sig, interrupted = 1; }

typedef struct session {
  const run_options *o;
  cli_model m;
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
  if (s->n_cached < s->m.model.ctx)
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

static void print_timings(const cli_model *m, const rt_generation_stats *s) {
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
  if (rt_tokenizer_encode(s->m.tokenizer, text, strlen(text), &ids, &n, e))
    return -1;
  int64_t keep = 0;
  while (keep < s->n_cached && keep + 1 < (int64_t)n && s->cached[keep] == ids[keep])
    keep++;
  s->m.model.rewind(s->m.model.self, keep);
  int64_t fits = s->m.model.ctx - keep < (int64_t)n - keep ? s->m.model.ctx - keep : (int64_t)n - keep;
  memcpy(s->cached + keep, ids + keep, (size_t)fits * sizeof *ids);
  s->n_cached = keep + fits;

  int32_t eos[OLMO2_MAX_EOS];
  for (int i = 0; i < s->m.config.n_eos; i++)
    eos[i] = (int32_t)s->m.config.eos_token_id[i];
  rt_generation g = {.max_new = s->o->tokens, .eos = eos, .n_eos = s->m.config.n_eos,
                     .on_token = on_token, .user = st};
  st->s = s;
  rt_detokenizer_init(&st->detok, s->m.tokenizer);
  rt_generation_stats stats;
  int rc = rt_generate(&s->m.model, s->sampler, ids + keep, (int64_t)n - keep, &g, &stats, e);
  char tail[64];
  emit(st, tail, rt_detokenizer_flush(&st->detok, tail, sizeof tail));
  /* What the cache holds is what it was fed: the last sampled token never was. */
  s->n_cached = s->m.model.position(s->m.model.self);
  if (!rc)
    print_timings(&s->m, &stats);
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

static int run(const run_options *o, oc_error *e) {
  session s = {.o = o};
  const char *dir = o->model ? o->model : cli_default_model();
  char *piped = NULL;
  int rc = -1;
  rt_sampling sampling;
  if (cli_model_open(&s.m, dir, o->ctx, &o->pipeline, true, e) || resolve_sampling(o, dir, &sampling, e) ||
      rt_sampler_new(&sampling, s.m.model.vocab, &s.sampler, e))
    goto done;
  if (!(s.cached = malloc((size_t)s.m.model.ctx * sizeof *s.cached))) {
    oc_fail(e, "out of memory");
    goto done;
  }
  if (!o->seed_given && sampling.temperature > 0)
    fprintf(stderr, "seed: %llu\n", (unsigned long long)sampling.seed);
  bool chat = o->chat || o->chat_template;
  if (chat && (o->chat_template ? rt_chat_template_named(o->chat_template, &s.chat, e)
                                : rt_chat_template_load(dir, &s.chat, e)))
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
  cli_model_close(&s.m);
  return rc;
}

int cmd_run(int argc, char **argv) {
  run_options o = {.tokens = 256, .pipeline.backend = "jit"};
  const cli_option opts[] = {
      CLI_PIPELINE_OPTIONS(&o.pipeline),
      CLI_OPT_STRING("-m", "--model", &o.model),
      CLI_OPT_STRING("-p", "--prompt", &o.prompt),
      CLI_OPT_INT("-n", "--tokens", &o.tokens, -1, 1 << 30, NULL),
      CLI_OPT_FLOAT(NULL, "--temp", &o.sampling.temperature, 0, 100, &o.set_temp),
      CLI_OPT_INT(NULL, "--top-k", &o.top_k, 0, 1 << 24, &o.set_top_k),
      CLI_OPT_FLOAT(NULL, "--top-p", &o.sampling.top_p, 0, 1, &o.set_top_p),
      CLI_OPT_FLOAT(NULL, "--min-p", &o.sampling.min_p, 0, 1, &o.set_min_p),
      CLI_OPT_FLOAT(NULL, "--repeat-penalty", &o.sampling.repetition_penalty, 0.01, 100, &o.set_penalty),
      CLI_OPT_INT(NULL, "--seed", &o.seed, 0, 9e18, &o.seed_given),
      CLI_OPT_INT(NULL, "--ctx", &o.ctx, 1, 1 << 24, NULL),
      CLI_OPT_FLAG(NULL, "--chat", &o.chat),
      CLI_OPT_STRING(NULL, "--chat-template", &o.chat_template),
      CLI_OPT_STRING(NULL, "--system", &o.system),
      {0},
  };
  oc_error e = {{0}};
  int parsed = cli_parse(argc, argv, opts, NULL, &e);
  return cli_exit("run", usage, parsed, !parsed && run(&o, &e), &e);
}
