/* Symbolic dims (c + t*T + p*P) and tensor types: construction, comparison,
 * evaluation for concrete T and P, and their text spelling. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "olmoc/ir.h"

ir_dim ir_const_dim(int64_t c) { return (ir_dim){c, 0, 0}; }
bool ir_dim_eq(ir_dim a, ir_dim b) { return a.c == b.c && a.t == b.t && a.p == b.p; }
bool ir_dim_is_const(ir_dim d) { return d.t == 0 && d.p == 0; }
int64_t ir_dim_eval(ir_dim d, int64_t T, int64_t P) { return d.c + d.t * T + d.p * P; }

/* Appends one term ("P", "2*T", "-3") to buf at *len. */
static void put_term(char *buf, size_t n, size_t *len, int64_t coef, const char *sym) {
  if (coef == 0)
    return;
  const char *sign = coef < 0 ? "-" : (*len > 0 ? "+" : "");
  unsigned long long mag = coef < 0 ? -(unsigned long long)coef : (unsigned long long)coef;
  int w;
  if (!sym)
    w = snprintf(buf + *len, n - *len, "%s%llu", sign, mag);
  else if (mag == 1)
    w = snprintf(buf + *len, n - *len, "%s%s", sign, sym);
  else
    w = snprintf(buf + *len, n - *len, "%s%llu*%s", sign, mag, sym);
  if (w > 0)
    *len = *len + (size_t)w < n ? *len + (size_t)w : n - 1;
}

char *ir_dim_str(ir_dim d, char *buf, size_t n) {
  assert(n > 0);
  size_t len = 0;
  buf[0] = '\0';
  put_term(buf, n, &len, d.p, "P");
  put_term(buf, n, &len, d.t, "T");
  put_term(buf, n, &len, d.c, NULL);
  if (len == 0)
    snprintf(buf, n, "0");
  return buf;
}

bool ir_shape_eq(const ir_shape *a, const ir_shape *b) {
  if (a->rank != b->rank)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (!ir_dim_eq(a->dim[i], b->dim[i]))
      return false;
  return true;
}

bool ir_type_eq(const ir_type *a, const ir_type *b) {
  return a->dtype == b->dtype && ir_shape_eq(&a->shape, &b->shape);
}

char *ir_type_str(const ir_type *t, char *buf, size_t n) {
  size_t len = (size_t)snprintf(buf, n, "%s[", ir_dtype_name(t->dtype));
  for (int i = 0; i < t->shape.rank && len < n; i++) {
    char d[64];
    len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? "," : "",
                            ir_dim_str(t->shape.dim[i], d, sizeof d));
  }
  if (len < n)
    snprintf(buf + len, n - len, "]");
  return buf;
}

ir_shape ir_shape_of(int rank, const ir_dim *dims) {
  assert(rank >= 0 && rank <= IR_MAX_DIMS);
  ir_shape s = {.rank = rank};
  for (int i = 0; i < rank; i++)
    s.dim[i] = dims[i];
  return s;
}

int64_t ir_shape_numel(const ir_shape *s, int64_t T, int64_t P) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++)
    n *= ir_dim_eval(s->dim[i], T, P);
  return n;
}
