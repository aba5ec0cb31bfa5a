/* The IR's text form, read: each line `%name = op ["name"] [%a, %b] [{k=v, ...}]
 * : type` becomes one node with exactly the declared type and attributes,
 * nothing inferred (ir_verify judges them). Invariant: every read stops at the
 * text's NUL and every count at its array's size, so no input can crash, leak
 * or overflow; the first problem is reported as "source:line:col: message". */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "olmoc/alloc.h"
#include "olmoc/file.h"
#include "olmoc/ir_text.h"

/* Bounds that keep the verifier's dim arithmetic (concat sums, repeat
 * products, element counts) inside int64_t and int32_t for any text. */
#define MAX_DIM_CONST (INT64_C(1) << 40)
#define MAX_DIM_COEF (1 << 14)
#define MAX_TIMES (1 << 16)
#define MAX_NUMEL (INT64_C(1) << 62)

/* %name -> node id, open addressing; keys point into the text. */
typedef struct ref {
  const char *at; /* the name after '%', NULL for an empty slot */
  size_t len;
  int id;
} ref;

typedef struct parser {
  const char *text, *p; /* the whole text; the next character */
  const char *source;
  ir_graph *g;
  ref *refs; /* [cap] */
  size_t cap, used;
  oc_error *e;
  char found[64]; /* what found() describes */
} parser;

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_ident(char c) { return is_alpha(c) || is_digit(c) || c == '.'; }
static int clamp_len(size_t n) { return n > 40 ? 40 : (int)n; }

static size_t span(const char *p, bool (*ok)(char)) {
  size_t n = 0;
  while (ok(p[n]))
    n++;
  return n;
}
static bool is_word(char c) { return is_alpha(c) || is_digit(c); }

__attribute__((format(printf, 3, 4)))
static int fail_at(parser *ps, const char *at, const char *fmt, ...) {
  int line = 1;
  const char *bol = ps->text;
  for (const char *c = ps->text; c < at; c++)
    if (*c == '\n')
      line++, bol = c + 1;
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return oc_fail(ps->e, "%s:%d:%d: %s", ps->source, line, (int)(at - bol) + 1, msg);
}

/* What is at p, for "found ..." in messages. */
static const char *found(parser *ps, const char *p) {
  unsigned char c = (unsigned char)*p;
  if (!c)
    return "the end of the input";
  if (c == '\n')
    return "the end of the line";
  if (c < 0x20 || c >= 0x7f)
    snprintf(ps->found, sizeof ps->found, "byte 0x%02x", c);
  else
    snprintf(ps->found, sizeof ps->found, "'%.*s'", is_ident(*p) ? clamp_len(span(p, is_ident)) : 1, p);
  return ps->found;
}

/* Spaces, tabs and a comment up to (not past) the end of the line. */
static void skip_space(parser *ps) {
  for (;;) {
    char c = *ps->p;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f')
      ps->p++;
    else if (c == '#')
      while (*ps->p && *ps->p != '\n')
        ps->p++;
    else
      return;
  }
}

static int expect(parser *ps, char c, const char *what) {
  skip_space(ps);
  if (*ps->p == c) {
    ps->p++;
    return 0;
  }
  return fail_at(ps, ps->p, "expected %s, found %s", what, found(ps, ps->p));
}

/* After a list item: past a ',', or at `close`; anything else is an error. */
static int separator(parser *ps, char close, const char *where) {
  skip_space(ps);
  if (*ps->p == ',')
    ps->p++, skip_space(ps);
  else if (*ps->p != close)
    return fail_at(ps, ps->p, "expected ',' or '%c' in %s, found %s", close, where, found(ps, ps->p));
  return 0;
}

/* The id lookup() gives for the word at p, or -1 (also when it is too long). */
static int lookup_word(const char *p, size_t len, int (*lookup)(const char *)) {
  char word[32];
  return len < sizeof word ? (snprintf(word, sizeof word, "%.*s", (int)len, p), lookup(word)) : -1;
}

