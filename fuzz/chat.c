/* fuzz_chat: chat templates (runtime/generation/chat.c): reading a tokenizer_config.json
 * and rendering a conversation. The input is the tokenizer_config.json, a
 * NUL, one flags byte (bit 0: add the generation prompt), then the
 * conversation as NUL-separated role, content, role, content, ... (at most 32
 * messages). A refused config falls back to the named "olmo2" template so
 * that rendering always runs. Checks: failures have messages; a rendering is
 * as long as OLMo 2's template makes it. */
#include "fuzz.h"

#include "olmoc/chat.h"

#define MAX_MESSAGES 32

/* The length OLMo 2's template gives: bos, each message's header, content
 * and '\n' (an assistant's: eos, '\n' unless last), the prompt if asked. */
static size_t expected_len(const rt_chat_template *t, const rt_chat_message *m, size_t n,
                           int gen) {
  size_t len = strlen(t->bos_token);
  for (size_t i = 0; i < n; i++) {
    int assistant = strcmp(m[i].role, "assistant") == 0, last = i + 1 == n;
    len += strlen("<|") + strlen(m[i].role) + strlen("|>\n") + strlen(m[i].content);
    len += assistant ? strlen(t->eos_token) + !last : 1;
    if (last && gen) len += strlen("<|assistant|>\n");
  }
  return len;
}

int fuzz_chat(const uint8_t *data, size_t size) {
  char *json = fuzz_cstring(data, size);
  if (!json) return 0;
  size_t at = strlen(json) + 1; /* past the NUL, if any */
  rt_chat_template t;
  oc_error e = {{0}};
  if (rt_chat_template_parse(json, "tokenizer_config.json", &t, &e) != 0) {
    FUZZ_CHECK(e.msg[0], "rt_chat_template_parse failed without a message");
    FUZZ_CHECK(rt_chat_template_named("olmo2", &t, &e) == 0, "%s", e.msg);
  }
  free(json);
  int gen = at < size ? data[at++] & 1 : 0;

  /* The rest, copied once and cut at its NULs into role and content strings. */
  size_t rest = at < size ? size - at : 0;
  char *conv = malloc(rest + 1), *p = conv;
  if (!conv) return 0;
  if (rest) memcpy(conv, data + at, rest);
  conv[rest] = '\0';
  rt_chat_message m[MAX_MESSAGES];
  size_t n = 0;
  while (p < conv + rest && n < MAX_MESSAGES) {
    m[n].role = p;
    p += strlen(p) + 1;
    m[n].content = p < conv + rest ? p : "";
    if (p < conv + rest) p += strlen(p) + 1;
    n++;
  }

  char *out = NULL;
  e.msg[0] = '\0';
  if (rt_chat_render(&t, m, n, gen, &out, &e) == 0) {
    FUZZ_CHECK(out && strlen(out) == expected_len(&t, m, n, gen), "rendered %zu bytes, expected %zu",
               out ? strlen(out) : 0, expected_len(&t, m, n, gen));
  } else {
    FUZZ_CHECK(!out && e.msg[0], "rt_chat_render failed without a message");
  }
  free(out);
  free(conv);
  return 0;
}

FUZZ_MAIN(fuzz_chat)
