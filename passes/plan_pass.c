/* plan-memory in the pipeline: plans the graph's activations with the memory
 * planner (plan.h, passes/plan_memory.c), checks the plan independently and
 * keeps it in the pipeline's result for the stats table. The graph is not
 * changed. */
#include "olmoc/alloc.h"
#include "olmoc/passes.h"

int pass_memory(ir_graph *g, pass_env *env, oc_error *e) {
  const pass_options *o = env->options;
  int64_t max_tokens = o->max_tokens > 0 ? o->max_tokens : 512;
  int64_t max_ctx = o->max_ctx > 0 ? o->max_ctx : 4096;
  if (max_tokens > max_ctx)
    max_tokens = max_ctx;
  pass_plan plan;
  if (pass_plan_memory(g, max_tokens, max_ctx, &plan, e))
    return -1;
  unsigned long failures = oc_alloc_failures();
  if (pass_plan_check(g, &plan, e)) {
    pass_plan_free(&plan);
    return oc_alloc_failures() != failures ? -1 : oc_wrap(e, "the memory plan is wrong");
  }
  pass_result *r = env->result;
  if (r->planned)
    pass_plan_free(&r->plan);
  r->plan = plan;
  r->planned = true;
  return 0;
}
