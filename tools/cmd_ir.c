/* `olmoc ir`: build a model's graph from its config.json, or read a
 * hand-written .ir file; verify it; run the passes (-O0/-O1/-O2 or a list);
 * print it as text, DOT or a summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "olmoc/ir_text.h"
#include "olmoc/olmo2.h"
#include "olmoc/passes.h"

static const char usage[] =
    "usage: olmoc ir -m MODEL [options]   the graph of a model's forward call\n"
    "       olmoc ir FILE.ir [options]    parse, verify and print a hand-written graph\n"
    "\n"
    "options:\n"
    "  -m, --model PATH   a model directory or its config.json\n"
    "  --emit KIND        text (default), dot or summary\n"
    "  --layer N          with --emit dot: only layer N and what flows into it\n"
    "  --dtype D          weight dtype in the graph: f32 (default), bf16 or f16\n"
    "  -O0, -O1, -O2      pass pipeline: none, clean-ups and exact fusions, all\n"
    "                     (default: -O0 for a .ir file, -O2 for a model)\n"
    "  --passes=A,B       run these passes in this order (`olmoc passes` lists them)\n"
    "  --disable-pass=A   skip pass A (repeatable, or a comma list)\n"
    "  --print-after=A    print the graph after pass A (repeatable, or a comma list)\n"
    "  --print-after-all  print the graph after every pass\n"
    "  --dump-dir DIR     write those prints to DIR/NN-pass.ir instead of stderr\n"
    "  --print-stats      per pass: nodes before and after, changes, time (stderr)\n"
    "  --max-tokens N     plan-memory: the largest T a call may have (default 512)\n"
    "  -o, --output FILE  write to FILE instead of standard output\n"
    "  -h, --help         show this help\n";

typedef struct ir_options {
  const char *model, *file, *emit, *output;
  long layer, max_tokens;
  ir_dtype dtype;
  int level; /* -1 until given */
  bool stats;
  pass_options passes;
  char disable[1024], print_after[1024]; /* comma lists gathered from repeated flags */
} ir_options;

/* Appends "name" to a comma list held in buf[1024]. */
static int add_to_list(char *buf, const char *opt, const char *name, oc_error *e) {
  size_t len = strlen(buf);
  if (!*name || len + strlen(name) + 2 > 1024)
    return oc_fail(e, "%s: expected pass names, found '%s'", opt, name);
  snprintf(buf + len, 1024 - len, "%s%s", len ? "," : "", name);
  return 0;
}

/* -O, --passes= and the other pass flags; 1 when `a` was one, -1 on error. */
static int parse_pass_flag(const char *a, ir_options *o, oc_error *e) {
  if (!strcmp(a, "-O0") || !strcmp(a, "-O1") || !strcmp(a, "-O2"))
    o->level = a[2] - '0';
  else if (!strncmp(a, "--passes=", 9)) {
    if (!a[9])
      return oc_fail(e, "--passes=: expected a comma-separated list of passes");
    o->passes.passes = a + 9;
  } else if (!strncmp(a, "--disable-pass=", 15))
    return add_to_list(o->disable, "--disable-pass", a + 15, e) ? -1 : 1;
  else if (!strncmp(a, "--print-after=", 14))
    return add_to_list(o->print_after, "--print-after", a + 14, e) ? -1 : 1;
  else if (!strcmp(a, "--print-after-all"))
    o->passes.print_after_all = true;
  else if (!strcmp(a, "--print-stats"))
    o->stats = true;
  else
    return 0;
  return 1;
}

/* Returns 1 when help was asked for, 0 when parsed, -1 on a usage error. */
static int parse_args(int argc, char **argv, ir_options *o, oc_error *e) {
  *o = (ir_options){.emit = "text", .layer = -1, .dtype = IR_F32, .level = -1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool takes_value = true;
    int flag = parse_pass_flag(a, o, e);
    if (flag < 0)
      return -1;
    if (flag)
      continue;
    if (!strcmp(a, "-h") || !strcmp(a, "--help"))
      return 1;
    else if (!strcmp(a, "--dump-dir"))
      o->passes.dump_dir = v;
    else if (!strcmp(a, "--max-tokens")) {
      if (cli_int(a, v, 1, 1 << 20, &o->max_tokens, e))
        return -1;
    }
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
  if (o->passes.passes && o->level >= 0)
    return oc_fail(e, "give either -O or --passes=, not both");
  o->passes.level = o->level >= 0 ? o->level : o->file ? 0 : 2;
  o->passes.disable = o->disable[0] ? o->disable : NULL;
  o->passes.print_after = o->print_after[0] ? o->print_after : NULL;
  o->passes.max_tokens = o->max_tokens;
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
    return ir_parse_file(o->file, g, e) ? -1 : ir_verify(*g, e) ? oc_wrap(e, "%s", o->file) : 0; /* parse errors name it */
  if (olmo2_config_load(o->model, c, e) || olmo2_build_graph(c, o->dtype, g, e))
    return -1;
  return ir_verify(*g, e) ? oc_wrap(e, "%s: the built graph does not verify", o->model) : 0;
}

static int run_passes(ir_options *o, const olmo2_config *c, ir_graph *g, oc_error *e) {
  pass_result r;
  if (o->model)
    o->passes.max_ctx = c->max_position_embeddings;
  int rc = pass_run_pipeline(g, &o->passes, &r, e);
  if (o->stats)
    pass_print_stats(&r, stderr);
  pass_result_free(&r);
  return rc;
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
    cli_usage_error("olmoc ir", e.msg);
    return 2;
  }
  olmo2_config c;
  ir_graph *g = NULL;
  int rc = load_graph(&o, &c, &g, &e) || run_passes(&o, &c, g, &e) || emit(&o, &c, g, &e);
  if (rc)
    fprintf(stderr, "olmoc ir: %s\n", e.msg);
  ir_graph_free(g);
  return rc ? 1 : 0;
}
