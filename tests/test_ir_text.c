/* The IR text form and DOT export: every published OLMo 2 size round-trips
 * byte for byte and verifies; hand-written tests/data/ir/X.ir files print as
 * their X.expected; each parse error names its line:col; type errors written
 * in text are found by ir_verify; DOT shows a graph or one layer. Mangled text
 * never crashes the parser (run this under ASan+UBSan). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "olmoc/ir_text.h"
#include "olmoc/olmo2.h"

static olmo2_config config(int64_t hidden, int64_t layers, int64_t heads, int64_t kv, int64_t inter) {
  return (olmo2_config){.hidden_size = hidden, .intermediate_size = inter, .num_hidden_layers = layers,
                        .num_attention_heads = heads, .num_key_value_heads = kv, .head_dim = 128,
                        .max_position_embeddings = 4096, .vocab_size = 100352, .rms_norm_eps = 1e-6,
                        .rope_theta = 500000, .n_eos = 1, .eos_token_id = {100257},
                        .pad_token_id = 100277, .bos_token_id = -1};
}

static olmo2_config tiny_tied(void) {
  olmo2_config c = config(64, 2, 4, 2, 128);
  c.head_dim = 16, c.vocab_size = 256, c.max_position_embeddings = 64, c.tie_word_embeddings = true;
  return c;
}

static ir_graph *build(const olmo2_config *c) {
  ir_graph *g = NULL;
  oc_error e;
  if (olmo2_build_graph(c, IR_F32, &g, &e))
    fail_msg("building: %s", e.msg);
  return g;
}

static ir_graph *parse_ok(const char *text) {
  ir_graph *g = NULL;
  oc_error e;
  if (ir_parse(text, "t.ir", &g, &e))
    fail_msg("parse: %s", e.msg);
  return g;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  char *s = calloc(1 << 20, 1);
  assert_non_null(s);
  size_t n = fread(s, 1, (1 << 20) - 1, f);
  assert_true(n < (1 << 20) - 1);
  fclose(f);
  return s;
}

static void expect_in(const char *haystack, const char *needle) {
  if (!strstr(haystack, needle))
    fail_msg("expected \"%s\" in:\n%.2000s", needle, haystack);
}

/* print(parse(print(g))) == print(g), and the parsed graph verifies. */
static void round_trip(void **state) {
  const olmo2_config *c = *state;
  ir_graph *g = build(c), *h = NULL;
  char *text = ir_print_string(g);
  assert_non_null(text);
  oc_error e;
  if (ir_parse(text, "olmo2.ir", &h, &e))
    fail_msg("%s", e.msg);
  if (ir_verify(h, &e))
    fail_msg("%s", e.msg);
  assert_int_equal(h->n, g->n);
  char *again = ir_print_string(h);
  assert_string_equal(again, text);
  char embed[128];
  snprintf(embed, sizeof embed, "%%1 = weight \"model.embed_tokens.weight\" : f32[%lld,%lld]\n",
           (long long)c->vocab_size, (long long)c->hidden_size);
  expect_in(text, embed);
  expect_in(text, "%2 = const {value=1e-06} : f32[]\n");
  expect_in(text, "theta=500000} : f32[T,");
  expect_in(text, "perm=[1,0,2], layer=0} : f32[");
  assert_true(c->tie_word_embeddings == !strstr(text, "lm_head"));
  for (int i = 0; i < g->n; i++)
    assert_int_equal(h->nodes[i].layer, g->nodes[i].layer);
  free(again);
  free(text);
  ir_graph_free(h);
  ir_graph_free(g);
}

