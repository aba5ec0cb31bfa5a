/* rt_safetensors_write: the header (JSON, space-padded to a multiple of 8
 * bytes as the reference writer does), then each tensor's bytes in header
 * order, contiguous, so the file passes our own strict reader. Tensors are
 * filled and written a piece at a time through one buffer of RT_FILL_PIECE
 * bytes, whatever their size. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "olmoc/output.h"
#include "olmoc/weights.h"
#include "safetensors_internal.h"
#include "olmoc/alloc.h"

size_t rt_tensor_spec_bytes(const rt_tensor_spec *t) {
  size_t n = ir_dtype_size(t->dtype);
  for (int i = 0; i < t->rank; i++)
    if (t->dims[i] < 0 || __builtin_mul_overflow(n, (size_t)t->dims[i], &n))
      return 0;
  return n;
}

/* Appends a number to array; false, leaking nothing, when out of memory. */
static bool add_number(cJSON *array, double v) {
  cJSON *item = cJSON_CreateNumber(v);
  if (item && cJSON_AddItemToArray(array, item))
    return true;
  cJSON_Delete(item);
  return false;
}

/* The header JSON for the tensors, in order, or NULL. Every node is checked:
 * a header missing one under memory pressure would describe another file. */
static char *header_json(const rt_tensor_spec *t, int n, oc_error *e) {
  cJSON *root = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(root, "__metadata__");
  bool ok = cJSON_AddStringToObject(meta, "format", "pt") != NULL;
  size_t offset = 0;
  for (int i = 0; ok && i < n; i++) {
    size_t bytes = rt_tensor_spec_bytes(&t[i]);
    if (bytes == 0 && t[i].rank > 0) {
      cJSON_Delete(root);
      oc_fail(e, "tensor '%s' is too large to write", t[i].name);
      return NULL;
    }
    cJSON *entry = cJSON_AddObjectToObject(root, t[i].name);
    ok = cJSON_AddStringToObject(entry, "dtype", rt_safetensors_dtype_name(t[i].dtype)) != NULL;
    cJSON *shape = cJSON_AddArrayToObject(entry, "shape");
    ok = ok && shape;
    for (int d = 0; ok && d < t[i].rank; d++)
      ok = add_number(shape, (double)t[i].dims[d]);
    cJSON *offsets = cJSON_AddArrayToObject(entry, "data_offsets");
    ok = ok && add_number(offsets, (double)offset) && add_number(offsets, (double)(offset + bytes));
    offset += bytes;
  }
  char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (!json)
    oc_fail(e, "out of memory writing a safetensors header");
  return json;
}

int rt_safetensors_write(const char *path, const rt_tensor_spec *tensors, int n, rt_fill_fn fill,
                         void *ctx, oc_error *e) {
  char *json = header_json(tensors, n, e);
  if (!json)
    return oc_wrap(e, "%s", path);
  size_t len = strlen(json), padded = (len + 7) / 8 * 8;
  unsigned char size_le[8];
  for (int i = 0; i < 8; i++)
    size_le[i] = (unsigned char)((uint64_t)padded >> (8 * i));
  void *buf = oc_malloc(RT_FILL_PIECE);
  rt_output out;
  int rc = 0;
  if (!buf)
    rc = oc_fail(e, "%s: out of memory for a %zu-byte buffer", path, RT_FILL_PIECE);
  else if (rt_output_open(&out, path, e))
    rc = -1;
  else {
    fwrite(size_le, 1, 8, out.f);
    fwrite(json, 1, len, out.f);
    for (size_t i = len; i < padded; i++)
      fputc(' ', out.f);
    for (int i = 0; i < n && !rc; i++) {
      size_t bytes = rt_tensor_spec_bytes(&tensors[i]), element = ir_dtype_size(tensors[i].dtype);
      size_t piece = RT_FILL_PIECE / element * element;
      for (size_t at = 0; at < bytes && !rc; at += piece) {
        size_t k = bytes - at < piece ? bytes - at : piece;
        if (fill(ctx, i, at, buf, k, e))
          rc = oc_wrap(e, "%s: tensor '%s'", path, tensors[i].name);
        else if (fwrite(buf, 1, k, out.f) != k)
          rc = oc_fail(e, "%s: write failed: %s", path, strerror(errno));
      }
    }
    if (rc)
      rt_output_abandon(&out);
    else
      rc = rt_output_close(&out, e);
  }
  free(buf);
  cJSON_free(json);
  return rc;
}
