/* drv_quantize (`olmoc quantize`): a checkpoint's matmul weights quantized
 * once, as `--dtype q4` or `q8` quantizes them at every load, into a
 * quantized checkpoint directory that loads in the time it takes to map and
 * check it: the source's small files copied, and RT_QUANTIZED_FILE, a pack
 * of one section per tensor (the matrices in the session's panels, the rest
 * as stored) and the tensor index (docs/formats.md). Matrices are streamed a
 * few MiB at a time and their source pages given back, so memory stays near
 * one piece whatever the model's size. Invariant: a model opened from the
 * result runs on the same bits as the source opened with the same --dtype
 * and --target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "olmoc/alloc.h"
#include "olmoc/check_weights.h"
#include "olmoc/driver.h"
#include "olmoc/output.h"
#include "olmoc/quantized.h"

/* The files of a checkpoint besides its weights that a quantized one keeps. */
static const char *const kept[] = {"config.json",      "generation_config.json",  "tokenizer.json",
                                   "tokenizer_config.json", "special_tokens_map.json", "LICENSE",
                                   "README.md"};

static int copy_kept(const char *src, const char *out, oc_error *e) {
  for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
    char from[4096], to[4096];
    struct stat st;
    snprintf(from, sizeof from, "%s/%s", src, kept[i]);
    snprintf(to, sizeof to, "%s/%s", out, kept[i]);
    if (!stat(from, &st) && S_ISREG(st.st_mode) && rt_output_copy(from, to, e))
      return -1;
  }
  return 0;
}

/* Which weights of g are only ever a matmul's weight matrix (input 1 of
 * the -O0 graph's matmuls): those are quantized, the rest kept as stored
 * (a tied embedding, read by gather too, stays whole). */
static bool *matmul_only(const ir_graph *g) {
  bool *only = oc_calloc((size_t)g->n + 1, sizeof *only), *other = oc_calloc((size_t)g->n + 1, sizeof *other);
  for (int id = 0; only && other && id < g->n; id++)
    for (int i = 0; i < ir_arity(&g->nodes[id]); i++) {
      int in = g->nodes[id].in[i];
      if (g->nodes[in].op != IR_WEIGHT)
        continue;
      if (g->nodes[id].op == IR_MATMUL && i == 1 && g->nodes[in].type.shape.rank == 2)
        only[in] = true;
      else
        other[in] = true;
    }
  for (int id = 0; only && other && id < g->n; id++)
    only[id] = only[id] && !other[id];
  free(other);
  if (!other) {
    free(only);
    return NULL;
  }
  return only;
}

/* The index entry of one tensor. */
static void index_entry(cJSON *tensors, const char *name, const char *dtype, const int64_t *dims, int rank,
                        int section) {
  cJSON *t = cJSON_CreateObject();
  cJSON_AddItemToArray(tensors, t);
  cJSON_AddStringToObject(t, "name", name);
  cJSON_AddStringToObject(t, "dtype", dtype);
  cJSON *shape = cJSON_AddArrayToObject(t, "shape");
  for (int i = 0; i < rank; i++)
    cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)dims[i]));
  cJSON_AddNumberToObject(t, "section", section);
}

typedef struct quantizing {
  const drv_config *c;
  rt_weights *src;
  ir_graph *graph;
  cg_jit *jit;
  rt_pack_writer *pack;
  cJSON *index;
} quantizing;

/* Weight node id of q->graph into a section of the pack and the index. */
static int write_tensor(quantizing *q, int id, bool quantize, oc_step *step, oc_error *e) {
  const char *name = q->graph->nodes[id].name;
  const rt_tensor *t = rt_weights_find(q->src, name);
  ir_tensor w = {.dtype = t->dtype, .rank = t->rank, .data = t->data};
  memcpy(w.dims, t->dims, sizeof w.dims);
  ir_dtype wt = cg_quantized_dtype(q->jit, name);
  int section;
  int rc = quantize ? cg_write_quantized(q->jit, q->pack, name, &w, wt, &section, e)
                    : rt_pack_add(q->pack, RT_PACK_BUFFER, name, t->data, t->nbytes, &section, e);
  if (rc)
    return -1;
  if (!q->c->read_weights) /* a mapping: its pages come back if read again */
    rt_release_pages(t->data, t->nbytes);
  index_entry(cJSON_GetObjectItem(q->index, "tensors"), name,
              !quantize ? rt_safetensors_dtype_name(t->dtype) : wt == IR_Q4 ? "q4" : "q8", t->dims, t->rank,
              section);
  oc_step_add(step, 1, (double)t->nbytes);
  return 0;
}

