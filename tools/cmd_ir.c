/* `olmoc ir`: build a model's graph from its config.json, or read a
 * hand-written .ir file; verify it; print it as text, DOT or a summary. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "olmoc/ir_text.h"
#include "olmoc/olmo2.h"

static const char usage[] =
    "usage: olmoc ir -m MODEL [options]   the graph of a model's forward call\n"
    "       olmoc ir FILE.ir [options]    parse, verify and print a hand-written graph\n"
    "\n"
    "options:\n"
    "  -m, --model PATH   a model directory or its config.json\n"
    "  --emit KIND        text (default), dot or summary\n"
    "  --layer N          with --emit dot: only layer N and what flows into it\n"
    "  --dtype D          weight dtype in the graph: f32 (default), bf16 or f16\n"
    "  -o, --output FILE  write to FILE instead of standard output\n"
    "  -h, --help         show this help\n";

typedef struct ir_options {
  const char *model, *file, *emit, *output;
  long layer;
  ir_dtype dtype;
} ir_options;

/* Returns 1 when help was asked for, 0 when parsed, -1 on a usage error. */
static int parse_args(int argc, char **argv, ir_options *o, oc_error *e) {
  *o = (ir_options){.emit = "text", .layer = -1, .dtype = IR_F32};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool takes_value = true;
    if (!strcmp(a, "-h") || !strcmp(a, "--help"))
      return 1;
    else if (!strcmp(a, "-m") || !strcmp(a, "--model"))
      o->model = v;
    else if (!strcmp(a, "--emit"))
      o->emit = v;
    else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
      o->output = v;
    else if (!strcmp(a, "--layer")) {
      if (cli_int(a, v, 0, 1 << 20, &o->layer, e))
        return -1;
    } else if (!strcmp(a, "--dtype")) {
      int t = v ? ir_dtype_lookup(v) : -1;
      if (t < 0 || !ir_dtype_is_float((ir_dtype)t))
        return oc_fail(e, "--dtype: expected f32, bf16 or f16, found '%s'", v ? v : "");
      o->dtype = (ir_dtype)t;
    } else if (a[0] == '-')
      return oc_fail(e, "unknown option '%s'", a);
    else if (o->file)
      return oc_fail(e, "more than one graph file given ('%s' and '%s')", o->file, a);
    else {
      o->file = a;
      takes_value = false;
    }
    if (takes_value && !v)
      return oc_fail(e, "option '%s' needs a value", a);
    i += takes_value;
  }
  if (!o->model == !o->file)
    return oc_fail(e, "give either -m MODEL or one .ir file");
  if (strcmp(o->emit, "text") && strcmp(o->emit, "dot") && strcmp(o->emit, "summary"))
    return oc_fail(e, "--emit: expected text, dot or summary, found '%s'", o->emit);
  if (o->layer >= 0 && strcmp(o->emit, "dot"))
    return oc_fail(e, "--layer goes with --emit dot");
  return 0;
}

static void print_config(const char *path, const olmo2_config *c, FILE *out) {
  fprintf(out, "model            %s (Olmo2ForCausalLM)\n", path);
  fprintf(out,
          "shape            hidden %lld, layers %lld, heads %lld (kv %lld) x %lld, "
          "intermediate %lld, vocab %lld, context %lld\n",
          (long long)c->hidden_size, (long long)c->num_hidden_layers,
          (long long)c->num_attention_heads, (long long)c->num_key_value_heads,
          (long long)c->head_dim, (long long)c->intermediate_size, (long long)c->vocab_size,
          (long long)c->max_position_embeddings);
}

static int load_graph(const ir_options *o, olmo2_config *c, ir_graph **g, oc_error *e) {
  if (o->file)
    return ir_parse_file(o->file, g, e) || ir_verify(*g, e) ? oc_wrap(e, "%s", o->file) : 0;
  if (olmo2_config_load(o->model, c, e) || olmo2_build_graph(c, o->dtype, g, e))
    return -1;
  return ir_verify(*g, e) ? oc_wrap(e, "%s: the built graph does not verify", o->model) : 0;
}

static int emit(const ir_options *o, const olmo2_config *c, const ir_graph *g, oc_error *e) {
  rt_output out;
  if (rt_output_open(&out, o->output, e))
    return -1;
  int rc = 0;
  if (!strcmp(o->emit, "text"))
    rc = ir_print(g, out.f);
  else if (!strcmp(o->emit, "dot"))
    rc = ir_print_dot(g, (int)o->layer, out.f, e);
  else {
    if (o->model)
      print_config(o->model, c, out.f);
    rc = ir_print_summary(g, out.f);
  }
  if (rc && e->msg[0]) {
    rt_output_abandon(&out);
    return -1;
  }
  /* A stream error (disk full) is found and reported, with its cause, here. */
  return rt_output_close(&out, e);
}

int cmd_ir(int argc, char **argv) {
  oc_error e = {{0}};
  ir_options o;
  int parsed = parse_args(argc, argv, &o, &e);
  if (parsed == 1) {
    fputs(usage, stdout);
    return 0;
  }
  if (parsed < 0) {
    fprintf(stderr, "olmoc ir: %s\n%s", e.msg, usage);
    return 2;
  }
  olmo2_config c;
  ir_graph *g = NULL;
  int rc = load_graph(&o, &c, &g, &e) || emit(&o, &c, g, &e);
  if (rc)
    fprintf(stderr, "olmoc ir: %s\n", e.msg);
  ir_graph_free(g);
  return rc ? 1 : 0;
}
