/* Reading a quantized checkpoint's model.olmoc (written by `olmoc quantize`,
 * docs/formats.md): a pack (olmoc/pack.h) with one buffer section per tensor
 * and a JSON tensor index naming each one's dtype, shape and section. The
 * pack's own checks come first (magic, version, header, table and every
 * checksum: the buffers are mapped, then each page is read once to verify
 * it), then the index: its format and version, the quantization against the
 * header's, and every tensor's bytes against its shape. Invariant: after a
 * successful open every tensor's data holds exactly the bytes its dtype and
 * shape need (panels: olmoc/quantized.h), so lowering may trust them. */
#include <stdlib.h>
#include <string.h>

#include "olmoc/alloc.h"
#include "olmoc/quantized.h"
#include "safetensors_internal.h"

/* A tensor's dtype in the index: the panels' "q4" and "q8", or a
 * safetensors spelling for a tensor kept as stored. */
static bool index_dtype(const char *s, ir_dtype *out) {
  static const struct {
    const char *name;
    ir_dtype dtype;
  } names[] = {{"q4", IR_Q4}, {"q8", IR_I8}, {"F32", IR_F32}, {"BF16", IR_BF16}, {"F16", IR_F16}};
  for (size_t i = 0; s && i < sizeof names / sizeof *names; i++)
    if (!strcmp(s, names[i].name)) {
      *out = names[i].dtype;
      return true;
    }
  return false;
}

/* The index's integer field `key` of j, in [lo, hi]. */
static int field(const char *path, const char *what, const cJSON *j, const char *key, uint64_t lo, uint64_t hi,
                 uint64_t *out, oc_error *e) {
  const char *why = st_as_count(cJSON_GetObjectItemCaseSensitive(j, key), out);
  if (!why && (*out < lo || *out > hi))
    why = "is out of range";
  return why ? oc_fail(e, "%s: %s: \"%s\" %s", path, what, key, why) : 0;
}

/* Bytes a tensor of this dtype and shape holds (panels nr wide when
 * quantized), or 0 when it overflows or a quantized one is not a matrix. */
static uint64_t tensor_bytes(ir_dtype d, const int64_t *dims, int rank, int64_t nr) {
  if (d == IR_Q4 || d == IR_I8)
    return rank == 2 ? oc_quant_matrix_bytes(d, nr, dims[0], dims[1]) : 0;
  uint64_t n = ir_dtype_size(d);
  for (int i = 0; i < rank; i++)
    n = dims[i] && n > UINT64_MAX / (uint64_t)dims[i] ? 0 : n * (uint64_t)dims[i];
  return n;
}

/* Entry j of the index, checked against the pack and added to w. */
static int add_entry(rt_weights *w, const char *path, const cJSON *j, bool *used, oc_error *e) {
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name"), *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
  if (!cJSON_IsString(name) || !*name->valuestring || strlen(name->valuestring) > 255)
    return oc_fail(e, "%s: a tensor of the index has no name (a string of 1 to 255 bytes)", path);
  const char *n = name->valuestring;
  ir_dtype dtype;
  if (!index_dtype(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "dtype")), &dtype))
    return oc_fail(e, "%s: tensor '%s': \"dtype\" is not one of q4, q8, F32, BF16, F16", path, n);
  if (dtype == IR_Q4 && w->quantized.dtype != IR_Q4)
    return oc_fail(e, "%s: tensor '%s' is q4 in a q8 checkpoint", path, n);
  int rank = cJSON_GetArraySize(shape);
  if (!cJSON_IsArray(shape) || rank < 1 || rank > IR_MAX_DIMS)
    return oc_fail(e, "%s: tensor '%s': \"shape\" is not a list of 1 to %d sizes", path, n, IR_MAX_DIMS);
  int64_t dims[IR_MAX_DIMS] = {0};
  for (int i = 0; i < rank; i++) {
    uint64_t d;
    const char *why = st_as_count(cJSON_GetArrayItem(shape, i), &d);
    if (why || d < 1 || d > INT32_MAX)
      return oc_fail(e, "%s: tensor '%s': size %d of \"shape\" %s", path, n, i, why ? why : "is out of range");
    dims[i] = (int64_t)d;
  }
  uint64_t section;
  int count = rt_pack_count(w->pack);
  if (field(path, n, j, "section", 0, (uint64_t)count - 1, &section, e))
    return -1;
  const rt_pack_section *s = rt_pack_section_at(w->pack, (int)section);
  if (s->kind != RT_PACK_BUFFER || used[section])
    return oc_fail(e, "%s: tensor '%s': section %d is not a buffer of its own", path, n, (int)section);
  used[section] = true;
  uint64_t want = tensor_bytes(dtype, dims, rank, w->quantized.panel);
  char dims_str[96];
  if (!want || s->bytes != want)
    return oc_fail(e, "%s: tensor '%s' (%s %s) needs %llu bytes, its section holds %llu", path, n,
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "dtype")),
                   rt_dims_str(dims, rank, dims_str, sizeof dims_str), (unsigned long long)want,
                   (unsigned long long)s->bytes);
  rt_tensor *t;
  if (st_add_tensor(w, &t, rt_pack_path(w->pack)) || !(t->name = oc_strdup(n)))
    return oc_fail(e, "%s: out of memory", path);
  t->dtype = dtype;
  t->rank = rank;
  memcpy(t->dims, dims, sizeof dims);
  t->data = rt_pack_data(w->pack, (int)section);
  t->nbytes = (size_t)s->bytes;
  return 0;
}

