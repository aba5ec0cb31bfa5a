/* Checking a checkpoint against the graph that will read it (driver/). */
#ifndef OLMOC_CHECK_WEIGHTS_H
#define OLMOC_CHECK_WEIGHTS_H

#include "olmoc/ir.h"
#include "olmoc/olmo2.h"
#include "olmoc/weights.h"

/* Every weight node of g is present with its shape and dtype (a float one);
 * no tensor in the checkpoint is left unused. Messages name the file and the
 * tensor. */
int drv_check_weights(const rt_weights *w, const ir_graph *g, oc_error *e);

/* The graph of c reading its weights as dtype, once w is checked against
 * the graph reading them as stored: the caller converts them where they are
 * read (olmoc compile's rt_pack_weight; the JIT rounds f32 and f16 to bf16
 * as it packs or copies them). */
int drv_checked_graph(const olmo2_config *c, const rt_weights *w, ir_dtype stored, ir_dtype dtype, ir_graph **out,
                      oc_error *e);

#endif