static void doubles_round_trip(void **state) {
  (void)state;
  const double v[] = {1e-6, 500000, 0.1, 1 / sqrt(128.0), -0.0, 5e-324, 1.7976931348623157e308,
                      INFINITY, -INFINITY, NAN, 123456789012345680.0, 1.0 / 3};
  const char *want[] = {"value=1e-06}", "value=500000}", "value=0.1}", "value=0.08838834764831843}",
                        "value=-0}", "value=4.94065645841247e-324}", "value=1.7976931348623157e+308}",
                        "value=inf}", "value=-inf}", "value=nan}", "value=1.2345678901234568e+17}",
                        "value=0.3333333333333333}"};
  int n = sizeof v / sizeof v[0];
  ir_graph *g = ir_graph_new();
  for (int i = 0; i < n; i++)
    ir_const(g, v[i]);
  char *text = ir_print_string(g);
  for (int i = 0; i < n; i++)
    expect_in(text, want[i]);
  ir_graph *h = parse_ok(text);
  for (int i = 0; i < n; i++) {
    double a = g->nodes[i].value, b = h->nodes[i].value;
    if (isnan(a))
      assert_true(isnan(b));
    else
      assert_memory_equal(&a, &b, sizeof a);
  }
  free(text);
  ir_graph_free(h);
  ir_graph_free(g);
}

static void names_escape(void **state) {
  (void)state;
  const char *name = "a\"b\\c\nd\te\rf\x01g\x7fh.é";
  ir_graph *g = ir_graph_new();
  ir_weight(g, name, (ir_type){IR_F32, {1, {{4, 0, 0}}}});
  char *text = ir_print_string(g);
  assert_string_equal(text, "%0 = weight \"a\\\"b\\\\c\\nd\\te\\rf\\x01g\\x7fh.é\" : f32[4]\n");
  ir_graph *h = parse_ok(text);
  assert_string_equal(h->nodes[0].name, name);
  ir_graph *u = parse_ok("%w = weight \"\\x41\\x7A\" : f32[4]");
  assert_string_equal(u->nodes[0].name, "Az");
  free(text);
  ir_graph_free(u);
  ir_graph_free(h);
  ir_graph_free(g);
}

/* Each tests/data/ir/X.ir parses, verifies and prints as X.expected, which
 * is itself a fixed point. */
static void files_print_as_expected(void **state) {
  (void)state;
  const char *names[] = {"mlp", "rmsnorm", "attention", "messy"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[128];
    snprintf(path, sizeof path, "tests/data/ir/%s.ir", names[i]);
    ir_graph *g = NULL, *h = NULL;
    oc_error e;
    if (ir_parse_file(path, &g, &e) || ir_verify(g, &e))
      fail_msg("%s: %s", path, e.msg);
    snprintf(path, sizeof path, "tests/data/ir/%s.expected", names[i]);
    char *want = read_text(path), *got = ir_print_string(g);
    assert_string_equal(got, want);
    h = parse_ok(want);
    char *again = ir_print_string(h);
    assert_string_equal(again, want);
    free(again);
    free(got);
    free(want);
    ir_graph_free(h);
    ir_graph_free(g);
  }
}

static void parse_file_errors(void **state) {
  (void)state;
  ir_graph *g = NULL;
  oc_error e;
  assert_int_equal(ir_parse_file("tests/data/ir/no-such.ir", &g, &e), -1);
  assert_null(g);
  expect_in(e.msg, "tests/data/ir/no-such.ir: cannot open: No such file or directory");
  assert_int_equal(ir_parse_file("tests/data/ir", &g, &e), -1);
  expect_in(e.msg, "tests/data/ir: not a regular file");
}

#define A "%a = input \"a\" : f32[T,4]\n"