static size_t hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211u;
  return (size_t)h;
}

/* The slot holding name, or the empty slot where it would go (cap > 0). */
static ref *find_ref(const parser *ps, const char *name, size_t len) {
  size_t mask = ps->cap - 1, i = hash(name, len) & mask;
  while (ps->refs[i].at && (ps->refs[i].len != len || memcmp(ps->refs[i].at, name, len) != 0))
    i = (i + 1) & mask;
  return &ps->refs[i];
}

static int grow_refs(parser *ps) {
  size_t cap = ps->cap ? 2 * ps->cap : 64;
  ref *old = ps->refs, *refs = oc_calloc(cap, sizeof *refs);
  if (!refs)
    return oc_fail(ps->e, "%s: out of memory", ps->source);
  size_t old_cap = ps->cap;
  ps->refs = refs;
  ps->cap = cap;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].at)
      *find_ref(ps, old[i].at, old[i].len) = old[i];
  free(old);
  return 0;
}

/* An integer in [lo, hi] for `what`. */
static int parse_int(parser *ps, const char *what, int64_t lo, int64_t hi, int64_t *v) {
  skip_space(ps);
  const char *at = ps->p;
  char *end;
  if (!is_digit(at[*at == '-' || *at == '+']))
    return fail_at(ps, at, "expected an integer for %s, found %s", what, found(ps, at));
  errno = 0;
  long long x = strtoll(at, &end, 10);
  if (is_ident(*end))
    return fail_at(ps, at, "'%.*s' is not an integer", clamp_len((size_t)(end - at) + span(end, is_ident)), at);
  if (errno == ERANGE || x < lo || x > hi)
    return fail_at(ps, at, "%s %.*s%s is out of range [%lld, %lld]", what, clamp_len((size_t)(end - at)),
                   at, end - at > 40 ? "..." : "", (long long)lo, (long long)hi);
  *v = x;
  ps->p = end;
  return 0;
}

/* A double: [+-] digits [. digits] [e [+-] digits], or [+-] inf / nan. Only
 * those characters reach strtod, which must then take all of them. */
static int parse_double(parser *ps, const char *what, double *v) {
  skip_space(ps);
  const char *at = ps->p, *q = at + (*at == '-' || *at == '+');
  if ((!strncmp(q, "inf", 3) || !strncmp(q, "nan", 3)) && !is_ident(q[3])) {
    *v = copysign(q[0] == 'i' ? INFINITY : NAN, *at == '-' ? -1.0 : 1.0);
    ps->p = q + 3;
    return 0;
  }
  if (!is_digit(*q) && !(*q == '.' && is_digit(q[1])))
    return fail_at(ps, at, "expected a number for %s, found %s", what, found(ps, at));
  size_t len = (size_t)(q - at) + strspn(q, "0123456789.eE+-");
  char num[512], *end;
  if (len >= sizeof num)
    return fail_at(ps, at, "the number for %s is longer than %zu characters", what, sizeof num - 1);
  memcpy(num, at, len);
  num[len] = '\0';
  double d = strtod(num, &end);
  if (*end || is_ident(at[len]))
    return fail_at(ps, at, "'%.*s' is not a number", clamp_len(len + span(at + len, is_ident)), at);
  if (isinf(d))
    return fail_at(ps, at, "%s %s is out of range for a double", what, num);
  *v = d;
  ps->p = at + len;
  return 0;
}

/* The byte the string text at q stands for, and how many characters spell it
 * (1, 2 for \" \\ \n \t \r, 4 for \xHH); 0 and *why when nothing valid. */
