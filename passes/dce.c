/* dce: drops every node no output, cache append or graph input depends on.
 * Graph inputs stay even when unread: they are the call's interface. */
#include "rewrite.h"

int pass_dce(ir_graph *g, pass_env *env, oc_error *e) {
  rw r;
  if (rw_begin(&r, g, env, e))
    return -1;
  int before = g->n;
  for (int id = g->n - 1; id >= 0; id--)
    rw_kill_if_unused(&r, id);
  rw_finish(&r);
  env->changes += before - g->n;
  return 0;
}
