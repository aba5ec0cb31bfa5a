/* The olmoc command: dispatches to one function per subcommand. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "olmoc/cleanup.h"
#include "olmoc/codegen.h"

static int print_version(void) {
  cg_host h;
  cg_host_detect(&h);
  printf("olmoc 0.1 (LLVM %s)\nhost cpu: %s%s%s%s%s%s\n", h.llvm_version, h.cpu,
         h.avx2 ? " avx2" : "", h.fma ? " fma" : "", h.avx512f ? " avx512f" : "",
         h.avx512bf16 ? " avx512bf16" : "", h.avx512vnni ? " avx512vnni" : "");
  return 0;
}

static int cmd_version(int argc, char **argv) {
  static const char usage[] = "usage: olmoc version\n\nPrints olmoc's version, its LLVM's and the host CPU's features.\n";
  const cli_option none[] = {{0}};
  oc_error e = {{0}};
  int parsed = cli_parse(argc, argv, none, NULL, &e);
  return cli_exit("version", usage, parsed, !parsed && print_version(), &e);
}

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} commands[] = {
    {"run", cmd_run, "generate text from a prompt, or chat"},
    {"tokenize", cmd_tokenize, "show the tokens a model's tokenizer makes of a text"},
    {"perplexity", cmd_perplexity, "measure a model's perplexity on a text file"},
    {"logits", cmd_logits, "write the logits of every prompt position as a .npy file"},
    {"compile", cmd_compile, "compile a checkpoint into a model binary (no LLVM) or C library"},
    {"quantize", cmd_quantize, "quantize a checkpoint's weights once (q4, q8): it then loads at once"},
    {"checkpoint", cmd_checkpoint, "write a random-weight checkpoint in the published layout"},
    {"bench", cmd_bench, "measure prefill and decode speed against the machine's roofline"},
    {"ir", cmd_ir, "build, verify, optimize and print a graph (text, DOT, summary)"},
    {"passes", cmd_passes, "list the passes `olmoc ir` can run, with their -O levels"},
    {"version", cmd_version, "print the version and the host CPU the backend targets"},
};

/* As coreutils' close_stdout: output lost to a full disk makes a command
 * that succeeded otherwise fail (one that failed has said why already). */
static int close_stdout(int rc) {
  if ((fflush(stdout) == 0 && !ferror(stdout)) || rc)
    return rc;
  fprintf(stderr, "olmoc: standard output: cannot write: %s\n", strerror(errno));
  return 1;
}

static void usage(FILE *out) {
  fprintf(out, "usage: olmoc <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\n`olmoc <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
  oc_cleanup_on_signals(); /* what a command is writing goes with it when a signal ends it */
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return close_stdout(0);
  }
  if (!strcmp(argv[1], "--version"))
    return close_stdout(cmd_version(argc - 1, argv + 1));
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (!strcmp(argv[1], commands[i].name))
      return close_stdout(commands[i].run(argc - 1, argv + 1));
  fprintf(stderr, "olmoc: unknown command '%s'\nsee `olmoc --help` for the commands\n", argv[1]);
  return 2;
}
