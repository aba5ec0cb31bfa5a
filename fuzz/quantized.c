/* fuzz_quantized: a quantized checkpoint's tensor index
 * (runtime/weights/quantized_read.c). The input's first byte picks the
 * header's dtype (odd: q4, even: q8); the rest is the index, written with
 * fixed buffer sections into a model.olmoc whose checksums pass, in a private
 * temporary directory, and opened from there. The sections: 0 of 256 bytes
 * (an F32 [64] or BF16 [128]), 1 of a q4 [64,64] in 32-column panels, 2 of a
 * q8 [32,32], 3 of 0 bytes. Checks: a refused file has a message; an
 * accepted one holds tensors found by name whose bytes (all read) are their
 * section's, and says how it is quantized. */
#include "fuzz.h"

#include <unistd.h>

#include "olmoc/pack.h"
#include "olmoc/quantized.h"
#include "olmoc/weights.h"

static char dir[64], path[128]; /* the temporary directory once made, its model.olmoc */
static volatile unsigned sink;

static void remove_dir(void) {
  unlink(path);
  rmdir(dir);
}

static void write_pack(const uint8_t *data, size_t size) {
  static unsigned char bytes[4096];
  const size_t sizes[] = {256, (size_t)oc_quant_matrix_bytes(IR_Q4, 32, 64, 64),
                          (size_t)oc_quant_matrix_bytes(IR_I8, 32, 32, 32), 0};
  rt_pack_target t = {"", "", 0, size && data[0] % 2 ? RT_PACK_Q4 : RT_PACK_Q8};
  rt_pack_writer *w;
  oc_error e = {{0}};
  FUZZ_CHECK(!rt_pack_create(path, &t, &w, &e), "%s", e.msg);
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
    FUZZ_CHECK(!rt_pack_add(w, RT_PACK_BUFFER, "tensor", bytes, sizes[i], NULL, &e), "%s", e.msg);
  FUZZ_CHECK(!rt_pack_add(w, RT_PACK_TENSORS, "tensors", size ? data + 1 : data, size ? size - 1 : 0, NULL, &e),
             "%s", e.msg);
  FUZZ_CHECK(!rt_pack_finish(w, &e), "%s", e.msg);
}

int fuzz_quantized(const uint8_t *data, size_t size) {
  fuzz_make_dir(dir, sizeof dir, remove_dir);
  snprintf(path, sizeof path, "%s/" RT_QUANTIZED_FILE, dir);
  write_pack(data, size);
  rt_weights *w = NULL;
  oc_error e = {{0}};
  if (rt_weights_open(dir, &w, &e) != 0) {
    FUZZ_CHECK(!w && e.msg[0], "rt_weights_open failed without a message");
    return 0;
  }
  rt_quantized q = rt_weights_quantized(w);
  FUZZ_CHECK(q.dtype == IR_Q4 || q.dtype == IR_I8, "an accepted file is quantized as %d", (int)q.dtype);
  unsigned sum = 0;
  for (int i = 0; i < rt_weights_count(w); i++) {
    const rt_tensor *t = rt_weights_at(w, i);
    FUZZ_CHECK(t && rt_weights_find(w, t->name) == t, "tensor %d is not found by its name", i);
    FUZZ_CHECK(t->nbytes <= 4096, "tensor '%s' has %zu bytes, more than any section", t->name, t->nbytes);
    const unsigned char *b = t->data;
    for (size_t k = 0; k < t->nbytes; k++) sum += b[k]; /* faults if outside the mapping */
  }
  sink = sum; /* keeps the reads */
  rt_weights_close(w);
  return 0;
}

FUZZ_MAIN(fuzz_quantized)