static const struct {
  const char *text, *msg;
} parse_errors[] = {
    {"%0 = matmull %a : f32[T]", "t.ir:1:6: unknown op 'matmull'"},
    {"%0 = positions : f33[T]", "t.ir:1:18: unknown dtype 'f33'"},
    {"%0 = positions\n", "t.ir:1:15: expected ':' and the node's type, found the end of the line"},
    {"%0 = positions :", "t.ir:1:17: expected a type such as f32[T,64], found the end of the input"},
    {A "%b = add %a : f32[T,4]", "t.ir:2:13: op 'add' takes 2 inputs, found 1"},
    {A "%b = neg %a, %a : f32[T,4]", "t.ir:2:12: op 'neg' takes 1 input, found more"},
    {A "%b = positions %a : i32[T]", "t.ir:2:16: op 'positions' takes 0 inputs, found more"},
    {A "%b = neg %y : f32[T,4]", "t.ir:2:10: undefined value '%y'"},
    {A "%b = neg %b : f32[T,4]", "t.ir:2:10: undefined value '%b'"},
    {A "# again\n%a = positions : i32[T]", "t.ir:3:1: '%a' is already defined on line 1"},
    {A "%s = slice %a {axis=0, start=0} : f32[2]", "t.ir:2:32: op 'slice' needs attribute 'end'"},
    {"%c = const : f32[]", "t.ir:1:12: op 'const' needs attribute 'value'"},
    {A "%s = neg %a {axes=0} : f32[T,4]", "t.ir:2:14: unknown attribute 'axes'"},
    {A "%s = neg %a {axis=0} : f32[T,4]", "t.ir:2:14: op 'neg' takes no attribute 'axis'"},
    {A "%s = repeat %a {axis=1, times=2, axis=1} : f32[T,8]", "t.ir:2:34: attribute 'axis' is given twice"},
    {A "%s = repeat %a {axis=99999999999, times=2} : f32[T,8]",
     "t.ir:2:22: axis 99999999999 is out of range [-2147483648, 2147483647]"},
    {A "%s = slice %a {axis=1, start=0, end=99999999999999999999} : f32[T,1]",
     "t.ir:2:37: end 99999999999999999999 is out of range [-9223372036854775808, 9223372036854775807]"},
    {A "%s = repeat %a {axis=1, times=0} : f32[T,0]", "t.ir:2:31: times 0 is out of range [1, 65536]"},
    {A "%s = repeat %a {axis=1.5, times=2} : f32[T,8]", "t.ir:2:22: '1.5' is not an integer"},
    {"%a = input \"tok : i32[T]", "t.ir:1:12: unterminated string"},
    {"%a = input \"tok\n\" : i32[T]", "t.ir:1:12: unterminated string"},
    {"%a = input \"t\\qk\" : i32[T]", "t.ir:1:14: unknown escape in a string"},
    {"%a = input \"t\\x00\" : i32[T]", "t.ir:1:14: a name cannot contain \\x00"},
    {"%a = input : i32[T]", "t.ir:1:12: op 'input' needs a name in quotes, found ':'"},
    {"%a = positions \"p\" : i32[T]", "t.ir:1:16: op 'positions' takes no name"},
    {"%a = input \"a\" : f32[T+]", "t.ir:1:24: bad dim expression: expected a number, T or P, found ']'"},
    {"%a = input \"a\" : f32[2*X]", "t.ir:1:24: bad dim expression: expected T or P after '*', found 'X'"},
    {"%a = input \"a\" : f32[Tokens]", "t.ir:1:22: bad dim expression: expected a number, T or P, found 'Tokens'"},
    {"%a = input \"a\" : f32[T 4]", "t.ir:1:24: expected ',' or ']' in the type, found '4'"},
    {"%a = input \"a\" : f32[2000000000000]", "t.ir:1:22: bad dim expression: '2000000000000' is not an integer up to 2^40"},
    {"%a = input \"a\" : f32[99999*T]", "t.ir:1:22: bad dim expression: the coefficient of T is beyond +-16384"},
    {"%a = input \"a\" : f32[1048576,1048576,1048576,1048576]", "t.ir:1:18: the type has more than 2^62 elements"},
    {"%a = input \"a\" : f32[1,2,3,4,5]", "t.ir:1:30: a type has at most 4 dims"},
    {"%a = input \"a\" : f32[T,4,2]\n%t = transpose %a {perm=[1,0]} : f32[4,T,2]",
     "t.ir:2:25: perm has 2 entries but the input has rank 3"},
    {"%p = positions : i32[T]\n%c = rope_cos %p {dim=8, theta=1e999} : f32[T,8]",
     "t.ir:2:32: theta 1e999 is out of range for a double"},
    {"%c = const {value=0x10} : f32[]", "t.ir:1:19: '0x10' is not a number"},
    {"%a = positions : i32[T] x", "t.ir:1:25: expected the end of the line after the type, found 'x'"},
    {"%a = positions : i32[T]\nadd %a", "t.ir:2:1: expected a node like '%1 = neg %0 : f32[T]', found 'add'"},
    {"% = positions : i32[T]", "t.ir:1:2: expected a name after '%', found ' '"},
    {"%a positions : i32[T]", "t.ir:1:4: expected '=' after the node's name, found 'positions'"},
    {"\x01", "t.ir:1:1: expected a node like '%1 = neg %0 : f32[T]', found byte 0x01"},
};