/* The index's header fields, then its tensors. */
static int read_index(rt_weights *w, const char *path, const cJSON *index, oc_error *e) {
  const rt_pack_header *h = rt_pack_header_of(w->pack);
  const char *format = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(index, "format"));
  if (!cJSON_IsObject(index) || !format || strcmp(format, OC_QUANT_FORMAT))
    return oc_fail(e, "%s: the tensor index is not an olmoc quantized checkpoint's", path);
  uint64_t version, group, panel;
  if (field(path, "the index", index, "version", 0, UINT32_MAX, &version, e))
    return -1;
  if (version != OC_QUANT_VERSION)
    return oc_fail(e, "%s: quantized-checkpoint version %llu, but this olmoc reads version %d: quantize the "
                   "checkpoint again with this olmoc", path, (unsigned long long)version, OC_QUANT_VERSION);
  const char *q = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(index, "quantization"));
  ir_dtype dtype;
  if (!index_dtype(q, &dtype) || (dtype != IR_Q4 && dtype != IR_I8) ||
      (h->dtype == RT_PACK_Q4) != (dtype == IR_Q4))
    return oc_fail(e, "%s: the index says the weights are %s, the header says %s: the file is damaged", path,
                   q ? q : "(nothing)", h->dtype == RT_PACK_Q4 ? "q4" : "q8");
  if (field(path, "the index", index, "group_size", OC_QUANT_GROUP, OC_QUANT_GROUP, &group, e) ||
      field(path, "the index", index, "panel_width", 1, 64, &panel, e))
    return -1;
  w->quantized = (rt_quantized){dtype, (int64_t)panel};
  const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(index, "tensors"), *t;
  if (!cJSON_IsArray(tensors))
    return oc_fail(e, "%s: the index has no list of \"tensors\"", path);
  bool *used = oc_calloc((size_t)rt_pack_count(w->pack) + 1, sizeof *used);
  if (!used)
    return oc_fail(e, "%s: out of memory", path);
  int rc = 0;
  cJSON_ArrayForEach(t, tensors) if (!rc) rc = add_entry(w, path, t, used, e);
  free(used);
  return rc;
}

int st_open_quantized(rt_weights *w, const char *path, oc_error *e) {
  if (rt_pack_open(path, 0, NULL, w->read ? RT_PACK_READ : RT_PACK_MMAP_CHECKED, NULL, &w->pack, e))
    return -1;
  const rt_pack_header *h = rt_pack_header_of(w->pack);
  int at = rt_pack_find(w->pack, RT_PACK_TENSORS);
  if (h->build_id || rt_pack_find(w->pack, RT_PACK_PROGRAM) >= 0)
    return oc_fail(e, "%s: a model binary's weights file, not a quantized checkpoint (olmoc quantize writes "
                   "those)", path);
  if (at < 0 || (h->dtype != RT_PACK_Q4 && h->dtype != RT_PACK_Q8))
    return oc_fail(e, "%s: an olmoc pack without a tensor index of q4 or q8 weights: not a quantized checkpoint",
                   path);
  cJSON *index = cJSON_ParseWithLength(rt_pack_data(w->pack, at), (size_t)rt_pack_section_at(w->pack, at)->bytes);
  int rc = index ? read_index(w, path, index, e) : oc_fail(e, "%s: the tensor index is not JSON", path);
  cJSON_Delete(index);
  return rc ? -1 : st_index_names(w, e);
}
