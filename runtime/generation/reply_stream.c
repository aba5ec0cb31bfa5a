/* What a reply prints as it is generated (session_internal.h): text as soon
 * as it is whole UTF-8 and can no longer be the start of a stop string; with
 * --json one object per token on stdout, with --n-probs the token's top
 * alternatives (on stderr when not --json). Log-probabilities are the raw
 * model's log-softmax, before any temperature, penalty or truncation: what
 * `olmoc logits` gives, whatever the sampler then does with it. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "olmoc/alloc.h"
#include "session_internal.h"

void json_string(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c == '\n')
      fputs("\\n", f);
    else if (c == '\t')
      fputs("\\t", f);
    else if (c == '\r')
      fputs("\\r", f);
    else if (c < 0x20 || c == 0x7f)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

void token_string(FILE *f, const rt_tokenizer *t, int32_t id) {
  size_t n = 0;
  rt_tokenizer_bytes(t, id, &n);
  size_t cap = 3 * n + 6; /* each stray byte may become a 3-byte U+FFFD, and the flush one more */
  char buf[512], *text = cap <= sizeof buf ? buf : oc_malloc(cap);
  if (!text) {
    json_string(f, "", 0);
    return;
  }
  rt_detokenizer d;
  rt_detokenizer_init(&d, t);
  size_t len = rt_detokenizer_push(&d, id, text, cap);
  len += rt_detokenizer_flush(&d, text + len, cap - len);
  json_string(f, text, len);
  if (text != buf)
    free(text);
}

int stream_init(reply_stream *r, const session *s, oc_error *e) {
  *r = (reply_stream){.t = s->g->tokenizer, .stop = &s->o->stop, .json = s->o->json,
                      .n_probs = (int)s->o->n_probs, .vocab = s->g->model->vocab};
  r->per_token = r->json || r->n_probs > 0;
  rt_detokenizer_init(&r->detok, r->t);
  if (r->per_token && !(r->logits = oc_malloc((size_t)r->vocab * sizeof *r->logits)))
    return oc_fail(e, "out of memory for the logits of --json or --n-probs");
  return 0;
}

void stream_free(reply_stream *r) {
  free(r->text);
  free(r->logits);
  free(r->tokens);
  free(r->top);
}

void stream_logits(reply_stream *r, const float *logits) {
  memcpy(r->logits, logits, (size_t)r->vocab * sizeof *logits);
}

static bool append(reply_stream *r, const char *s, size_t n) {
  if (r->len + n + 1 > r->cap) {
    size_t cap = 2 * (r->len + n + 1);
    char *grown = oc_realloc(r->text, cap);
    if (!grown)
      return false;
    r->text = grown, r->cap = cap;
  }
  memcpy(r->text + r->len, s, n);
  r->len += n;
  r->text[r->len] = '\0';
  return true;
}

/* The top alternatives of the i-th token not yet reported (NULL without --n-probs). */
static stream_alternative *alternatives(const reply_stream *r, size_t i) {
  return r->n_probs ? r->top + i * (size_t)r->n_probs : NULL;
}

/* The log-softmax of this step's logits at id, and its n_probs best ids,
 * best first (ties: the lower id, as the greedy sampler picks). */
static double score(const reply_stream *r, int32_t id, stream_alternative *top) {
  const float *l = r->logits;
  float max = l[0];
  for (int32_t i = 1; i < r->vocab; i++)
    max = l[i] > max ? l[i] : max;
  double sum = 0;
  for (int32_t i = 0; i < r->vocab; i++)
    sum += exp((double)l[i] - max);
  double norm = max + log(sum);
  int n = 0; /* top[0, n) by logit, best first: an insertion, as n_probs is small */
  for (int32_t i = 0; i < r->vocab && r->n_probs; i++) {
    if (n == r->n_probs && l[i] <= l[top[n - 1].id])
      continue;
    int at = n < r->n_probs ? n++ : n - 1;
    for (; at > 0 && l[i] > l[top[at - 1].id]; at--)
      top[at] = top[at - 1];
    top[at].id = i;
  }
  for (int i = 0; i < r->n_probs; i++)
    top[i] = i < n ? (stream_alternative){top[i].id, (double)l[top[i].id] - norm}
                   : (stream_alternative){-1, 0}; /* a vocabulary smaller than --n-probs */
  return (double)l[id] - norm;
}

/* --json: {"token": id, "text": "...", "logprob": x, "top": [{"token": id,
 * "text": "...", "logprob": x}, ...]} on stdout ("top" with --n-probs only);
 * else a line on stderr: token id "text": logprob x | top: id "text" x, ... */
/* Flushes f; the first failure on stdout is kept (stderr's are not the reply). */
static void flush(reply_stream *r, FILE *f) {
  if ((fflush(f) || ferror(f)) && f == stdout && !r->write_error)
    r->write_error = errno ? errno : EIO;
}