static void parse_errors_name_line_and_column(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof parse_errors / sizeof parse_errors[0]; i++) {
    ir_graph *g = NULL;
    oc_error e = {{0}};
    if (ir_parse(parse_errors[i].text, "t.ir", &g, &e) == 0)
      fail_msg("case %zu parsed: %s", i, parse_errors[i].text);
    assert_null(g);
    if (strcmp(e.msg, parse_errors[i].msg) != 0 && !strstr(e.msg, parse_errors[i].msg))
      fail_msg("case %zu: want \"%s\"\n got \"%s\"", i, parse_errors[i].msg, e.msg);
  }
}

/* The verifier stops at the first bad node, so only the no-output case needs
 * to be a complete graph otherwise. */
static const struct {
  const char *text, *msg;
} verify_errors[] = {
    {A "%b = neg %a : f32[T,5]\n", "node %1 (neg): declared type f32[T,5] but its inputs give f32[T,4]"},
    {A "%w = weight \"w\" : f32[8,5]\n%m = matmul %a, %w : f32[T,8]\n",
     "node %2 (matmul): matmul contracts the last dims, which differ: f32[T,4] and f32[8,5]"},
    {A "%b = input \"b\" : f32[T,3]\n%c = add %a, %b : f32[T,4]\n",
     "node %2 (add): shapes f32[T,4] and f32[T,3] do not broadcast"},
    {A "%s = slice %a {axis=1, start=0, end=9} : f32[T,9]\n", "node %1 (slice): slice [0, 9) is not inside [0, 4)"},
    {A "%b = input \"b\" : f32[T,4,1]\n%c = concat %a, %b {axis=1} : f32[T,8]\n",
     "node %2 (concat): cannot concat f32[T,4] and f32[T,4,1]"},
    {A "%r = reshape %a : f32[T,5]\n", "node %1 (reshape): cannot reshape f32[T,4] to f32[T,5]"},
    {"%a = input \"a\" : f32[T,4,2]\n%t = transpose %a {perm=[0,0,1]} : f32[T,T,4]\n",
     "node %1 (transpose): perm is not a permutation of the 3 axes"},
    {"%w = weight \"e\" : f32[10,4]\n%i = input \"i\" : f32[T]\n%x = gather %w, %i : f32[T,4]\n",
     "node %2 (gather): gather's ids must be i32, found f32[T]"},
    {"%c = kv_cache \"k\" : f32[P,2,8]\n%n = input \"n\" : f32[T,2,4]\n%x = kv_append %c, %n : f32[P+T,2,8]\n",
     "node %2 (kv_append): new rows f32[T,2,4] do not fit cache f32[P,2,8]"},
    {A "%b = neg %a : f32[T,4]", "the graph has no output"},
    {"%w = weight \"w\" : f32[4]\n%v = weight \"w\" : f32[4]\n",
     "node %1 (weight): name \"w\" is already used by %0"},
    {"%p = positions : i32[T]\n%c = rope_cos %p {dim=7, theta=10000} : f32[T,7]\n",
     "node %1 (rope_cos): rope tables need an even dim > 0 and theta > 0"},
    {A "%m = causal_mask %a : f32[T,4]\n", "node %1 (causal_mask): causal_mask needs [..., T, P+T], found f32[T,4]"},
    {"%c = kv_cache \"k\" : f32[P,4]\n%n = input \"n\" : f32[T,4]\n%x = kv_append %c, %n : f32[P+T,4]\n"
     "%y = kv_append %c, %n : f32[P+T,4]\n",
     "node %3 (kv_append): cache %0 is already appended to by %2"},
    {"%w = weight \"w\" : f32[T,4]\n", "node %0 (weight): a weight's dims must be positive constants, found f32[T,4]"},
    {"%c = kv_cache \"k\" : f32[T,4]\n", "node %0 (kv_cache): a kv_cache is a float [P, ...] tensor, found f32[T,4]"},
    {"%c = kv_cache \"k\" : f32[P,T]\n",
     "node %0 (kv_cache): a kv_cache's row dims (all but P) must be positive constants, found f32[P,T]"},
    {"%c = kv_cache \"k\" : f32[P,2,-4]\n",
     "node %0 (kv_cache): a kv_cache's row dims (all but P) must be positive constants, found f32[P,2,-4]"},
    {A "%o = output \"o\" %a : f32[T,4]\n%b = neg %o : f32[T,4]\n",
     "node %2 (neg): an output is not a value to compute with"},
    {"%a = input \"\" : f32[T,4]\n", "node %0 (input): needs a name"},
    {A "%t = transpose %a {perm=[1,0]} : f32[T,4]\n", "node %1 (transpose): declared type f32[T,4] but its inputs give f32[4,T]"},
};

