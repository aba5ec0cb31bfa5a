/* olmoc_load, the JIT's way into the C API (olmoc/olmoc.h): the options as
 * the command line spells them, through drv_configure and drv_model_open
 * like every command; the rest of the API is runtime/model_api.c. */
#include <stdlib.h>
#include <string.h>

#include "olmoc/alloc.h"
#include "olmoc/driver.h"
#include "olmoc/model_handle.h"
#include "olmoc/olmoc.h"

OLMOC_API olmoc_load_options olmoc_default_load_options(void) { return (olmoc_load_options){0}; }

static void close_model(void *owner) {
  drv_model_close(owner);
  free(owner);
}

/* The options as a drv_request, the -O level checked here (the only one
 * that is not a command-line string as is). */
static int request(const olmoc_load_options *o, drv_request *r, oc_error *e) {
  *r = (drv_request){.passes = o->passes, .backend = o->backend, .threads = o->threads,
                     .target = o->target, .dtype = o->dtype, .pack_weights = o->pack_weights,
                     .compute = o->compute, .kv_cache = o->kv_cache, .ctx = o->context};
  const char *l = o->opt_level;
  if (l && (strlen(l) != 1 || l[0] < '0' || l[0] > '2'))
    return oc_fail(e, "opt_level: expected 0, 1 or 2, found '%s'", l);
  r->o0 = l && l[0] == '0', r->o1 = l && l[0] == '1', r->o2 = l && l[0] == '2';
  if (o->threads < 0 || o->context < 0)
    return oc_fail(e, "context (%lld) and threads (%d) must not be negative", (long long)o->context, o->threads);
  return 0;
}

OLMOC_API olmoc_status olmoc_load(const char *dir, const olmoc_load_options *o, olmoc_model **out) {
  olmoc_model *m = *out = rt_api_model_new();
  if (!m)
    return OLMOC_ERROR_MEMORY;
  olmoc_load_options opts = o ? *o : olmoc_default_load_options();
  drv_request r;
  drv_config c;
  if (!dir)
    return rt_api_fail(m, OLMOC_ERROR_ARGUMENT, "load: no checkpoint directory");
  if (request(&opts, &r, &m->error) || drv_configure(&r, DRV_JIT, &c, &m->error))
    return rt_api_failed(m, OLMOC_ERROR_ARGUMENT);
  drv_model *dm = oc_calloc(1, sizeof *dm);
  if (!dm)
    return rt_api_fail(m, OLMOC_ERROR_MEMORY, "out of memory");
  m->defaults = rt_sampling_default();
  int rc = drv_model_open(dm, dir, &c, true, &m->error);
  if (rc || rt_sampling_load(dir, &m->defaults, &(bool){false}, &m->error)) {
    close_model(dm);
    return rt_api_failed(m, rc == DRV_UNFIT ? OLMOC_ERROR_ARGUMENT : OLMOC_ERROR_WEIGHTS);
  }
  *m = (olmoc_model){.model = &dm->model, .tokenizer = dm->tokenizer, .eos = dm->eos,
                     .n_eos = dm->config.n_eos, .defaults = m->defaults, .owner = dm, .close = close_model};
  return OLMOC_OK;
}
