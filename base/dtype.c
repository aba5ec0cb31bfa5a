/* The dtype table (names, sizes, float-ness) and reading any element as f32:
 * bf16 as the upper half of an f32, f16 exactly (subnormals included), i32
 * and i8 converted. Reads go through memcpy, so data need not be aligned. */
#include <math.h>
#include <string.h>

#include "olmoc/dtype.h"

static const struct {
  const char *name;
  size_t size;
  bool is_float;
} dtypes[IR_DTYPE_COUNT] = {
    [IR_F32] = {"f32", 4, true}, [IR_BF16] = {"bf16", 2, true}, [IR_F16] = {"f16", 2, true},
    [IR_I32] = {"i32", 4, false}, [IR_I8] = {"i8", 1, false},
    [IR_Q4] = {"q4", 0, false},
};

const char *ir_dtype_name(ir_dtype t) { return dtypes[t].name; }
size_t ir_dtype_size(ir_dtype t) { return dtypes[t].size; }
bool ir_dtype_is_float(ir_dtype t) { return dtypes[t].is_float; }

int ir_dtype_lookup(const char *name) {
  for (int t = 0; t < IR_DTYPE_COUNT; t++)
    if (dtypes[t].size && strcmp(dtypes[t].name, name) == 0)
      return t;
  return -1;
}

/* bf16 is the upper half of an f32. */
static float bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. All values,
 * subnormals included, are exact in f32; ldexp builds them without bit tricks. */
static float f16_to_f32(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  float v;
  if (exp == 0)
    v = ldexpf((float)man, -24); /* zero and subnormals: man * 2^-24 */
  else if (exp == 31)
    v = man ? NAN : INFINITY;
  else
    v = ldexpf((float)(man | 0x400), exp - 25); /* 1.man * 2^(exp-15) */
  return sign ? -v : v;
}

float ir_load_f32(ir_dtype dtype, const void *data, int64_t i) {
  const unsigned char *p = data; /* memcpy: mmapped checkpoints need not be aligned */
  switch (dtype) {
  case IR_F32: {
    float f;
    memcpy(&f, p + 4 * i, sizeof f);
    return f;
  }
  case IR_BF16: case IR_F16: {
    uint16_t h;
    memcpy(&h, p + 2 * i, sizeof h);
    return dtype == IR_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
  }
  case IR_I32: {
    int32_t v;
    memcpy(&v, p + 4 * i, sizeof v);
    return (float)v;
  }
  case IR_I8:
    return (float)(int8_t)p[i];
  default:
    return NAN;
  }
}