static void verifier_errors_through_parsing(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof verify_errors / sizeof verify_errors[0]; i++) {
    ir_graph *g = parse_ok(verify_errors[i].text);
    oc_error e = {{0}};
    if (ir_verify(g, &e) == 0)
      fail_msg("case %zu verified:\n%s", i, verify_errors[i].text);
    if (!strstr(e.msg, verify_errors[i].msg))
      fail_msg("case %zu: want \"%s\"\n got \"%s\"", i, verify_errors[i].msg, e.msg);
    ir_graph_free(g);
  }
}

static void misc_text(void **state) {
  (void)state;
  ir_graph *g = parse_ok("");
  assert_int_equal(g->n, 0);
  ir_graph_free(g);
  g = parse_ok("# only a comment\n\n   \t\n");
  assert_int_equal(g->n, 0);
  ir_graph_free(g);
  g = parse_ok("%a = input \"a\" : f32[T,4]\r\n%b = neg %a {layer=7} : f32[T,4]\r\n%o = output \"o\" %b : f32[T,4]");
  assert_int_equal(g->n, 3);
  assert_int_equal(g->nodes[1].layer, 7);
  assert_int_equal(g->nodes[0].layer, -1);
  assert_int_equal(g->nodes[2].in[0], 1);
  ir_graph_free(g);
  g = parse_ok("%a = input \"a\" : f32[-T+8,P-2*T+3,0,  5*P]");
  char *text = ir_print_string(g);
  assert_string_equal(text, "%0 = input \"a\" : f32[-T+8,P-2*T+3,0,5*P]\n");
  free(text);
  ir_graph_free(g);
}

static char *dot_string(const ir_graph *g, int layer, oc_error *e, int *rc) {
  char *s = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&s, &n);
  assert_non_null(f);
  *rc = ir_print_dot(g, layer, f, e);
  fclose(f);
  return s;
}

static int find_weight(const ir_graph *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].op == IR_WEIGHT && !strcmp(g->nodes[i].name, name))
      return i;
  fail_msg("no weight %s", name);
  return -1;
}

static void dot_whole_graph_and_layer(void **state) {
  (void)state;
  olmo2_config c = tiny_tied();
  ir_graph *g = build(&c);
  oc_error e;
  int rc;
  char *all = dot_string(g, -1, &e, &rc), line[64];
  assert_int_equal(rc, 0);
  expect_in(all, "digraph olmoc {\n");
  expect_in(all, "n0 [label=\"%0 input\\ntokens\\ni32[T]\", style=\"solid\", shape=house];");
  expect_in(all, "\\nembed_tokens\\nf32[256,64]\", style=\"filled,solid\", fontsize=8");
  expect_in(all, "\\nself_attn.q_proj\\nf32[64,64]");
  expect_in(all, "\\nlayers.1.k\\nf32[P,2,16]");
  expect_in(all, "\\nlogits\\nf32[T,256]\", style=\"solid\", peripheries=2];");
  expect_in(all, "n1 -> n");
  assert_null(strstr(all, "(external)"));
  for (int i = 0; i < g->n; i++) {
    snprintf(line, sizeof line, "  n%d [label=\"%%%d ", i, i);
    expect_in(all, line);
  }
  char *one = dot_string(g, 1, &e, &rc);
  assert_int_equal(rc, 0);
  expect_in(one, "label=\"layer 1\";");
  expect_in(one, "%2 const\\nf32[]\\n(external)\", style=\"rounded,dashed\"");
  snprintf(line, sizeof line, "  n%d [", find_weight(g, "model.layers.1.mlp.up_proj.weight"));
  expect_in(one, line);
  snprintf(line, sizeof line, "  n%d [", find_weight(g, "model.layers.0.mlp.up_proj.weight"));
  assert_null(strstr(one, line));
  assert_null(strstr(one, "logits"));
  assert_null(strstr(one, "embed_tokens"));
  free(one);
  one = dot_string(g, 5, &e, &rc);
  assert_int_equal(rc, -1);
  assert_string_equal(e.msg, "the graph has no layer 5 (layers 0..1)");
  free(one);
  ir_graph *flat = parse_ok("%a = input \"a\" : f32[T]\n%o = output \"o\" %a : f32[T]\n");
  one = dot_string(flat, 0, &e, &rc);
  assert_int_equal(rc, -1);
  assert_string_equal(e.msg, "the graph has no layer 0 (it has no layers)");
  free(one);
  ir_graph_free(flat);
  free(all);
  ir_graph_free(g);
}