static size_t string_char(const char *q, unsigned char *c, const char **why) {
  static const char hex[] = "0123456789abcdef0123456789ABCDEF";
  static const char escape[] = "\"\\ntr", meaning[] = "\"\\\n\t\r";
  const char *x, *h1, *h2;
  *c = (unsigned char)*q;
  if (*c == '\0' || *c == '\n')
    return *why = "unterminated string", 0;
  if (*c < 0x20 || *c == 0x7f)
    return *why = "control byte in a string (write it as \\xHH)", 0;
  if (*c != '\\')
    return 1;
  if (q[1] && (x = strchr(escape, q[1])))
    return *c = (unsigned char)meaning[x - escape], 2;
  if (q[1] == 'x' && q[2] && (h1 = strchr(hex, q[2])) && q[3] && (h2 = strchr(hex, q[3]))) {
    *c = (unsigned char)((h1 - hex) % 16 * 16 + (h2 - hex) % 16);
    return *c ? 4 : (*why = "a name cannot contain \\x00", 0);
  }
  return *why = "unknown escape in a string (write \\\" \\\\ \\n \\t \\r or \\xHH)", 0;
}

/* A quoted string, decoded into *out (malloc'ed): checked up to its closing
 * quote first, then decoded into a buffer its raw length bounds. */
static int parse_string(parser *ps, char **out) {
  const char *start = ps->p + 1, *q, *why = NULL;
  unsigned char c;
  size_t n, len = 0;
  for (q = start; *q != '"'; q += n)
    if (!(n = string_char(q, &c, &why)))
      return fail_at(ps, *q && *q != '\n' ? q : ps->p, "%s", why);
  char *s = oc_malloc((size_t)(q - start) + 1);
  if (!s)
    return oc_fail(ps->e, "%s: out of memory", ps->source);
  for (const char *r = start; r < q; r += n) {
    n = string_char(r, &c, &why);
    s[len++] = (char)c;
  }
  s[len] = '\0';
  *out = s;
  ps->p = q + 1;
  return 0;
}

/* One dim: terms N, T, P, N*T or N*P joined by + and -, e.g. "P+T", "2*T+1". */
static int parse_dim(parser *ps, ir_dim *d) {
  *d = (ir_dim){0, 0, 0};
  skip_space(ps);
  for (bool first = true; first || *ps->p == '+' || *ps->p == '-'; first = false) {
    int64_t sign = *ps->p == '-' ? -1 : 1, coef = 1;
    if (*ps->p == '+' || *ps->p == '-')
      ps->p++, skip_space(ps);
    const char *at = ps->p;
    bool number = is_digit(*at);
    if (number) {
      char *end;
      errno = 0;
      coef = strtoll(at, &end, 10);
      if (errno == ERANGE || coef > MAX_DIM_CONST || is_ident(*end))
        return fail_at(ps, at, "bad dim expression: '%.*s' is not an integer up to 2^40",
                       clamp_len(span(at, is_ident)), at);
      ps->p = end;
      skip_space(ps);
    }
    if (number && *ps->p != '*') {
      d->c += sign * coef;
      if (d->c > MAX_DIM_CONST || d->c < -MAX_DIM_CONST)
        return fail_at(ps, at, "bad dim expression: the constant is beyond +-2^40");
    } else {
      if (number)
        ps->p++, skip_space(ps);
      char sym = *ps->p;
      if ((sym != 'T' && sym != 'P') || is_ident(ps->p[1]))
        return fail_at(ps, ps->p, "bad dim expression: expected %s, found %s",
                       number ? "T or P after '*'" : "a number, T or P", found(ps, ps->p));
      ps->p++;
      int32_t *k = sym == 'T' ? &d->t : &d->p;
      int64_t sum = *k + sign * coef;
      if (coef > MAX_DIM_COEF || sum > MAX_DIM_COEF || sum < -MAX_DIM_COEF)
        return fail_at(ps, at, "bad dim expression: the coefficient of %c is beyond +-%d", sym, MAX_DIM_COEF);
      *k = (int32_t)sum;
    }
    skip_space(ps);
  }
  return 0;
}

