/* OLMo 2's forward call as a graph of primitive ops, written the way Hugging
 * Face's Olmo2ForCausalLM computes it (docs/architecture.md, "OLMo 2, precisely"): norms
 * after each sublayer inside the residual, q/k norms over the full projection
 * width before the split into heads, rotate_half RoPE, GQA by repeating KV
 * heads. The residual stream is [T,hidden]; attention runs as [heads,T,...]. */
#include <math.h>
#include <stdio.h>

#include "olmoc/olmo2.h"

typedef struct builder {
  ir_graph *g;
  const olmo2_config *c;
  ir_dtype wdtype;
  int eps;      /* f32[]: rms_norm_eps */
  int scale;    /* f32[]: head_dim^-0.5, the attention score scale */
  int cos, sin; /* f32[T,1,head_dim]: rotary tables, broadcast over heads */
} builder;

static ir_dim K(int64_t c) { return ir_const_dim(c); }

static int weight(builder *b, int64_t rows, int64_t cols, const char *fmt, int layer) {
  char name[128];
  snprintf(name, sizeof name, fmt, layer);
  ir_type t = {b->wdtype, {cols ? 2 : 1, {K(rows), K(cols)}}};
  return ir_weight(b->g, name, t);
}

/* x @ W^T for the layer's weight `fmt` of shape [rows, cols]. */
static int linear(builder *b, int x, int64_t rows, int64_t cols, const char *fmt, int layer) {
  return ir_binary(b->g, IR_MATMUL, x, weight(b, rows, cols, fmt, layer));
}

/* w * (y * rsqrt(mean(y^2) + eps)) over the last axis. */
static int rmsnorm(builder *b, int y, int64_t width, const char *fmt, int layer) {
  ir_graph *g = b->g;
  int mean = ir_unary(g, IR_REDUCE_MEAN, ir_binary(g, IR_MUL, y, y));
  int inv = ir_unary(g, IR_RSQRT, ir_binary(g, IR_ADD, mean, b->eps));
  int normed = ir_binary(g, IR_MUL, y, inv);
  return ir_binary(g, IR_MUL, weight(b, width, 0, fmt, layer), normed);
}

/* x*cos + rotate_half(x)*sin, with rotate_half(x) = concat(-x[d/2:], x[:d/2]). */
static int rope(builder *b, int x) {
  ir_graph *g = b->g;
  int64_t d = b->c->head_dim;
  int lo = ir_slice(g, x, 2, 0, d / 2), hi = ir_slice(g, x, 2, d / 2, d);
  int rotated = ir_concat(g, ir_unary(g, IR_NEG, hi), lo, 2);
  return ir_binary(g, IR_ADD, ir_binary(g, IR_MUL, x, b->cos), ir_binary(g, IR_MUL, rotated, b->sin));
}

static int split_heads(builder *b, int x, int64_t heads) {
  return ir_reshape(b->g, x, (ir_shape){3, {IR_DIM_T, K(heads), K(b->c->head_dim)}});
}

/* Appends this call's rows to the layer's cache and returns all P+T rows,
 * repeated to one per query head: [P+T, heads, head_dim]. */
static int cached(builder *b, int rows, const char *which, int layer) {
  const olmo2_config *c = b->c;
  char name[64];
  snprintf(name, sizeof name, "layers.%d.%s", layer, which);
  ir_type t = {IR_F32, {3, {IR_DIM_P, K(c->num_key_value_heads), K(c->head_dim)}}};
  int all = ir_binary(b->g, IR_KV_APPEND, ir_kv_cache(b->g, name, t), rows);
  int64_t group = c->num_attention_heads / c->num_key_value_heads;
  return group > 1 ? ir_repeat(b->g, all, 1, (int)group) : all;
}