/* Must not crash, leak or read out of bounds: every prefix of a file, and
 * random byte edits of the tiny graph's text; what parses is verified,
 * printed and drawn too. */
static void check_mangled(const char *text) {
  ir_graph *g = NULL;
  oc_error e = {{0}};
  if (ir_parse(text, "m.ir", &g, &e) != 0) {
    assert_null(g);
    assert_memory_equal(e.msg, "m.ir:", 5);
    return;
  }
  ir_verify(g, &e);
  free(ir_print_string(g));
  FILE *f = fopen("/dev/null", "w");
  assert_non_null(f);
  ir_print_dot(g, 0, f, &e);
  fclose(f);
  ir_graph_free(g);
}

static void mangled_text_is_rejected_cleanly(void **state) {
  (void)state;
  char *text = read_text("tests/data/ir/attention.ir");
  size_t n = strlen(text);
  for (size_t len = 0; len <= n; len++) {
    char *prefix = strndup(text, len);
    check_mangled(prefix);
    free(prefix);
  }
  free(text);
  olmo2_config c = tiny_tied();
  ir_graph *g = build(&c);
  text = ir_print_string(g);
  n = strlen(text);
  static const char interesting[] = "%{}[],:=\"\\#\n \t0123456789TP-+*.exinf";
  uint64_t seed = 0x9e3779b97f4a7c15u;
  for (int round = 0; round < 3000; round++) {
    char *m = strdup(text);
    for (int edits = 1 + round % 4; edits > 0; edits--) {
      seed = seed * 6364136223846793005u + 1442695040888963407u;
      size_t at = (size_t)(seed >> 33) % n;
      unsigned pick = (unsigned)(seed >> 20) & 0xff;
      m[at] = pick < 200 ? interesting[pick % (sizeof interesting - 1)] : (char)(pick | 1);
    }
    check_mangled(m);
    free(m);
  }
  free(text);
  ir_graph_free(g);
}

int main(void) {
  static olmo2_config sizes[5];
  sizes[0] = config(2048, 16, 16, 16, 8192);
  sizes[1] = config(4096, 32, 32, 32, 11008);
  sizes[2] = config(5120, 40, 40, 40, 13824);
  sizes[3] = config(5120, 64, 40, 8, 27648);
  sizes[4] = tiny_tied();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate(round_trip, &sizes[0]),
      cmocka_unit_test_prestate(round_trip, &sizes[1]),
      cmocka_unit_test_prestate(round_trip, &sizes[2]),
      cmocka_unit_test_prestate(round_trip, &sizes[3]),
      cmocka_unit_test_prestate(round_trip, &sizes[4]),
      cmocka_unit_test(doubles_round_trip),
      cmocka_unit_test(names_escape),
      cmocka_unit_test(files_print_as_expected),
      cmocka_unit_test(parse_file_errors),
      cmocka_unit_test(parse_errors_name_line_and_column),
      cmocka_unit_test(verifier_errors_through_parsing),
      cmocka_unit_test(misc_text),
      cmocka_unit_test(dot_whole_graph_and_layer),
      cmocka_unit_test(mangled_text_is_rejected_cleanly),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