/* dtype[dim, ...], e.g. f32[P+T,8,128] or f32[] for a scalar. */
static int parse_type(parser *ps, ir_type *t) {
  skip_space(ps);
  const char *at = ps->p;
  size_t len = span(at, is_word);
  if (!len)
    return fail_at(ps, at, "expected a type such as f32[T,64], found %s", found(ps, at));
  int dtype = lookup_word(at, len, ir_dtype_lookup);
  if (dtype < 0)
    return fail_at(ps, at, "unknown dtype '%.*s'", clamp_len(len), at);
  ps->p += len;
  *t = (ir_type){.dtype = (ir_dtype)dtype};
  if (expect(ps, '[', "'[' and the dims after the dtype"))
    return -1;
  skip_space(ps);
  while (*ps->p != ']') {
    if (t->shape.rank == IR_MAX_DIMS)
      return fail_at(ps, ps->p, "a type has at most %d dims", IR_MAX_DIMS);
    if (parse_dim(ps, &t->shape.dim[t->shape.rank++]) || separator(ps, ']', "the type"))
      return -1;
  }
  ps->p++;
  uint64_t numel = 1;
  for (int i = 0; i < t->shape.rank; i++) {
    const ir_dim *d = &t->shape.dim[i];
    uint64_t c = (uint64_t)(d->c < 0 ? -d->c : d->c);
    if (!ir_dim_is_const(*d) || c == 0)
      continue;
    if (c > (uint64_t)MAX_NUMEL / numel)
      return fail_at(ps, at, "the type has more than 2^62 elements");
    numel *= c;
  }
  return 0;
}

enum { K_AXIS, K_START, K_END, K_TIMES, K_PERM, K_VALUE, K_EXPR, K_DIM, K_THETA, K_LAYER, K_COUNT };
static const struct {
  const char *name;
  unsigned attr; /* the op's IR_A_ flag that brings it; 0: any op may have it */
} keys[K_COUNT] = {{"axis", IR_A_AXIS}, {"start", IR_A_RANGE}, {"end", IR_A_RANGE},
                   {"times", IR_A_TIMES}, {"perm", IR_A_PERM}, {"value", IR_A_VALUE},
                   {"expr", IR_A_EXPR}, {"dim", IR_A_ROPE}, {"theta", IR_A_ROPE}, {"layer", 0}};

/* perm=[i, ...] with one entry per axis of the node's input. */
static int parse_perm(parser *ps, ir_node *n) {
  const char *at = ps->p;
  if (expect(ps, '[', "'[' to start perm"))
    return -1;
  int rank = ir_arity(n) ? ps->g->nodes[n->in[0]].type.shape.rank : 0, count = 0;
  skip_space(ps);
  while (*ps->p != ']') {
    int64_t v;
    if (count == IR_MAX_DIMS)
      return fail_at(ps, ps->p, "perm has more than %d entries", IR_MAX_DIMS);
    if (parse_int(ps, "a perm entry", INT_MIN, INT_MAX, &v))
      return -1;
    n->perm[count++] = (int)v;
    if (separator(ps, ']', "perm"))
      return -1;
  }
  ps->p++;
  if (count != rank)
    return fail_at(ps, at, "perm has %d entries but the input has rank %d", count, rank);
  return 0;
}

static int parse_value(parser *ps, int k, ir_node *n) {
  int64_t v = 0;
  int rc = 0;
  switch (k) {
  case K_AXIS: rc = parse_int(ps, "axis", INT_MIN, INT_MAX, &v), n->axis = (int)v; break;
  case K_START: rc = parse_int(ps, "start", INT64_MIN, INT64_MAX, &n->start); break;
  case K_END: rc = parse_int(ps, "end", INT64_MIN, INT64_MAX, &n->end); break;
  case K_TIMES: rc = parse_int(ps, "times", 1, MAX_TIMES, &v), n->times = (int)v; break;
  case K_PERM: rc = parse_perm(ps, n); break;
  case K_VALUE: rc = parse_double(ps, "value", &n->value); break;
  case K_EXPR:
    skip_space(ps);
    rc = *ps->p == '"' ? parse_string(ps, &n->name)
                       : fail_at(ps, ps->p, "expected a quoted expr, found %s", found(ps, ps->p));
    break;
  case K_DIM: rc = parse_int(ps, "dim", INT_MIN, INT_MAX, &v), n->dim = (int)v; break;
  case K_THETA: rc = parse_double(ps, "theta", &n->theta); break;
  default: rc = parse_int(ps, "layer", 0, INT_MAX, &v), n->layer = (int)v; break;
  }
  return rc;
}

