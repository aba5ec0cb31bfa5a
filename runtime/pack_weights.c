/* Weights into a packed file while the compiler lowers the graph
 * (rt_pack_weight, olmoc/aot.h): each checkpoint tensor is written as its
 * own buffer section, in the graph's dtype, in pieces of chunk_bytes, and the
 * checkpoint's pages are released as soon as they are written, so memory
 * stays near one piece however large the model. Lowering then gets the
 * section mapped back from the file. f32, bf16 and f16 checkpoints go to
 * f32 (exactly) or bf16 (round to nearest even). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "olmoc/aot.h"

#define PAGE 4096u

static uint16_t to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t)(u >> 16 | 0x40); /* NaN stays a (quiet) NaN */
  return (uint16_t)((u + 0x7fffu + (u >> 16 & 1)) >> 16);
}

/* Lets the kernel drop the pages of [p, p+n) from this process: the
 * checkpoint is a read-only file mapping, so they come back if read again. */
static void release(const void *p, size_t n) {
  uintptr_t lo = (uintptr_t)p / PAGE * PAGE, hi = ((uintptr_t)p + n) / PAGE * PAGE;
  if (hi > lo)
    (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static size_t dtype_bytes(ir_dtype d) { return d == IR_F32 ? 4 : d == IR_BF16 || d == IR_F16 ? 2 : 0; }

/* Elements [i0, i1) of src as dtype `to` into buf. */
static void convert(const rt_tensor *src, ir_dtype to, int64_t i0, int64_t i1, void *buf) {
  for (int64_t i = i0; i < i1; i++) {
    float x = ir_load_f32(src->dtype, src->data, i);
    if (to == IR_F32)
      ((float *)buf)[i - i0] = x;
    else
      ((uint16_t *)buf)[i - i0] = to_bf16(x);
  }
}

static int write_tensor(rt_pack_weights *pw, const rt_tensor *src, int64_t count, void *buf,
                        size_t chunk, oc_error *e) {
  size_t out_size = dtype_bytes(pw->dtype), in_size = dtype_bytes(src->dtype);
  int64_t per_chunk = (int64_t)(chunk / out_size);
  for (int64_t i = 0; i < count; i += per_chunk) {
    int64_t end = i + per_chunk < count ? i + per_chunk : count;
    const unsigned char *in = (const unsigned char *)src->data + (size_t)i * in_size;
    int rc;
    if (src->dtype == pw->dtype) {
      rc = rt_pack_write(pw->w, in, (size_t)(end - i) * out_size, e);
    } else {
      convert(src, pw->dtype, i, end, buf);
      rc = rt_pack_write(pw->w, buf, (size_t)(end - i) * out_size, e);
    }
    release(in, (size_t)(end - i) * in_size);
    if (rc)
      return -1;
  }
  return 0;
}

int rt_pack_weight(void *ctx, const char *name, ir_tensor *out, oc_error *e) {
  rt_pack_weights *pw = ctx;
  const rt_tensor *src = rt_weights_find(pw->src, name);
  if (!src)
    return oc_fail(e, "the checkpoint has no tensor %s", name);
  if (!dtype_bytes(src->dtype) || (pw->dtype != IR_F32 && pw->dtype != IR_BF16))
    return oc_fail(e, "%s: tensor %s is %s; packed weights are f32 or bf16 made from f32, bf16 or "
                   "f16", src->file, name, ir_dtype_name(src->dtype));
  int64_t count = 1;
  for (int d = 0; d < src->rank; d++)
    count *= src->dims[d];
  size_t chunk = pw->chunk_bytes ? pw->chunk_bytes : (size_t)4 << 20;
  void *buf = src->dtype == pw->dtype ? NULL : malloc(chunk);
  int index;
  int rc = src->dtype != pw->dtype && !buf ? oc_fail(e, "out of memory converting %s", name)
                                            : rt_pack_begin(pw->w, RT_PACK_BUFFER, name, &index, e);
  if (!rc && !(rc = write_tensor(pw, src, count, buf, chunk, e)))
    rc = rt_pack_end(pw->w, e);
  free(buf);
  const void *data = rc ? NULL : rt_pack_map(pw->w, index, e);
  if (!data)
    return oc_wrap(e, "packing %s", name);
  *out = (ir_tensor){.dtype = pw->dtype, .rank = src->rank, .data = data};
  memcpy(out->dims, src->dims, sizeof out->dims);
  return 0;
}
