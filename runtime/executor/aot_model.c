/* Opening a compiled model in its binary: check the CPU against the target
 * the kernels were compiled for, find the packed file (embedded, beside the
 * binary, or given), load it, and rebuild the tokenizer, the generation
 * metadata and the program with the binary's own kernels, presented to the
 * generation loop as an rt_model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor_internal.h"
#include "olmoc/alloc.h"
#include "olmoc/aot.h"

static const float *forward(void *self, const int32_t *tokens, int64_t T, oc_error *e) {
  rt_aot_model *m = self;
  return rt_program_run(m->program, tokens, T, m->threads, e);
}

static int64_t position(void *self) { return rt_program_position(((rt_aot_model *)self)->program); }
static void rewind_to(void *self, int64_t P) { rt_program_rewind(((rt_aot_model *)self)->program, P); }
static void set_threads(void *self, int threads) { ((rt_aot_model *)self)->threads = threads; }

/* binary's directory and name, "lib" and ".so" taken off a library's, + ".weights" */
static int weights_beside(const char *binary, char *path, size_t n, oc_error *e) {
  const char *slash = strrchr(binary, '/');
  const char *name = slash ? slash + 1 : binary;
  size_t len = strlen(name);
  if (len > 3 && !strcmp(name + len - 3, ".so")) {
    len -= 3;
    if (!strncmp(name, "lib", 3) && len > 3)
      name += 3, len -= 3;
  }
  int dir = slash ? (int)(slash - binary + 1) : 0;
  if (snprintf(path, n, "%.*s%.*s.weights", dir, binary, (int)len, name) >= (int)n)
    return oc_fail(e, "%s: path too long", binary);
  return 0;
}

static int open_pack(const rt_aot_image *img, const rt_aot_options *o, rt_pack **pack, oc_error *e) {
  rt_pack_expect x = {img->cpu, img->features, img->build_id, img->dtype};
  uint64_t at = 0;
  bool embedded = false;
  if (!o->weights && o->binary && rt_pack_find_embedded(o->binary, &at, &embedded, e))
    return -1;
  if (o->weights || embedded)
    return rt_pack_open(o->weights ? o->weights : o->binary, at, &x, o->load, o->progress, pack, e);
  if (!o->binary)
    return oc_fail(e, "no weights file given, and no binary to look beside");
  char path[4096];
  return weights_beside(o->binary, path, sizeof path, e) ||
         rt_pack_open(path, 0, &x, o->load, o->progress, pack, e);
}

int rt_aot_open(const rt_aot_image *img, const rt_aot_options *o, rt_aot_model **out, oc_error *e) {
  *out = NULL;
  double t0 = rt_seconds();
  if (rt_cpu_check(img->cpu, img->features, e))
    return -1;
  rt_aot_model *m = oc_calloc(1, sizeof *m);
  if (!m)
    return oc_fail(e, "out of memory");
  if (open_pack(img, o, &m->pack, e))
    goto fail;
  const char *source = rt_pack_path(m->pack);
  int meta = rt_pack_find(m->pack, RT_PACK_META), tok = rt_pack_find(m->pack, RT_PACK_TOKENIZER);
  if (meta < 0 || tok < 0) {
    oc_fail(e, "%s: no %s section", source, meta < 0 ? "generation" : "tokenizer");
    goto fail;
  }
  if (rt_aot_meta_unpack(rt_pack_data(m->pack, meta), rt_pack_section_at(m->pack, meta)->bytes,
                         source, &m->meta, e) ||
      rt_tokenizer_unpack(rt_pack_data(m->pack, tok), rt_pack_section_at(m->pack, tok)->bytes,
                          source, &m->tokenizer, e) ||
      rt_program_unpack(m->pack, img->kernels, img->n_kernels, o->ctx, &m->program, e))
    goto fail;
  if (m->program->out_cols != m->meta.vocab) { /* generation reads rows of vocab logits */
    oc_fail(e, "%s: the program returns %lld logits per token, the model has %lld: the file is damaged",
            source, (long long)m->program->out_cols, (long long)m->meta.vocab);
    goto fail;
  }
  m->threads = o->threads > 0 ? o->threads : rt_default_threads();
  m->model = (rt_model){.self = m,
                        .vocab = (int32_t)m->meta.vocab,
                        .ctx = o->ctx > 0 ? o->ctx : m->meta.ctx,
                        .forward = forward,
                        .position = position,
                        .rewind = rewind_to,
                        .set_threads = set_threads};
  m->load_seconds = rt_seconds() - t0;
  *out = m;
  return 0;
fail:
  rt_aot_close(m);
  return -1;
}

void rt_aot_close(rt_aot_model *m) {
  if (!m)
    return;
  rt_program_free(m->program);
  rt_tokenizer_free(m->tokenizer);
  rt_pack_close(m->pack);
  free(m);
}