static int attention(builder *b, int x, int layer) {
  ir_graph *g = b->g;
  const olmo2_config *c = b->c;
  int64_t H = c->hidden_size, nh = c->num_attention_heads, nkv = c->num_key_value_heads;
  int64_t qw = nh * c->head_dim, kvw = nkv * c->head_dim;
  int q = linear(b, x, qw, H, "model.layers.%d.self_attn.q_proj.weight", layer);
  int k = linear(b, x, kvw, H, "model.layers.%d.self_attn.k_proj.weight", layer);
  int v = linear(b, x, kvw, H, "model.layers.%d.self_attn.v_proj.weight", layer);
  q = rmsnorm(b, q, qw, "model.layers.%d.self_attn.q_norm.weight", layer);
  k = rmsnorm(b, k, kvw, "model.layers.%d.self_attn.k_norm.weight", layer);
  q = rope(b, split_heads(b, q, nh));
  k = rope(b, split_heads(b, k, nkv));
  int keys = cached(b, k, "k", layer), values = cached(b, split_heads(b, v, nkv), "v", layer);

  static const int heads_first[] = {1, 0, 2}, heads_first_keys_last[] = {1, 2, 0};
  int scores = ir_binary(g, IR_MATMUL, ir_transpose(g, q, heads_first), ir_transpose(g, keys, heads_first));
  scores = ir_binary(g, IR_MUL, scores, b->scale);
  int probs = ir_unary(g, IR_SOFTMAX, ir_unary(g, IR_CAUSAL_MASK, scores));
  int out = ir_binary(g, IR_MATMUL, probs, ir_transpose(g, values, heads_first_keys_last));
  out = ir_reshape(g, ir_transpose(g, out, heads_first), (ir_shape){2, {IR_DIM_T, K(qw)}});
  return linear(b, out, H, qw, "model.layers.%d.self_attn.o_proj.weight", layer);
}

static int mlp(builder *b, int x, int layer) {
  ir_graph *g = b->g;
  int64_t H = b->c->hidden_size, I = b->c->intermediate_size;
  int gate = linear(b, x, I, H, "model.layers.%d.mlp.gate_proj.weight", layer);
  int up = linear(b, x, I, H, "model.layers.%d.mlp.up_proj.weight", layer);
  int silu = ir_binary(g, IR_MUL, gate, ir_unary(g, IR_SIGMOID, gate));
  return linear(b, ir_binary(g, IR_MUL, silu, up), H, I, "model.layers.%d.mlp.down_proj.weight", layer);
}

int olmo2_build_graph(const olmo2_config *c, ir_dtype weight_dtype, ir_graph **out, oc_error *e) {
  ir_graph *g = ir_graph_new();
  if (!g)
    return oc_fail(e, "out of memory building the graph");
  builder b = {.g = g, .c = c, .wdtype = weight_dtype};
  int64_t H = c->hidden_size, V = c->vocab_size;

  int tokens = ir_input(g, "tokens", (ir_type){IR_I32, {1, {IR_DIM_T}}});
  int embed = weight(&b, V, H, "model.embed_tokens.weight", 0);
  b.eps = ir_const(g, c->rms_norm_eps);
  b.scale = ir_const(g, pow((double)c->head_dim, -0.5));
  int positions = ir_positions(g);
  ir_shape per_head = {3, {IR_DIM_T, K(1), K(c->head_dim)}};
  b.cos = ir_reshape(g, ir_rope_table(g, IR_ROPE_COS, positions, (int)c->head_dim, c->rope_theta), per_head);
  b.sin = ir_reshape(g, ir_rope_table(g, IR_ROPE_SIN, positions, (int)c->head_dim, c->rope_theta), per_head);

  int x = ir_binary(g, IR_GATHER, embed, tokens);
  for (int l = 0; l < c->num_hidden_layers; l++) {
    g->layer = l;
    int a = attention(&b, x, l);
    x = ir_binary(g, IR_ADD, x, rmsnorm(&b, a, H, "model.layers.%d.post_attention_layernorm.weight", l));
    int m = mlp(&b, x, l);
    x = ir_binary(g, IR_ADD, x, rmsnorm(&b, m, H, "model.layers.%d.post_feedforward_layernorm.weight", l));
  }
  g->layer = -1;
  x = rmsnorm(&b, x, H, "model.norm.weight", 0);
  int head = c->tie_word_embeddings ? embed : weight(&b, V, H, "lm_head.weight", 0);
  ir_output(g, "logits", ir_binary(g, IR_MATMUL, x, head));

  if (ir_graph_status(g, e)) {
    ir_graph_free(g);
    return oc_wrap(e, "building the OLMo 2 graph");
  }
  *out = g;
  return 0;
}
