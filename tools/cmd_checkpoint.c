/* `olmoc checkpoint`: write a random-weight checkpoint in the published
 * Hugging Face layout (config.json, f32 safetensors shards with
 * model.safetensors.index.json, tokenizer.json) for any config, so loading,
 * running and memory can be tested at real sizes without a download. Tensors
 * are generated and written a piece at a time (RT_FILL_PIECE): memory stays
 * a few MiB whatever the model.
 * The directory is written beside itself and appears whole at the end
 * (rt_output_dir): a full disk or a signal leaves nothing, and a directory
 * that was there is as it was. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "olmoc/alloc.h"
#include "olmoc/olmo2.h"
#include "olmoc/progress.h"
#include "olmoc/weights.h"

static const char usage[] =
    "usage: olmoc checkpoint -m MODEL -o DIR [options]\n"
    "\n"
    "Writes a checkpoint with random weights for MODEL's config.json.\n"
    "\n"
    "options:\n"
    "  -m, --model PATH     a model directory or config.json (e.g. models/olmo2-7b)\n"
    "  -o, --output DIR     the directory to write (created if missing)\n"
    "  --shards N           safetensors files, with an index when N > 1 (default 2)\n"
    "  --tokenizer FILE     tokenizer.json to include (default: the model's, if any)\n"
    "  --seed S             random seed (default 1)\n"
    "  -q, --quiet          no progress on standard error (it shows for steps over 1 s)\n"
    "  -h, --help           show this help\n";

/* Progress over every shard: a tensor counts as written once the next one
 * is asked for (or the last shard is closed). */
typedef struct written {
  oc_step step;
  size_t pending; /* bytes of the tensor being written, or 0 */
} written;

static void written_flush(written *w) {
  if (w->pending)
    oc_step_add(&w->step, 1, (double)w->pending);
  w->pending = 0;
}

typedef struct filler {
  const rt_tensor_spec *specs;
  uint64_t seed;
  written *written;
} filler;

/* splitmix64: a fixed, portable stream per tensor, whose state moves by
 * STEP per number, so a piece of a tensor starts where it falls. */
#define STEP 0x9e3779b97f4a7c15u
static uint64_t next(uint64_t *s) {
  uint64_t z = (*s += STEP);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* Uniform with the variance the model's initialisation has: norms near 1,
 * matrices with standard deviation 1/sqrt(fan_in), embeddings 1. */
static int fill_random(void *ctx, int index, size_t at, void *data, size_t nbytes, oc_error *e) {
  (void)e;
  const filler *f = ctx;
  const rt_tensor_spec *t = &f->specs[index];
  if (at == 0) {
    written_flush(f->written);
    f->written->pending = rt_tensor_spec_bytes(t);
  }
  uint64_t state = (f->seed ^ (0x100000001b3u * (uint64_t)(index + 1))) + STEP * (at / sizeof(float));
  bool norm = t->rank == 1, embed = strstr(t->name, "embed_tokens") != NULL;
  float scale = norm ? 0.1f : embed ? 1.0f : 1.0f / sqrtf((float)t->dims[1]);
  float *x = data;
  for (size_t i = 0; i < nbytes / sizeof *x; i++) {
    float u = (float)((double)(next(&state) >> 11) * 0x1.0p-53) * 2.0f - 1.0f; /* [-1, 1) */
    x[i] = (norm ? 1.0f : 0.0f) + u * scale * 1.7320508f;                   /* sqrt(3): std */
  }
  return 0;
}

static int write_text(const char *path, const char *text, size_t len, oc_error *e) {
  rt_output out;
  if (rt_output_open(&out, path, e))
    return -1;
  if (fwrite(text, 1, len, out.f) != len) {
    rt_output_abandon(&out);
    return oc_fail(e, "%s: write failed: %s", path, strerror(errno));
  }
  return rt_output_close(&out, e);
}

static int write_index(const char *dir, const rt_tensor_spec *specs, const int *shard_of, int n,
                       int shards, size_t total, oc_error *e) {
  unsigned long failures = oc_alloc_failures(); /* a node lost to memory drops its key */
  cJSON *root = cJSON_CreateObject();
  cJSON_AddNumberToObject(cJSON_AddObjectToObject(root, "metadata"), "total_size", (double)total);
  cJSON *map = cJSON_AddObjectToObject(root, "weight_map");
  char name[64], path[4096];
  for (int i = 0; i < n; i++) {
    snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", shard_of[i] + 1, shards);
    cJSON_AddStringToObject(map, specs[i].name, name);
  }
  char *json = oc_alloc_failures() == failures ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  if (!json)
    return oc_fail(e, "out of memory writing the index");
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
  int rc = write_text(path, json, strlen(json), e);
  cJSON_free(json);
  return rc;
}

/* Up to `shards` files of about equal bytes, tensors in the graph's order. */
static int write_shards(const char *dir, const rt_tensor_spec *specs, int n, int shards,
                        uint64_t seed, const oc_progress *progress, oc_error *e) {
  size_t total = 0, done = 0;
  for (int i = 0; i < n; i++)
    total += rt_tensor_spec_bytes(&specs[i]);
  int *shard_of = malloc((size_t)n * sizeof *shard_of);
  if (!shard_of)
    return oc_fail(e, "out of memory");
  /* A tensor goes to the shard its middle byte falls in; shards left empty
   * (a few huge tensors) are dropped by numbering the others consecutively. */
  int raw_prev = -1, used = 0;
  for (int i = 0; i < n; i++) {
    size_t bytes = rt_tensor_spec_bytes(&specs[i]);
    int raw = (int)(((double)done + 0.5 * (double)bytes) / (double)total * shards);
    used += raw != raw_prev;
    raw_prev = raw;
    shard_of[i] = used - 1;
    done += bytes;
  }
  shards = used;
  int rc = 0;
  char path[4096];
  written w = {0};
  oc_step_begin(&w.step, progress, "writing checkpoint", n, "tensors", "B");
  for (int s = 0, first = 0; s < shards && !rc; s++) {
    int count = 0;
    while (first + count < n && shard_of[first + count] == s)
      count++;
    if (shards == 1)
      snprintf(path, sizeof path, "%s/model.safetensors", dir);
    else
      snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, s + 1, shards);
    filler part = {specs + first, seed ^ (uint64_t)first, &w};
    rc = rt_safetensors_write(path, specs + first, count, fill_random, &part, e);
    first += count;
  }
  if (!rc)
    written_flush(&w);
  oc_step_end(&w.step);
  if (!rc && shards > 1)
    rc = write_index(dir, specs, shard_of, n, shards, total, e);
  free(shard_of);
  return rc;
}

