/* `olmoc passes`: the pass registry as a user reads it, in pipeline order:
 * name, the lowest -O level that runs it, what it does. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "olmoc/passes.h"

int cmd_passes(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-h") && strcmp(argv[1], "--help")) {
    fprintf(stderr, "olmoc passes: takes no arguments, found '%s'\n", argv[1]);
    return 2;
  }
  printf("usage: olmoc passes   (run them with `olmoc ir ... -O2` or `--passes=a,b`)\n\n");
  printf("%-20s %-6s %s\n", "pass", "level", "what it does");
  for (int i = 0; i < pass_registry_count; i++)
    printf("%-20s -O%-4d %s\n", pass_registry[i].name, pass_registry[i].level,
           pass_registry[i].summary);
  return 0;
}
