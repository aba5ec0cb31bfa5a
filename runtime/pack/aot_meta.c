/* The generation metadata of a compiled model (rt_aot_meta) as a packed
 * section: what generation_config.json, config.json's EOS ids and
 * tokenizer_config.json's chat template gave at compile time, so the model
 * binary reads no JSON. The record (bytes.h): str model; i64 vocab, ctx;
 * u32 n_eos, n_eos x i64; u32 has_sampling; f32 temperature; u32 top_k;
 * f32 top_p, min_p, repetition_penalty; u32 has_chat, chat kind; str bos, eos. */
#include <stdio.h>
#include <string.h>

#include "olmoc/bytes.h"
#include "olmoc/aot.h"

int rt_aot_meta_pack(const rt_aot_meta *m, rt_pack_writer *w, oc_error *e) {
  rt_bytes b = {0};
  rt_bytes_str(&b, m->model);
  rt_bytes_i64(&b, m->vocab);
  rt_bytes_i64(&b, m->ctx);
  rt_bytes_u32(&b, (uint32_t)m->n_eos);
  for (int i = 0; i < m->n_eos; i++)
    rt_bytes_i64(&b, m->eos[i]);
  rt_bytes_u32(&b, m->has_sampling);
  rt_bytes_f32(&b, m->sampling.temperature);
  rt_bytes_u32(&b, (uint32_t)m->sampling.top_k);
  rt_bytes_f32(&b, m->sampling.top_p);
  rt_bytes_f32(&b, m->sampling.min_p);
  rt_bytes_f32(&b, m->sampling.repetition_penalty);
  rt_bytes_u32(&b, m->has_chat);
  rt_bytes_u32(&b, (uint32_t)m->chat.kind);
  rt_bytes_str(&b, m->chat.bos_token);
  rt_bytes_str(&b, m->chat.eos_token);
  int rc = b.oom ? oc_fail(e, "out of memory") : rt_pack_add(w, RT_PACK_META, "generation", b.p, b.n, NULL, e);
  rt_bytes_free(&b);
  return rc;
}

int rt_aot_meta_unpack(const void *data, size_t n, const char *source, rt_aot_meta *m, oc_error *e) {
  rt_reader r = {data, n, 0, false};
  *m = (rt_aot_meta){0};
  snprintf(m->model, sizeof m->model, "%s", rt_read_str(&r));
  m->vocab = rt_read_i64(&r);
  m->ctx = rt_read_i64(&r);
  uint32_t n_eos = rt_read_u32(&r);
  if (n_eos > RT_AOT_MAX_EOS)
    r.bad = true;
  for (uint32_t i = 0; !r.bad && i < n_eos; i++) {
    int64_t id = rt_read_i64(&r);
    r.bad |= id < 0 || id > INT32_MAX;
    m->eos[m->n_eos++] = (int32_t)id;
  }
  m->has_sampling = rt_read_u32(&r) != 0;
  m->sampling = rt_sampling_default();
  m->sampling.temperature = rt_read_f32(&r);
  m->sampling.top_k = (int)rt_read_u32(&r);
  m->sampling.top_p = rt_read_f32(&r);
  m->sampling.min_p = rt_read_f32(&r);
  m->sampling.repetition_penalty = rt_read_f32(&r);
  m->has_chat = rt_read_u32(&r) != 0;
  m->chat.kind = (rt_chat_kind)rt_read_u32(&r);
  const char *bos = rt_read_str(&r), *eos = rt_read_str(&r);
  bool fits = strlen(bos) < sizeof m->chat.bos_token && strlen(eos) < sizeof m->chat.eos_token;
  if (fits) {
    strcpy(m->chat.bos_token, bos);
    strcpy(m->chat.eos_token, eos);
  }
  if (r.bad || !fits || r.at != r.n || m->vocab < 1 || m->ctx < 1 || m->sampling.top_k < 0 ||
      (m->has_chat && m->chat.kind != RT_CHAT_OLMO2))
    return oc_fail(e, "%s: the generation section is malformed: the file is damaged", source);
  return 0;
}
