/* The OLMo 2 frontend's graph for every published config: it verifies, has
 * the tensors the checkpoint has (names and shapes), the parameter count the
 * config implies, GQA where the config asks for it, and tied embeddings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "olmoc/olmo2.h"

static ir_graph *build(const char *path, olmo2_config *c) {
  oc_error e;
  ir_graph *g = NULL;
  if (olmo2_config_load(path, c, &e) || olmo2_build_graph(c, IR_F32, &g, &e) || ir_verify(g, &e))
    fail_msg("%s: %s", path, e.msg);
  return g;
}

static const ir_node *find_weight(const ir_graph *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].op == IR_WEIGHT && !strcmp(g->nodes[i].name, name))
      return &g->nodes[i];
  return NULL;
}

static int count_op(const ir_graph *g, ir_op op) {
  int n = 0;
  for (int i = 0; i < g->n; i++)
    n += g->nodes[i].op == op;
  return n;
}

static void check_model(const char *path, int64_t params, int repeat_times) {
  olmo2_config c;
  ir_graph *g = build(path, &c);
  int ids[1];
  int64_t counted = 0;
  int weights = 0;
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].op == IR_WEIGHT) {
      counted += ir_shape_numel(&g->nodes[i].type.shape, 0, 0);
      weights++;
    }
  assert_int_equal(counted, params);
  assert_int_equal(olmo2_param_count(&c), params);
  assert_int_equal(weights, 1 + 11 * c.num_hidden_layers + 1 + 1);
  assert_int_equal(count_op(g, IR_KV_CACHE), 2 * c.num_hidden_layers);
  assert_int_equal(count_op(g, IR_OUTPUT), 1);

  const ir_node *k = find_weight(g, "model.layers.0.self_attn.k_proj.weight");
  assert_non_null(k);
  assert_int_equal(k->type.shape.dim[0].c, c.num_key_value_heads * c.head_dim);
  assert_int_equal(k->type.shape.dim[1].c, c.hidden_size);
  const ir_node *kn = find_weight(g, "model.layers.0.self_attn.k_norm.weight");
  assert_int_equal(kn->type.shape.rank, 1);
  assert_int_equal(kn->type.shape.dim[0].c, c.num_key_value_heads * c.head_dim);
  assert_non_null(find_weight(g, "lm_head.weight"));
  char last[96];
  snprintf(last, sizeof last, "model.layers.%lld.mlp.down_proj.weight", (long long)c.num_hidden_layers - 1);
  assert_non_null(find_weight(g, last));

  assert_int_equal(count_op(g, IR_REPEAT), repeat_times ? 2 * c.num_hidden_layers : 0);
  if (ir_find(g, IR_REPEAT, ids, 1))
    assert_int_equal(g->nodes[ids[0]].times, repeat_times);
  ir_graph_free(g);
}

static void test_published_models(void **state) {
  (void)state;
  check_model("models/olmo2-1b", 1484916736, 0);
  check_model("models/olmo2-7b", 7298617344, 0);
  check_model("models/olmo2-13b", 13716198400, 0);
  check_model("models/olmo2-32b", 32234279936, 5);
}

static void test_tied_embeddings(void **state) {
  (void)state;
  olmo2_config c;
  oc_error e;
  assert_int_equal(olmo2_config_load("tests/data/tiny", &c, &e), 0);
  c.tie_word_embeddings = true;
  ir_graph *g = NULL;
  assert_int_equal(olmo2_build_graph(&c, IR_BF16, &g, &e), 0);
  assert_int_equal(ir_verify(g, &e), 0);
  assert_null(find_weight(g, "lm_head.weight"));
  const ir_node *embed = find_weight(g, "model.embed_tokens.weight");
  assert_int_equal(embed->type.dtype, IR_BF16);
  /* the last matmul reads the embedding table */
  int ids[1];
  assert_int_equal(ir_find(g, IR_OUTPUT, ids, 1), 1);
  const ir_node *head = &g->nodes[g->nodes[ids[0]].in[0]];
  assert_int_equal(head->op, IR_MATMUL);
  assert_ptr_equal(&g->nodes[head->in[1]], embed);
  ir_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_published_models),
      cmocka_unit_test(test_tied_embeddings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
