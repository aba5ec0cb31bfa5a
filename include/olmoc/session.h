/* The generation front end shared by `olmoc run` and compiled model binaries:
 * once a model is open, its options (-p, -n, sampling, --chat, ...), the
 * prompt from the command line or standard input, text streamed as it is
 * generated, timings at the end, and multi-turn chat on a terminal. It needs
 * only the runtime: no LLVM, no JSON. */
#ifndef OLMOC_SESSION_H
#define OLMOC_SESSION_H

#include "olmoc/args.h"
#include "olmoc/chat.h"
#include "olmoc/generate.h"
#include "olmoc/sampler.h"
#include "olmoc/tokenizer.h"

typedef struct cli_generate_options {
  const char *prompt, *chat_template, *system;
  long tokens, top_k, seed;
  bool chat, seed_given;
  rt_sampling sampling; /* the values given on the command line */
  bool set_temp, set_top_k, set_top_p, set_min_p, set_penalty;
} cli_generate_options;

#define CLI_GENERATE_OPTIONS(o)                                                                     \
  CLI_OPT_STRING("-p", "--prompt", &(o)->prompt),                                                  \
      CLI_OPT_INT("-n", "--tokens", &(o)->tokens, -1, 1 << 30, NULL),                              \
      CLI_OPT_FLOAT(NULL, "--temp", &(o)->sampling.temperature, 0, 100, &(o)->set_temp),           \
      CLI_OPT_INT(NULL, "--top-k", &(o)->top_k, 0, 1 << 24, &(o)->set_top_k),                      \
      CLI_OPT_FLOAT(NULL, "--top-p", &(o)->sampling.top_p, 0, 1, &(o)->set_top_p),                 \
      CLI_OPT_FLOAT(NULL, "--min-p", &(o)->sampling.min_p, 0, 1, &(o)->set_min_p),                 \
      CLI_OPT_FLOAT(NULL, "--repeat-penalty", &(o)->sampling.repetition_penalty, 0.01, 100,        \
                    &(o)->set_penalty),                                                            \
      CLI_OPT_INT(NULL, "--seed", &(o)->seed, 0, 9e18, &(o)->seed_given),                          \
      CLI_OPT_FLAG(NULL, "--chat", &(o)->chat),                                                    \
      CLI_OPT_STRING(NULL, "--chat-template", &(o)->chat_template),                                \
      CLI_OPT_STRING(NULL, "--system", &(o)->system)

#define CLI_GENERATE_USAGE                                                                          \
  "  -p, --prompt TEXT       the prompt\n"                                                         \
  "  -n, --tokens N          generate at most N tokens (default 256; -1: until EOS or context)\n" \
  "  --temp X                temperature; 0 is greedy (default: generation_config.json, else 0)\n" \
  "  --top-k K               keep the K most likely tokens (0: off)\n"                             \
  "  --top-p P               keep the smallest set with probability >= P (1: off)\n"               \
  "  --min-p P               keep tokens at least P times as likely as the best (0: off)\n"        \
  "  --repeat-penalty X      penalize tokens already seen (1: off)\n"                              \
  "  --seed S                random seed (default: from the clock, printed)\n"                     \
  "  --chat                  apply the model's chat template; interactive on a terminal\n"         \
  "  --chat-template NAME    use a built-in template (olmo2) instead of the model's\n"             \
  "  --system TEXT           a system message for --chat\n"

/* An open model, as generation needs it. */
typedef struct cli_generator {
  rt_model *model;
  const rt_tokenizer *tokenizer;
  const int32_t *eos; /* [n_eos] */
  int n_eos;
  rt_sampling defaults; /* the model's generation_config.json, or greedy */
  /* The model's own chat template, asked for when --chat needs one and no
   * --chat-template names it: fills t, or fails saying why there is none. */
  int (*chat_template)(void *ctx, rt_chat_template *t, oc_error *e);
  void *ctx;
  double load_seconds; /* for the timings line */
} cli_generator;

/* Generates as the options say: one prompt (or standard input), or a chat.
 * Ctrl-C stops it cleanly: the text so far, then the timings. */
int cli_generate(const cli_generate_options *o, const cli_generator *g, oc_error *e);

/* The exit status after a generation: STATUS, or CLI_INTERRUPTED (128 +
 * SIGINT, as shells report it) when Ctrl-C stopped a generation that
 * otherwise succeeded, so scripts can tell a cut-short output. */
#define CLI_INTERRUPTED 130
int cli_generate_status(int status);

#endif
