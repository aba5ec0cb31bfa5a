/* `olmoc run`: generate text from a prompt, streamed to stdout as it is
 * produced, with timings on stderr at the end; with --chat, the prompt is
 * wrapped in the model's chat template, and with no prompt on a terminal a
 * multi-turn conversation runs on one KV cache (runtime/generation/ does it
 * all: this file is the options of the JIT's side). */
#include "cli.h"
#include "olmoc/session.h"
#include "pipeline_args.h"

static const char usage[] =
    "usage: olmoc run [-m MODEL] [-p PROMPT] [options]\n"
    "\n"
    "Generates text after PROMPT (or standard input when it is not a terminal)\n"
    "and streams it to standard output; timings go to standard error.\n"
    "\n"
    "options:\n"
    "  -m, --model DIR         checkpoint directory (default: the bundled models/olmo2-tiny)\n"
    CLI_GENERATE_USAGE
    "  --ctx N                 KV cache positions (default: the model's context; also\n"
    "                          -c, --ctx-size)\n"
    "  --no-mmap               read the checkpoint into memory instead of mapping it\n"
    "  -t, --threads N         threads of the JIT (default: all cores)\n"
    CLI_PIPELINE_USAGE
    "  --backend B             jit (default: LLVM kernels, any pipeline) or interp (the\n"
    "                          reference interpreter, one thread, any pipeline)\n"
    "  -h, --help              show this help\n";

typedef struct run_options {
  const char *model;
  cli_generate_options gen;
  drv_request pipeline;
  bool quiet;
} run_options;

static int model_chat_template(void *ctx, rt_chat_template *t, oc_error *e) {
  return rt_chat_template_load(ctx, t, e);
}

static int run(run_options *o, oc_error *e) {
  const char *dir = o->model ? o->model : drv_default_model();
  drv_config c;
  drv_model m;
  oc_progress_bar bar;
  o->pipeline.progress = oc_progress_stderr(&bar, o->quiet);
  if (cli_configure("run", &o->pipeline, DRV_JIT, &c, e) || drv_model_open(&m, dir, &c, true, e))
    return -1;
  cli_generator g = {.model = &m.model, .tokenizer = m.tokenizer, .eos = m.eos, .n_eos = m.config.n_eos,
                     .defaults = rt_sampling_default(), .chat_template = model_chat_template,
                     .ctx = (void *)dir, .load_seconds = m.load_seconds};
  bool found;
  int rc = rt_sampling_load(dir, &g.defaults, &found, e) || cli_generate(&o->gen, &g, e);
  drv_model_close(&m);
  return rc ? -1 : 0;
}

int cmd_run(int argc, char **argv) {
  run_options o = {.gen.tokens = 256};
  const cli_option opts[] = {
      CLI_PIPELINE_OPTIONS(&o.pipeline),
      CLI_GENERATE_OPTIONS(&o.gen),
      CLI_OPT_STRING("-m", "--model", &o.model),
      CLI_OPT_INT(NULL, "--ctx", &o.pipeline.ctx, 1, 1 << 24, NULL),
      CLI_OPT_INT("-c", "--ctx-size", &o.pipeline.ctx, 1, 1 << 24, NULL),
      CLI_OPT_FLAG(NULL, "--no-mmap", &o.pipeline.no_mmap),
      CLI_OPT_FLAG("-q", "--quiet", &o.quiet),
      {0},
  };
  oc_error e = {{0}};
  int parsed = cli_parse(argc, argv, opts, NULL, &e);
  return cli_generate_status(cli_exit("run", usage, parsed, !parsed && run(&o, &e), &e));
}
