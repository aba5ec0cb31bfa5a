/* Checking a checkpoint against the graph that will read it (driver/). */
#ifndef OLMOC_CHECK_WEIGHTS_H
#define OLMOC_CHECK_WEIGHTS_H

#include "olmoc/ir.h"
#include "olmoc/weights.h"

/* Every weight node of g is present with its shape and a float dtype; no tensor
 * in the checkpoint is left unused. Messages name the file and the tensor. */
int drv_check_weights(const rt_weights *w, const ir_graph *g, oc_error *e);

#endif