/* {key=value, ...}, then a check that every attribute the op needs is there. */
static int parse_attrs(parser *ps, ir_node *n) {
  const ir_op_info *info = &ir_op_table[n->op];
  unsigned seen = 0;
  skip_space(ps);
  if (*ps->p == '{') {
    ps->p++;
    skip_space(ps);
    while (*ps->p != '}') {
      const char *at = ps->p;
      size_t len = span(at, is_alpha);
      if (!len)
        return fail_at(ps, at, "expected an attribute name, found %s", found(ps, at));
      int k = 0;
      while (k < K_COUNT && (strlen(keys[k].name) != len || strncmp(keys[k].name, at, len)))
        k++;
      if (k == K_COUNT)
        return fail_at(ps, at, "unknown attribute '%.*s'", clamp_len(len), at);
      if (keys[k].attr && !(keys[k].attr & info->attrs))
        return fail_at(ps, at, "op '%s' takes no attribute '%s'", info->name, keys[k].name);
      if (seen & 1u << k)
        return fail_at(ps, at, "attribute '%s' is given twice", keys[k].name);
      seen |= 1u << k;
      ps->p += len;
      if (expect(ps, '=', "'=' after the attribute name") || parse_value(ps, k, n) ||
          separator(ps, '}', "the attributes"))
        return -1;
    }
    ps->p++;
  }
  for (int k = 0; k < K_COUNT; k++)
    if ((keys[k].attr & info->attrs) && !(seen & 1u << k))
      return fail_at(ps, ps->p, "op '%s' needs attribute '%s'", info->name, keys[k].name);
  return 0;
}

/* op ["name"] [%a[, %b]] [{...}] : type, after "%x =". */
static int parse_body(parser *ps, ir_node *n) {
  skip_space(ps);
  const char *at = ps->p;
  size_t len = span(at, is_word);
  if (!len)
    return fail_at(ps, at, "expected an op, found %s", found(ps, at));
  int op = lookup_word(at, len, ir_op_lookup);
  if (op < 0)
    return fail_at(ps, at, "unknown op '%.*s'", clamp_len(len), at);
  ps->p += len;
  n->op = (ir_op)op;
  const ir_op_info *info = &ir_op_table[op];
  skip_space(ps);
  if ((info->attrs & IR_A_NAME) && *ps->p != '"')
    return fail_at(ps, ps->p, "op '%s' needs a name in quotes, found %s", info->name, found(ps, ps->p));
  if (*ps->p == '"' && !(info->attrs & IR_A_NAME))
    return fail_at(ps, ps->p, "op '%s' takes no name", info->name);
  if (*ps->p == '"' && parse_string(ps, &n->name))
    return -1;
  bool variadic = info->arity < 0; /* 1..IR_MAX_INPUTS */
  int least = variadic ? 1 : info->arity, most = variadic ? IR_MAX_INPUTS : info->arity;
  const char *takes = variadic ? "1 to 4 inputs" : info->arity == 1 ? "1 input" : NULL;
  char buf[32];
  if (!takes)
    snprintf(buf, sizeof buf, "%d inputs", info->arity), takes = buf;
  for (int i = 0;; i++) {
    skip_space(ps);
    const char *r = ps->p;
    if (*r != (i ? ',' : '%')) {
      if (i < least)
        return fail_at(ps, r, "op '%s' takes %s, found %d", info->name, takes, i);
      n->n_in = variadic ? i : 0;
      break;
    }
    if (i == most)
      return fail_at(ps, r, "op '%s' takes %s, found more", info->name, takes);
    if (i) { /* past the ',' to the '%' */
      ps->p++;
      skip_space(ps);
      r = ps->p;
      if (*r != '%')
        return fail_at(ps, r, "expected '%%' and an input after ',', found %s", found(ps, r));
    }
    size_t rlen = span(r + 1, is_ident);
    if (!rlen)
      return fail_at(ps, r, "expected a name after '%%', found %s", found(ps, r + 1));
    const ref *f = ps->cap ? find_ref(ps, r + 1, rlen) : NULL;
    if (!f || !f->at)
      return fail_at(ps, r, "undefined value '%%%.*s'", clamp_len(rlen), r + 1);
    n->in[i] = f->id;
    ps->p = r + 1 + rlen;
  }
  if (parse_attrs(ps, n) || expect(ps, ':', "':' and the node's type"))
    return -1;
  if (parse_type(ps, &n->type))
    return -1;
  skip_space(ps);
  if (*ps->p && *ps->p != '\n')
    return fail_at(ps, ps->p, "expected the end of the line after the type, found %s",
                   found(ps, ps->p));
  return 0;
}

