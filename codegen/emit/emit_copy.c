/* Data movement as copy kernels over the rows of the output (all its dims
 * but the last), shaped: slice, concat, transpose and repeat each map output
 * index i along output dim d to index i / div + shift along one input axis
 * (slice: shift `start` on its axis; repeat: div `times` on its axis;
 * transpose: the axis is perm[d]; concat: the second input, shifted back by
 * the first's extent, past it). A row's source offset is computed once; the
 * row is then copied in vectors when its last dim is contiguous in the input,
 * element by element otherwise. Exact: values are moved, never computed. */
#include "emit.h"

/* How the output's index along each dim finds an input element. */
typedef struct source {
  LLVMValueRef base;                 /* the input */
  LLVMValueRef stride[IR_MAX_DIMS];  /* input elements per step along output dim d */
  LLVMValueRef shift[IR_MAX_DIMS];   /* added to the (divided) index along output dim d */
  int div[IR_MAX_DIMS];
  bool contiguous;                   /* the last dim: stride 1, no div */
} source;

/* The identity map of input `in` (same rank as the output). */
static void identity(cg_emit *e, LLVMValueRef base, const ir_shape *in, source *s) {
  LLVMValueRef dims[IR_MAX_DIMS], stride = cg_i64(e, 1);
  cg_extents(e, in, dims);
  *s = (source){.base = base, .contiguous = true};
  for (int d = in->rank - 1; d >= 0; d--) {
    s->stride[d] = stride;
    s->shift[d] = cg_i64(e, 0);
    s->div[d] = 1;
    stride = LLVMBuildNSWMul(e->b, stride, dims[d], "");
  }
}

/* Index i along output dim d as input elements: (i / div + shift) * stride. */
static LLVMValueRef step(cg_emit *e, const source *s, int d, LLVMValueRef i) {
  if (s->div[d] > 1)
    i = LLVMBuildSDiv(e->b, i, cg_i64(e, s->div[d]), "");
  return LLVMBuildNSWMul(e->b, LLVMBuildNSWAdd(e->b, i, s->shift[d], ""), s->stride[d], "");
}

/* The offset of a row, from its index along the output's leading dims idx[0..n). */
static LLVMValueRef row_offset(cg_emit *e, const source *s, const LLVMValueRef *idx, int n) {
  LLVMValueRef at = cg_i64(e, 0);
  for (int d = 0; d < n; d++)
    at = LLVMBuildNSWAdd(e->b, at, step(e, s, d, idx[d]), "");
  return at;
}

typedef struct span {
  LLVMValueRef src, dst; /* element 0 of the run in each */
} span;

static void copy_step(cg_emit *e, LLVMValueRef j, LLVMValueRef mask, void *ctx) {
  const span *sp = ctx;
  cg_store_masked(e, cg_load_masked(e, sp->src, j, mask, 0.0), sp->dst, j, mask);
}

/* Output columns [c0, c0+len) of a row: dst is the output row, src the input
 * at the row's offset. */
static void copy_columns(cg_emit *e, const source *s, int last, LLVMValueRef src, LLVMValueRef dst,
                         LLVMValueRef c0, LLVMValueRef len) {
  if (s->contiguous) {
    span sp = {cg_elem(e, IR_F32, src, LLVMBuildNSWAdd(e->b, c0, s->shift[last], "")), cg_elem(e, IR_F32, dst, c0)};
    cg_span(e, len, copy_step, &sp);
    return;
  }
  cg_loop l;
  LLVMValueRef c = cg_loop_begin(e, &l, c0, LLVMBuildNSWAdd(e->b, c0, len, ""), 1);
  cg_store_f32(e, cg_load_f32(e, IR_F32, src, step(e, s, last, c)), dst, c);
  cg_loop_end(e, &l);
}

/* shaped: arg = {x, [x2,] y} */
LLVMModuleRef cg_emit_copy(const cg_emit_target *tgt, const cg_kernel_key *k, const char *name) {
  cg_emit em, *e = &em;
  int n = k->n_in, r = k->out.rank, last = r - 1;
  LLVMValueRef arg[3], odims[IR_MAX_DIMS], idims[IR_MAX_DIMS], idx[IR_MAX_DIMS];
  cg_emit_begin_shaped(e, tgt, name, n + 1, arg);
  cg_extents(e, &k->out, odims);
  cg_extents(e, &k->in[0], idims);
  source s[2];
  for (int i = 0; i < n; i++)
    identity(e, arg[i], &k->in[i], &s[i]);
  if (k->op == IR_SLICE) {
    s[0].shift[k->axis] = cg_i64(e, k->start);
  } else if (k->op == IR_REPEAT) {
    s[0].div[k->axis] = k->times;
    s[0].contiguous = k->axis != last;
  } else if (k->op == IR_TRANSPOSE) {
    source t = s[0];
    for (int d = 0; d < r; d++)
      t.stride[d] = s[0].stride[k->perm[d]];
    t.contiguous = k->perm[last] == last;
    s[0] = t;
  } else if (k->op == IR_CONCAT) {
    s[1].shift[k->axis] = LLVMBuildNeg(e->b, idims[k->axis], "");
  }
  LLVMValueRef C = odims[last];
  cg_loop rows;
  LLVMValueRef row = cg_loop_begin(e, &rows, cg_row0(e), cg_row1(e), 1);
  cg_unravel(e, row, odims, last, idx);
  LLVMValueRef dst = cg_elem(e, IR_F32, arg[n], LLVMBuildNSWMul(e->b, row, C, ""));
  LLVMValueRef src0 = cg_elem(e, IR_F32, s[0].base, row_offset(e, &s[0], idx, last));
  if (k->op != IR_CONCAT) {
    copy_columns(e, &s[0], last, src0, dst, cg_i64(e, 0), C);
  } else if (k->axis == last) { /* the row is the first's row, then the second's */
    LLVMValueRef A = idims[last], src1 = cg_elem(e, IR_F32, s[1].base, row_offset(e, &s[1], idx, last));
    copy_columns(e, &s[0], last, src0, dst, cg_i64(e, 0), A);
    copy_columns(e, &s[1], last, src1, dst, A, LLVMBuildNSWSub(e->b, C, A, ""));
  } else { /* the whole row from one of them (the other's address is not used) */
    LLVMValueRef first = LLVMBuildICmp(e->b, LLVMIntSLT, idx[k->axis], idims[k->axis], "");
    LLVMValueRef off1 = row_offset(e, &s[1], idx, last);
    LLVMValueRef src1 = LLVMBuildGEP2(e->b, e->f32, s[1].base, &off1, 1, "");
    copy_columns(e, &s[0], last, LLVMBuildSelect(e->b, first, src0, src1, ""), dst, cg_i64(e, 0), C);
  }
  cg_loop_end(e, &rows);
  return cg_emit_finish(e);
}
