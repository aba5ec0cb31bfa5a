/* Weights for lowering at compile time (rt_pack_weight, olmoc/aot.h): a
 * tensor stored in the graph's dtype is handed over in place, from the
 * checkpoint's mapping; one in another dtype is converted piece by piece
 * into the pack writer's scratch file and mapped back, releasing the
 * checkpoint's pages as it goes. Either way the pack gets it only if the
 * program reads it in place, and memory stays near one piece however large
 * the model. f32, bf16 and f16 go to f32 (exactly) or bf16 (round to
 * nearest even). A quantized checkpoint's matrices are handed over as they
 * are, already in panels. */
#include <string.h>

#include "olmoc/aot.h"

static size_t dtype_bytes(ir_dtype d) { return d == IR_F32 ? 4 : d == IR_BF16 || d == IR_F16 ? 2 : 0; }

typedef struct conversion {
  const rt_tensor *src;
  ir_dtype to;
} conversion;

/* Bytes [at, at+len) of the converted tensor (whole elements). */
static int convert(void *ctx, uint64_t at, void *buf, size_t len, oc_error *e) {
  (void)e;
  const conversion *c = ctx;
  size_t out = dtype_bytes(c->to), in = dtype_bytes(c->src->dtype);
  int64_t i0 = (int64_t)(at / out), i1 = i0 + (int64_t)(len / out);
  for (int64_t i = i0; i < i1; i++) {
    float x = ir_load_f32(c->src->dtype, c->src->data, i);
    if (c->to == IR_F32)
      ((float *)buf)[i - i0] = x;
    else
      ((uint16_t *)buf)[i - i0] = rt_bf16_round(x);
  }
  rt_release_pages((const unsigned char *)c->src->data + (size_t)i0 * in, (size_t)(i1 - i0) * in);
  return 0;
}

int rt_pack_weight(void *ctx, const char *name, ir_tensor *out, oc_error *e) {
  rt_pack_weights *pw = ctx;
  const rt_tensor *src = rt_weights_find(pw->src, name);
  if (!src)
    return oc_fail(e, "the checkpoint has no tensor %s", name);
  bool quantized = src->dtype == IR_Q4 || src->dtype == IR_I8; /* panels from olmoc quantize, used as they are */
  if ((!dtype_bytes(src->dtype) && !quantized) || (pw->dtype != IR_F32 && pw->dtype != IR_BF16))
    return oc_fail(e, "%s: tensor %s is %s; packed weights are f32 or bf16 made from f32, bf16 or "
                   "f16", src->file, name, ir_dtype_name(src->dtype));
  const void *data = src->data;
  if (src->dtype == pw->dtype || quantized) {
    if (rt_pack_offer(pw->w, data, src->nbytes, name, e))
      return -1;
  } else {
    conversion c = {src, pw->dtype};
    uint64_t bytes = (uint64_t)(src->nbytes / dtype_bytes(src->dtype) * dtype_bytes(pw->dtype));
    if (!(data = rt_pack_stage(pw->w, name, bytes, convert, &c, e)))
      return oc_wrap(e, "converting %s", name);
  }
  *out = (ir_tensor){.dtype = quantized ? src->dtype : pw->dtype, .rank = src->rank, .data = data};
  memcpy(out->dims, src->dims, sizeof out->dims);
  return 0;
}
