/* fuzz_config: the OLMo 2 frontend (frontends/olmo2_config.c, olmo2_graph.c).
 * The input is a config.json text (cut at its first NUL). Checks: a refused
 * config has a message; an accepted one has a positive parameter count and
 * builds a graph (f32 weights, or bf16 for odd-sized inputs) that the
 * verifier accepts, since any config the frontend takes must compile. */
#include "fuzz.h"

#include "olmoc/ir.h"
#include "olmoc/olmo2.h"

int fuzz_config(const uint8_t *data, size_t size) {
  char *json = fuzz_cstring(data, size);
  if (!json) return 0;
  olmo2_config c;
  oc_error e = {{0}};
  int rc = olmo2_config_parse(json, "config.json", &c, &e);
  free(json);
  if (rc != 0) {
    FUZZ_CHECK(e.msg[0], "olmo2_config_parse failed without a message");
    return 0;
  }
  FUZZ_CHECK(olmo2_param_count(&c) > 0, "parameter count %lld", (long long)olmo2_param_count(&c));

  ir_graph *g = NULL;
  if (olmo2_build_graph(&c, size % 2 ? IR_BF16 : IR_F32, &g, &e) != 0)
    FUZZ_CHECK(0, "an accepted config does not build: %s", e.msg);
  FUZZ_CHECK(ir_verify(g, &e) == 0, "the graph of an accepted config does not verify: %s", e.msg);
  ir_graph_free(g);
  return 0;
}

FUZZ_MAIN(fuzz_config)