static int checkpoint(const char *model, const char *asked, long shards, const char *tokenizer,
                      uint64_t seed, bool quiet, oc_error *e) {
  olmo2_config c;
  ir_graph *g = NULL;
  rt_output_dir out;
  if (olmo2_config_load(model, &c, e) || olmo2_build_graph(&c, IR_F32, &g, e))
    return -1;
  if (rt_output_dir_open(&out, asked, e)) {
    ir_graph_free(g);
    return -1;
  }
  const char *dir = out.tmp;
  rt_tensor_spec *specs = malloc((size_t)g->n * sizeof *specs);
  int n = 0;
  for (int i = 0; specs && i < g->n; i++) {
    const ir_node *w = &g->nodes[i];
    if (w->op != IR_WEIGHT)
      continue;
    specs[n] = (rt_tensor_spec){w->name, IR_F32, w->type.shape.rank, {0}};
    for (int d = 0; d < w->type.shape.rank; d++)
      specs[n].dims[d] = w->type.shape.dim[d].c;
    n++;
  }
  char config_path[4096], from[4096], to[4096];
  struct stat st;
  bool model_is_dir = stat(model, &st) == 0 && S_ISDIR(st.st_mode);
  snprintf(config_path, sizeof config_path, "%s%s", model, model_is_dir ? "/config.json" : "");
  snprintf(to, sizeof to, "%s/config.json", dir);
  int rc = specs ? rt_output_copy(config_path, to, e) : oc_fail(e, "out of memory");
  if (!rc && !tokenizer && model_is_dir) {
    snprintf(from, sizeof from, "%s/tokenizer.json", model);
    tokenizer = access(from, R_OK) == 0 ? from : NULL;
  }
  snprintf(to, sizeof to, "%s/tokenizer.json", dir);
  if (!rc && tokenizer)
    rc = rt_output_copy(tokenizer, to, e);
  oc_progress_bar bar;
  if (!rc)
    rc = write_shards(dir, specs, n, (int)(shards < n ? shards : n), seed, oc_progress_stderr(&bar, quiet), e);
  free(specs);
  ir_graph_free(g);
  if (rc) {
    rt_output_dir_abandon(&out, e);
    return -1;
  }
  return rt_output_dir_commit(&out, e);
}

int cmd_checkpoint(int argc, char **argv) {
  const char *model = NULL, *dir = NULL, *tokenizer = NULL;
  long shards = 2, seed = 1;
  bool quiet = false;
  const cli_option opts[] = {
      CLI_OPT_STRING("-m", "--model", &model),
      CLI_OPT_STRING("-o", "--output", &dir),
      CLI_OPT_STRING(NULL, "--tokenizer", &tokenizer),
      CLI_OPT_INT(NULL, "--shards", &shards, 1, 99999, NULL),
      CLI_OPT_INT(NULL, "--seed", &seed, 0, 9e18, NULL),
      CLI_OPT_FLAG("-q", "--quiet", &quiet),
      {0},
  };
  oc_error e = {{0}};
  int parsed = cli_parse(argc, argv, opts, NULL, &e);
  if (!parsed && (!model || !dir))
    parsed = oc_fail(&e, "-m MODEL and -o DIR are required");
  return cli_exit("checkpoint", usage, parsed,
                  !parsed && checkpoint(model, dir, shards, tokenizer, (uint64_t)seed, quiet, &e), &e);
}