/* Every weight of the graph into the pack, then the index. */
static int write_pack(quantizing *q, int64_t panel, oc_error *e) {
  bool *quantize = matmul_only(q->graph);
  q->index = cJSON_CreateObject();
  if (!quantize || !q->index) {
    free(quantize);
    return oc_fail(e, "out of memory");
  }
  unsigned long failures = oc_alloc_failures(); /* a cJSON node lost to memory drops its key */
  cJSON_AddStringToObject(q->index, "format", OC_QUANT_FORMAT);
  cJSON_AddNumberToObject(q->index, "version", OC_QUANT_VERSION);
  cJSON_AddStringToObject(q->index, "quantization", q->c->weights == DRV_Q4 ? "q4" : "q8");
  cJSON_AddNumberToObject(q->index, "group_size", OC_QUANT_GROUP);
  cJSON_AddNumberToObject(q->index, "panel_width", (double)panel);
  cJSON_AddArrayToObject(q->index, "tensors");
  int weights = 0, rc = 0;
  for (int id = 0; id < q->graph->n; id++)
    weights += q->graph->nodes[id].op == IR_WEIGHT;
  oc_step step;
  oc_step_begin(&step, q->c->progress, "quantizing weights", weights, "tensors", "B");
  for (int id = 0; id < q->graph->n && !rc; id++)
    if (q->graph->nodes[id].op == IR_WEIGHT)
      rc = write_tensor(q, id, quantize[id], &step, e);
  oc_step_end(&step);
  free(quantize);
  char *json = rc || oc_alloc_failures() != failures ? NULL : cJSON_PrintUnformatted(q->index);
  if (!rc && !json)
    rc = oc_fail(e, "out of memory writing the tensor index");
  if (!rc)
    rc = rt_pack_add(q->pack, RT_PACK_TENSORS, "tensors", json, strlen(json), NULL, e);
  cJSON_free(json);
  return rc;
}

static int quantize(quantizing *q, const char *dir, const char *out, oc_error *e) {
  olmo2_config config;
  if (drv_checkpoint_dir(dir, e) || olmo2_config_load(dir, &config, e) ||
      rt_weights_open_read(dir, q->c->read_weights, &q->src, e))
    return -1;
  if (rt_weights_quantized(q->src).dtype != IR_F32)
    return oc_fail(e, "%s: already quantized (by olmoc quantize): quantize the checkpoint it was made from", dir);
  const rt_tensor *embed = rt_weights_find(q->src, "model.embed_tokens.weight");
  ir_dtype stored = embed ? embed->dtype : IR_F32;
  if (drv_checked_graph(&config, q->src, stored, stored, &q->graph, e) || drv_jit_new(q->c, true, &q->jit, e))
    return -1;
  char path[4096];
  rt_pack_target target = {.cpu = "", .features = "", .build_id = 0,
                           .dtype = q->c->weights == DRV_Q4 ? RT_PACK_Q4 : RT_PACK_Q8};
  if ((size_t)snprintf(path, sizeof path, "%s/%s", out, RT_QUANTIZED_FILE) >= sizeof path)
    return oc_fail(e, "%s: the output path is too long", out);
  if (rt_output_make_dir(out, e) || copy_kept(dir, out, e) || rt_pack_create(path, &target, &q->pack, e) ||
      write_pack(q, cg_matmul_panel(q->jit), e))
    return -1;
  rt_pack_writer *pack = q->pack;
  q->pack = NULL;
  return rt_pack_finish(pack, e);
}

int drv_quantize(const char *dir, const drv_config *c, const char *out, oc_error *e) {
  if (c->weights != DRV_Q4 && c->weights != DRV_Q8)
    return oc_fail(e, "--dtype: olmoc quantize writes q4 or q8 weights (run and compile convert to f32 or bf16)");
  if (c->backend != DRV_JIT)
    return oc_fail(e, "olmoc quantize packs the JIT's panels: it takes no --backend");
  struct stat st;
  char existing[4096];
  snprintf(existing, sizeof existing, "%s/model.safetensors.index.json", out);
  bool weights_there = !stat(existing, &st);
  snprintf(existing, sizeof existing, "%s/model.safetensors", out);
  if (weights_there || !stat(existing, &st))
    return oc_fail(e, "%s holds a safetensors checkpoint: write the quantized one to a directory of its own", out);
  quantizing q = {.c = c};
  int rc = quantize(&q, dir, out, e);
  rt_pack_abandon(q.pack);
  cJSON_Delete(q.index);
  cg_jit_free(q.jit);
  ir_graph_free(q.graph);
  rt_weights_close(q.src);
  return rc;
}