static void report(reply_stream *r, const stream_token *k, const stream_alternative *top) {
  FILE *f = r->json ? stdout : stderr;
  fprintf(f, r->json ? "{\"token\": %d, \"text\": " : "token %d ", k->id);
  json_string(f, r->text + k->start, k->end - k->start);
  fprintf(f, r->json ? ", \"logprob\": %.9g" : ": logprob %.4f | top:", k->logprob);
  if (r->json && r->n_probs)
    fputs(", \"top\": [", f);
  for (int i = 0; i < r->n_probs && top[i].id >= 0; i++) {
    if (r->json)
      fprintf(f, "%s{\"token\": %d, \"text\": ", i ? ", " : "", top[i].id);
    else
      fprintf(f, "%s%d ", i ? ", " : " ", top[i].id);
    token_string(f, r->t, top[i].id);
    fprintf(f, r->json ? ", \"logprob\": %.9g}" : " %.4f", top[i].logprob);
  }
  fputs(!r->json ? "\n" : r->n_probs ? "]}\n" : "}\n", f);
  flush(r, f);
}

/* Prints text up to `upto` and reports the tokens whose text lies before it. */
static void release(reply_stream *r, size_t upto) {
  if (!r->json && upto > r->released) {
    fwrite(r->text + r->released, 1, upto - r->released, stdout);
    flush(r, stdout);
  }
  r->released = upto > r->released ? upto : r->released;
  size_t done = 0;
  while (done < r->n_tokens && r->tokens[done].end <= upto) {
    report(r, &r->tokens[done], alternatives(r, done));
    done++;
  }
  if (!done)
    return;
  r->n_tokens -= done;
  memmove(r->tokens, r->tokens + done, r->n_tokens * sizeof *r->tokens);
  if (r->n_probs)
    memmove(r->top, alternatives(r, done), r->n_tokens * (size_t)r->n_probs * sizeof *r->top);
}

/* Where the first whole stop string starts, or len. */
static size_t first_stop(const reply_stream *r) {
  size_t at = r->len;
  for (int i = 0; i < r->stop->n; i++) {
    const char *s = r->stop->item[i];
    const char *hit = memmem(r->text + r->released, r->len - r->released, s, strlen(s));
    if (hit && (size_t)(hit - r->text) < at)
      at = (size_t)(hit - r->text);
  }
  return at;
}

/* Where the text that could still begin a stop string starts, or len. */
static size_t held_from(const reply_stream *r) {
  size_t at = r->len;
  for (int i = 0; i < r->stop->n; i++) {
    size_t n = strlen(r->stop->item[i]);
    size_t from = r->len - r->released < n ? r->released : r->len - n + 1;
    for (size_t j = from; j < at; j++)
      if (!memcmp(r->text + j, r->stop->item[i], r->len - j)) {
        at = j;
        break;
      }
  }
  return at;
}

/* Room for one more token and its alternatives. */
static bool reserve_token(reply_stream *r) {
  if (r->n_tokens < r->cap_tokens)
    return true;
  size_t cap = r->cap_tokens ? 2 * r->cap_tokens : 16;
  stream_token *tokens = oc_realloc(r->tokens, cap * sizeof *tokens);
  if (tokens)
    r->tokens = tokens;
  stream_alternative *top = r->n_probs ? oc_realloc(r->top, cap * (size_t)r->n_probs * sizeof *top) : NULL;
  if (top)
    r->top = top;
  if (!tokens || (r->n_probs && !top))
    return false;
  r->cap_tokens = cap;
  return true;
}

int stream_token_add(reply_stream *r, int32_t id) {
  size_t n = 0;
  rt_tokenizer_bytes(r->t, id, &n);
  size_t need = 3 * n + 3; /* each stray byte may become a 3-byte U+FFFD */
  char buf[1024], *piece = need <= sizeof buf ? buf : oc_malloc(need);
  size_t start = r->len;
  if (piece) {
    size_t got = rt_detokenizer_push(&r->detok, id, piece, need);
    if (!append(r, piece, got)) /* the reply loses this token's text, as printing it would fail too */
      fputs("\n(out of memory: a token's text is lost)\n", stderr);
    if (piece != buf)
      free(piece);
  }
  if (r->per_token && reserve_token(r)) {
    r->tokens[r->n_tokens] = (stream_token){id, start, r->len, score(r, id, alternatives(r, r->n_tokens))};
    r->n_tokens++;
  }
  size_t stop = r->stop->n ? first_stop(r) : r->len;
  if (stop < r->len) {
    r->len = stop;
    r->text[stop] = '\0';
    release(r, stop);
    r->n_tokens = 0; /* the stop string's tokens are not reported */
    r->stopped = true;
    return 1;
  }
  release(r, r->stop->n ? held_from(r) : r->len);
  return r->write_error != 0;
}

void stream_finish(reply_stream *r) {
  if (!r->stopped) {
    char tail[16];
    size_t n = rt_detokenizer_flush(&r->detok, tail, sizeof tail);
    if (n && append(r, tail, n) && r->n_tokens)
      r->tokens[r->n_tokens - 1].end = r->len;
    release(r, r->len);
  }
}
