/* Opening a compiled model library's model (olmoc/model_api.h, shipped as
 * NAME.h): its packed weights beside the library or inside it, checked
 * against this CPU and this build. Every other call of the API is
 * runtime/model_api.c, shared with the JIT's olmoc_load. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>

#include "olmoc/aot.h"
#include "olmoc/model_handle.h"

extern const rt_aot_image olmoc_aot_image;

static void close_model(void *owner) { rt_aot_close(owner); }

OLMOC_API olmoc_params olmoc_default_params(void) { return (olmoc_params){0}; }

OLMOC_API olmoc_status olmoc_open(const olmoc_params *params, olmoc_model **out) {
  olmoc_model *m = *out = rt_api_model_new();
  if (!m)
    return OLMOC_ERROR_MEMORY;
  olmoc_params p = params ? *params : olmoc_default_params();
  if (p.context < 0 || p.threads < 0)
    return rt_api_fail(m, OLMOC_ERROR_ARGUMENT, "context (%lld) and threads (%d) must not be negative",
                       (long long)p.context, p.threads);
  if (rt_cpu_check(olmoc_aot_image.cpu, olmoc_aot_image.features, &m->error))
    return OLMOC_ERROR_CPU;
  Dl_info self = {0};
  dladdr((void *)olmoc_open, &self); /* this library's path: its weights are beside it or in it */
  rt_aot_options o = {.binary = self.dli_fname, .weights = p.weights,
                      .load = p.mmap ? RT_PACK_MMAP : RT_PACK_READ, .ctx = p.context, .threads = p.threads};
  rt_aot_model *am;
  if (rt_aot_open(&olmoc_aot_image, &o, &am, &m->error))
    return rt_api_failed(m, OLMOC_ERROR_WEIGHTS);
  *m = (olmoc_model){.model = &am->model, .tokenizer = am->tokenizer, .eos = am->meta.eos,
                     .n_eos = am->meta.n_eos, .defaults = am->meta.sampling, .owner = am,
                     .close = close_model};
  return OLMOC_OK;
}
