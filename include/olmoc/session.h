/* The generation front end shared by `olmoc run` and compiled model binaries:
 * once a model is open, its options (-p, -n, sampling, --chat, ...), the
 * prompt from the command line, a file or standard input, text streamed as it
 * is generated (or one JSON object per token), timings at the end, and
 * multi-turn chat on a terminal with a line editor. It needs only the runtime
 * and libedit: no LLVM, no JSON library. */
#ifndef OLMOC_SESSION_H
#define OLMOC_SESSION_H

#include "olmoc/args.h"
#include "olmoc/chat.h"
#include "olmoc/generate.h"
#include "olmoc/sampler.h"
#include "olmoc/tokenizer.h"

typedef struct cli_generate_options {
  const char *prompt, *prompt_file, *chat_template, *system, *system_file;
  long tokens, top_k, seed, n_probs;
  bool chat, seed_given, no_display_prompt, ignore_eos, verbose_prompt, json, mlock;
  cli_list stop; /* -r, --reverse-prompt, --stop: one list, they mean the same */
  rt_sampling sampling; /* the values given on the command line */
  bool set_temp, set_top_k, set_top_p, set_min_p, set_penalty;
} cli_generate_options;

/* Second rows of a target are llama.cpp's spellings of the same option. */
#define CLI_GENERATE_OPTIONS(o)                                                                     \
  CLI_OPT_STRING("-p", "--prompt", &(o)->prompt), CLI_OPT_STRING("-f", "--file", &(o)->prompt_file), \
      CLI_OPT_INT("-n", "--tokens", &(o)->tokens, -1, 1 << 30, NULL),                              \
      CLI_OPT_INT(NULL, "--n-predict", &(o)->tokens, -1, 1 << 30, NULL),                           \
      CLI_OPT_FLOAT(NULL, "--temp", &(o)->sampling.temperature, 0, 100, &(o)->set_temp),           \
      CLI_OPT_INT(NULL, "--top-k", &(o)->top_k, 0, 1 << 24, &(o)->set_top_k),                      \
      CLI_OPT_FLOAT(NULL, "--top-p", &(o)->sampling.top_p, 0, 1, &(o)->set_top_p),                 \
      CLI_OPT_FLOAT(NULL, "--min-p", &(o)->sampling.min_p, 0, 1, &(o)->set_min_p),                 \
      CLI_OPT_FLOAT(NULL, "--repeat-penalty", &(o)->sampling.repetition_penalty, 0.01, 100,        \
                    &(o)->set_penalty),                                                            \
      CLI_OPT_INT(NULL, "--seed", &(o)->seed, 0, 9e18, &(o)->seed_given),                          \
      CLI_OPT_FLAG(NULL, "--ignore-eos", &(o)->ignore_eos),                                        \
      CLI_OPT_LIST(NULL, "--stop", &(o)->stop), CLI_OPT_LIST("-r", "--reverse-prompt", &(o)->stop), \
      CLI_OPT_FLAG(NULL, "--chat", &(o)->chat),                                                    \
      CLI_OPT_STRING(NULL, "--chat-template", &(o)->chat_template),                                \
      CLI_OPT_STRING(NULL, "--system", &(o)->system),                                              \
      CLI_OPT_STRING(NULL, "--system-prompt-file", &(o)->system_file),                             \
      CLI_OPT_FLAG(NULL, "--no-display-prompt", &(o)->no_display_prompt),                          \
      CLI_OPT_FLAG(NULL, "--verbose-prompt", &(o)->verbose_prompt),                                \
      CLI_OPT_FLAG(NULL, "--json", &(o)->json),                                                    \
      CLI_OPT_INT(NULL, "--n-probs", &(o)->n_probs, 0, 100, NULL),                                 \
      CLI_OPT_FLAG(NULL, "--mlock", &(o)->mlock)

#define CLI_GENERATE_USAGE                                                                          \
  "  -p, --prompt TEXT       the prompt\n"                                                         \
  "  -f, --file FILE         the prompt from FILE (one final newline dropped)\n"                   \
  "  -n, --tokens N          generate at most N tokens (default 256; -1: until EOS or context;\n"  \
  "                          also --n-predict)\n"                                                  \
  "  --temp X                temperature; 0 is greedy (default: generation_config.json, else 0)\n" \
  "  --top-k K               keep the K most likely tokens (0: off)\n"                             \
  "  --top-p P               keep the smallest set with probability >= P (1: off)\n"               \
  "  --min-p P               keep tokens at least P times as likely as the best (0: off)\n"        \
  "  --repeat-penalty X      penalize tokens already seen (1: off)\n"                              \
  "  --seed S                random seed (default: from the clock, printed)\n"                     \
  "  --ignore-eos            never sample the end-of-sequence token: go on to the limit\n"                               \
  "  --stop TEXT             stop when the output contains TEXT (not printed; may repeat;\n"      \
  "                          also -r, --reverse-prompt: in chat, back to the user)\n"             \
  "  --chat                  apply the model's chat template; interactive on a terminal\n"         \
  "  --chat-template NAME    use a built-in template (olmo2) instead of the model's\n"             \
  "  --system TEXT           a system message for --chat\n"                                        \
  "  --system-prompt-file F  the system message from file F\n"                                     \
  "  --no-display-prompt     do not echo the prompt before the generated text\n"                  \
  "  --verbose-prompt        print the prompt as rendered and its token ids to stderr\n"           \
  "  --json                  one JSON object per generated token on stdout instead of text\n"     \
  "  --n-probs N             also the N most likely tokens at each step, with their\n"            \
  "                          log-probabilities (the model's, before sampling; on stderr\n"        \
  "                          without --json)\n"                                                    \
  "  --mlock                 lock the model's memory once loaded, so none is paged out\n"

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
