/* fuzz_ir_passes: the pass pipeline on hand-written graphs (passes/), as
 * `olmoc ir FILE -O2` runs it. The input is IR text (cut at its first NUL);
 * a graph the verifier accepts goes through -O2 (every fusion and the memory
 * plan, whose checker then runs). Checks: the pipeline succeeds or fails with
 * a message, and never by producing an invalid graph or a wrong plan. */
#include "fuzz.h"

#include "olmoc/ir_text.h"
#include "olmoc/passes.h"

static FILE *null_out(void) {
  static FILE *f;
  if (!f) f = fopen("/dev/null", "w");
  return f;
}

int fuzz_ir_passes(const uint8_t *data, size_t size) {
  char *text = fuzz_cstring(data, size);
  if (!text) return 0;
  oc_error e = {{0}};
  ir_graph *g = NULL;
  int rc = ir_parse(text, "fuzz.ir", &g, &e);
  free(text);
  if (rc != 0) return 0;
  if (ir_verify(g, &e) != 0) {
    ir_graph_free(g);
    return 0;
  }
  pass_options o = {.level = 2, .dump = null_out()};
  pass_result r;
  e.msg[0] = '\0';
  if (pass_run_pipeline(g, &o, &r, &e) != 0) {
    FUZZ_CHECK(e.msg[0], "the pipeline failed without a message");
    FUZZ_CHECK(!strstr(e.msg, "produced an invalid graph") && !strstr(e.msg, "plan is wrong"),
               "%s", e.msg);
  }
  pass_result_free(&r);
  ir_graph_free(g);
  return 0;
}

FUZZ_MAIN(fuzz_ir_passes)
