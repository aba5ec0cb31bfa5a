/* The pipeline's options as the command line hands them to the driver:
 * validated by drv_configure, and what it changed said on stderr. */
#include <stdio.h>

#include "pipeline_args.h"

int cli_configure(const char *command, const drv_request *r, drv_backend backend, drv_config *c, oc_error *e) {
  if (drv_configure(r, backend, c, e))
    return -1;
  if (c->notice[0])
    fprintf(stderr, "olmoc %s: warning: %s\n", command, c->notice);
  return 0;
}