/* One line "%x = ...": the node is appended and %x names it from then on. */
static int parse_node(parser *ps) {
  const char *def = ps->p + 1;
  size_t len = span(def, is_ident);
  if (!len)
    return fail_at(ps, def, "expected a name after '%%', found %s", found(ps, def));
  if ((ps->used + 1) * 2 > ps->cap && grow_refs(ps))
    return -1;
  ref *slot = find_ref(ps, def, len);
  if (slot->at) {
    int line = 1;
    for (const char *c = ps->text; c < slot->at; c++)
      line += *c == '\n';
    return fail_at(ps, ps->p, "'%%%.*s' is already defined on line %d", clamp_len(len), def, line);
  }
  ps->p = def + len;
  if (expect(ps, '=', "'=' after the node's name"))
    return -1;
  ir_node n = {.layer = -1};
  int rc = parse_body(ps, &n), id = -1;
  if (rc == 0 && (id = ir_append(ps->g, &n)) < 0)
    rc = oc_fail(ps->e, "%s: out of memory", ps->source);
  free(n.name);
  if (rc == 0) {
    *slot = (ref){def, len, id};
    ps->used++;
  }
  return rc;
}

int ir_parse(const char *text, const char *source, ir_graph **out, oc_error *e) {
  parser ps = {.text = text, .p = text, .source = source ? source : "<text>", .e = e};
  if (!text)
    return oc_fail(e, "%s: no text to parse", ps.source);
  if (!(ps.g = ir_graph_new()))
    return oc_fail(e, "%s: out of memory", ps.source);
  int rc = 0;
  while (rc == 0) {
    skip_space(&ps);
    if (*ps.p == '\n')
      ps.p++;
    else if (!*ps.p)
      break;
    else if (*ps.p == '%')
      rc = parse_node(&ps);
    else
      rc = fail_at(&ps, ps.p, "expected a node like '%%1 = neg %%0 : f32[T]', found %s",
                   found(&ps, ps.p));
  }
  free(ps.refs);
  if (rc) {
    ir_graph_free(ps.g);
    return -1;
  }
  *out = ps.g;
  return 0;
}

int ir_parse_file(const char *path, ir_graph **out, oc_error *e) {
  oc_file f;
  if (oc_file_read(&f, path, NULL, IR_TEXT_MAX_BYTES, false, e))
    return -1;
  int rc = strnlen(f.data, f.len) < f.len
               ? oc_fail(e, "%s: byte %zu is NUL; IR text has none", path, strnlen(f.data, f.len))
               : ir_parse(f.data, path, out, e);
  oc_file_free(&f);
  return rc;
}
