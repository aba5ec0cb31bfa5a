/* The main of a compiled model binary (linked by `olmoc compile`, with the
 * kernels and the table olmoc_aot_image it generates): checks the CPU, loads
 * the packed weights (inside the binary, beside it, or --weights) and
 * generates with the same options and output as `olmoc run`. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "olmoc/aot.h"
#include "olmoc/session.h"

extern const rt_aot_image olmoc_aot_image;

static const char usage[] =
    "usage: %s [-p PROMPT] [options]\n"
    "\n"
    "Generates text after PROMPT (or standard input when it is not a terminal)\n"
    "and streams it to standard output; timings go to standard error.\n"
    "Compiled by olmoc for CPU %s.\n"
    "\n"
    "options:\n" CLI_GENERATE_USAGE
    "  --ctx N                 KV cache positions (default: what the model was compiled for;\n"
    "                          also -c, --ctx-size)\n"
    "  -t, --threads N         threads (default: all cores)\n"
    "  --mmap                  map the weights instead of reading them (faster start; their\n"
    "                          checksums are not verified)\n"
    "  --no-mmap               read the weights into memory (the default)\n"
    "  --weights FILE          the packed weights (default: inside this binary, else\n"
    "                          this binary's path + .weights)\n"
    "  -q, --quiet             no progress on standard error (it shows for steps over 1 s)\n"
    "  -h, --help              show this help\n";

typedef struct options {
  cli_generate_options gen;
  long ctx, threads;
  bool mmap, no_mmap, quiet;
  const char *weights;
} options;

static int no_chat_template(void *ctx, rt_chat_template *t, oc_error *e) {
  const rt_aot_model *m = ctx;
  if (!m->meta.has_chat)
    return oc_fail(e, "%s had no chat template olmoc renders when it was compiled: use "
                   "--chat-template olmo2", m->meta.model);
  *t = m->meta.chat;
  return 0;
}

static int run(const options *o, const char *self, oc_error *e) {
  int cores = rt_default_threads(); /* more only wait on each other at every barrier */
  if (o->threads > cores)
    fprintf(stderr, "%s: warning: -t %ld: this machine runs %d threads at once; using %d\n", self, o->threads,
            cores, cores);
  oc_progress_bar bar;
  rt_aot_options ao = {.binary = self, .weights = o->weights, .load = o->mmap ? RT_PACK_MMAP : RT_PACK_READ,
                       .ctx = o->ctx, .threads = o->threads > cores ? cores : (int)o->threads,
                       .progress = oc_progress_stderr(&bar, o->quiet)};
  rt_aot_model *m;
  if (rt_aot_open(&olmoc_aot_image, &ao, &m, e))
    return -1;
  cli_generator g = {.model = &m->model, .tokenizer = m->tokenizer, .eos = m->meta.eos,
                     .n_eos = m->meta.n_eos, .defaults = m->meta.sampling,
                     .chat_template = no_chat_template, .ctx = m, .load_seconds = m->load_seconds};
  int rc = cli_generate(&o->gen, &g, e);
  rt_aot_close(m);
  return rc;
}

int main(int argc, char **argv) {
  const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0)
    self[n] = '\0';
  else
    snprintf(self, sizeof self, "%s", argv[0]);
  options o = {.gen.tokens = 256};
  const cli_option opts[] = {
      CLI_GENERATE_OPTIONS(&o.gen),
      CLI_OPT_INT(NULL, "--ctx", &o.ctx, 1, 1 << 24, NULL),
      CLI_OPT_INT("-c", "--ctx-size", &o.ctx, 1, 1 << 24, NULL),
      CLI_OPT_INT("-t", "--threads", &o.threads, 1, 1024, NULL),
      CLI_OPT_FLAG(NULL, "--mmap", &o.mmap),
      CLI_OPT_FLAG(NULL, "--no-mmap", &o.no_mmap),
      CLI_OPT_STRING(NULL, "--weights", &o.weights),
      CLI_OPT_FLAG("-q", "--quiet", &o.quiet),
      {0},
  };
  oc_error e = {{0}};
  int parsed = cli_parse(argc, argv, opts, NULL, &e);
  if (!parsed && o.mmap && o.no_mmap)
    parsed = oc_fail(&e, "--mmap and --no-mmap: give one");
  if (parsed == 1) {
    printf(usage, name, olmoc_aot_image.cpu);
    return 0;
  }
  if (parsed < 0) {
    cli_usage_error(name, e.msg);
    return 2;
  }
  if (run(&o, self, &e)) {
    fprintf(stderr, "%s: %s\n", name, e.msg);
    return 1;
  }
  return cli_generate_status(0);
}
