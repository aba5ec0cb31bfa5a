/* Chat templates rendered natively, without a Jinja engine. OLMO2_TEMPLATE is
 * OLMo 2 Instruct's chat_template verbatim; a tokenizer_config.json's template
 * is recognized when its canonical form (canon(): whitespace inside tags and
 * string-literal spelling normalized, text outside tags exact) equals that of
 * a known one. Invariant: render_olmo2 produces byte for byte what the Jinja
 * template renders (tests/data/chat/golden.json, made by @huggingface/jinja). */
#include "olmoc/alloc.h"
#include "olmoc/chat.h"
#include "olmoc/file.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define FILE_NAME "tokenizer_config.json"
#define MAX_FILE_BYTES (64 << 20) /* tokenizer_config.json is a few KB */
#define FORCE_HINT "use --chat-template olmo2 to force OLMo 2's"

/* "chat_template" of allenai/OLMo-2-1124-13B-Instruct's tokenizer_config.json,
 * character for character (the same string is quoted for OLMo-2-1124-7B-SFT;
 * it is Tulu 3's template with bos_token in front). The '\n' inside its
 * string literals are real newlines once the JSON is decoded; the two spaces
 * before some '+' are in the original. */
static const char OLMO2_TEMPLATE[] =
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{% if not loop.last %}"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token + '\n' }}"
    "{% else %}{{ '<|assistant|>\n'  + message['content'] + eos_token }}{% endif %}{% endif %}"
    "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}{% endfor %}";

/* ---- a growable string ----------------------------------------------------- */

typedef struct buf {
  char *p;
  size_t n, cap;
  int oom;
} buf;

static void put(buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = oc_realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }
static void putc_(buf *b, char c) { put(b, &c, 1); }

/* ---- canonical form of a template ------------------------------------------ */

/* Whether a blank between characters a and b inside a tag may matter: two
 * word or two operator characters could merge into one token (not loop, = =),
 * and digits, '.', e and signs into a number (1 .5, 1.0e -5). Any other blank
 * separates tokens that are separate anyway and can go. */
static int word(char c) { return isalnum((unsigned char)c) || c == '_'; }
static int op(char c) { return c && strchr("+-*/%=<>!~.&^", c) != NULL; }
static int risky(char a, char b) {
  int digit_b = isdigit((unsigned char)b);
  return (word(a) && word(b)) || (op(a) && op(b)) || (a == '.' && digit_b) ||
         (isdigit((unsigned char)a) && b == '.') || ((a == 'e' || a == 'E') && op(b)) ||
         ((a == '+' || a == '-') && digit_b);
}
/* Characters next to a tag delimiter whose blank must stay ('{%-' etc.). */
static int sticky(char c) { return c && strchr("-+{}%#", c) != NULL; }
static int blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Appends a string literal starting at *s (a quote) in one spelling: single
 * quotes, \n \t \\ \' \" decoded, ' and \ escaped, other escapes kept (\r
 * too: Jinja turns a raw CR inside a string into LF, but "\r" into CR). */
static int canon_string(const char **s, buf *b) {
  char q = **s;
  const char *p = *s + 1;
  putc_(b, '\'');
  for (; *p && *p != q; p++) {
    char c = *p;
    if (c == '\\') {
      char d = *++p;
      if (!d) return -1;
      c = d == 'n' ? '\n' : d == 't' ? '\t' : d;
      if (!strchr("nt\\'\"", d)) putc_(b, '\\'); /* other escapes: as written */
    }
    if (c == '\'' || c == '\\') putc_(b, '\\');
    putc_(b, c);
  }
  if (*p != q) return -1;
  putc_(b, '\'');
  *s = p + 1;
  return 0;
}

/* Whether a block tag's body (after "{%") is "raw", whose content is text. */
static int is_raw(const char *s) {
  while (blank(*s) || *s == '-' || *s == '+') s++;
  return strncmp(s, "raw", 3) == 0 && !(isalnum((unsigned char)s[3]) || s[3] == '_');
}

/* Canonical text of a template, or -1 for what it does not handle (comments,
 * raw blocks, unterminated tags or strings): such a template is simply not
 * recognized. Blanks inside tags become one space or none; text is kept. */
static int canon(const char *s, buf *b) {
  while (*s) {
    if (s[0] != '{' || (s[1] != '{' && s[1] != '%')) {
      if (s[0] == '{' && s[1] == '#') return -1;
      putc_(b, *s++);
      continue;
    }
    char close = s[1] == '{' ? '}' : '%';
    if (close == '%' && is_raw(s + 2)) return -1;
    put(b, s, 2);
    s += 2;
    char prev = '{'; /* last character written, '{' standing for the delimiter */
    int at_open = 1, depth = 0; /* depth: open brackets; as Jinja, a tag ends only at 0 */
    for (;;) {
      int at_close = depth == 0 && s[0] == close && s[1] == '}';
      if (!*s) return -1;
      if (blank(*s)) {
        while (blank(*s)) s++;
        at_close = depth == 0 && s[0] == close && s[1] == '}';
        int drop = at_open ? !sticky(*s) : at_close ? !sticky(prev) : !risky(prev, *s);
        if (!drop) putc_(b, ' ');
        continue;
      }
      at_open = 0;
      if (at_close) {
        put(b, s, 2);
        s += 2;
        break;
      }
      if (*s == '\'' || *s == '"') {
        if (canon_string(&s, b)) return -1;
        prev = '\'';
        continue;
      }
      if (strchr("([{", *s)) depth++;
      else if (strchr(")]}", *s) && depth > 0) depth--;
      prev = *s;
      putc_(b, *s++);
    }
  }
  return b->oom ? -1 : 0;
}

/* Whether template is, up to canon(), the known OLMo 2 one. */
static int is_olmo2(const char *template, int *oom) {
  buf a = {0}, k = {0};
  int same = canon(template, &a) == 0 && canon(OLMO2_TEMPLATE, &k) == 0 && a.n == k.n &&
             memcmp(a.p, k.p, a.n) == 0;
  *oom = a.oom || k.oom;
  free(a.p);
  free(k.p);
  return same;
}

/* ---- tokenizer_config.json -------------------------------------------------- */

/* A special token: a string or {"content": string}; absent or null is "",
 * as the template then renders it. */
static int read_token(const cJSON *root, const char *key, char *out, size_t cap, oc_error *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  out[0] = 0;
  if (!v || cJSON_IsNull(v)) return 0;
  if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
  if (!cJSON_IsString(v))
    return oc_fail(e, "key '%s': expected a string or an object with a string \"content\"", key);
  if (strlen(v->valuestring) >= cap)
    return oc_fail(e, "key '%s': token \"%.40s...\" is longer than %zu bytes", key,
                   v->valuestring, cap - 1);
  memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
  return 0;
}

/* chat_template: a string, or a list of {"name", "template"} of which the one
 * named "default" is the one transformers uses. */
static int read_template(const cJSON *root, const char **out, oc_error *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
  if (!v || cJSON_IsNull(v))
    return oc_fail(e, "no chat_template: this tokenizer has no chat format (a base model?); "
                      FORCE_HINT);
  if (cJSON_IsString(v)) {
    *out = v->valuestring;
    return 0;
  }
  if (!cJSON_IsArray(v))
    return oc_fail(e, "key 'chat_template': expected a string or a list of "
                      "{\"name\", \"template\"} objects");
  const cJSON *t;
  cJSON_ArrayForEach(t, v) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(t, "template");
    if (!cJSON_IsString(name) || !cJSON_IsString(text))
      return oc_fail(e, "key 'chat_template': every entry of the list must be an object with "
                        "string \"name\" and \"template\"");
    if (strcmp(name->valuestring, "default") == 0) {
      *out = text->valuestring;
      return 0;
    }
  }
  return oc_fail(e, "key 'chat_template': the list has no template named \"default\"; "
                    FORCE_HINT);
}

static int parse_config(const char *text, rt_chat_template *t, oc_error *e) {
  const char *end = NULL, *template = NULL;
  unsigned long failures = oc_alloc_failures();
  cJSON *root = cJSON_ParseWithOpts(text, &end, 1); /* 1: nothing may follow the object */
  if (!root && oc_alloc_failures() != failures) return oc_fail(e, "out of memory parsing the JSON");
  if (!root) {
    char where[96];
    return oc_fail(e, "malformed JSON at %s",
                   oc_text_where(text, strlen(text), end, where, sizeof where));
  }
  int rc = cJSON_IsObject(root) ? 0 : oc_fail(e, "expected a JSON object");
  rt_chat_template tmp = {.kind = RT_CHAT_OLMO2};
  if (!rc) rc = read_token(root, "bos_token", tmp.bos_token, sizeof tmp.bos_token, e);
  if (!rc) rc = read_token(root, "eos_token", tmp.eos_token, sizeof tmp.eos_token, e);
  if (!rc) rc = read_template(root, &template, e);
  if (!rc) {
    int oom = 0;
    if (!is_olmo2(template, &oom))
      rc = oom ? oc_fail(e, "out of memory")
               : oc_fail(e, "chat_template is not one olmoc renders natively (" FORCE_HINT ")");
  }
  cJSON_Delete(root);
  if (!rc) *t = tmp;
  return rc;
}

int rt_chat_template_parse(const char *json, const char *source, rt_chat_template *t,
                           oc_error *e) {
  if (!source) source = FILE_NAME;
  if (!json) return oc_fail(e, "%s: no text to parse", source);
  return parse_config(json, t, e) ? oc_wrap(e, "%s", source) : 0;
}

int rt_chat_template_load(const char *path, rt_chat_template *t, oc_error *e) {
  oc_file f;
  if (oc_file_read(&f, path, FILE_NAME, MAX_FILE_BYTES, false, e)) return -1;
  int rc = rt_chat_template_parse(f.data, f.path, t, e);
  oc_file_free(&f);
  return rc;
}

int rt_chat_template_named(const char *name, rt_chat_template *t, oc_error *e) {
  if (!name || strcmp(name, "olmo2") != 0)
    return oc_fail(e, "chat template '%s' is not known: olmoc renders 'olmo2'",
                   name ? name : "(null)");
  *t = (rt_chat_template){.kind = RT_CHAT_OLMO2};
  strcpy(t->bos_token, "<|endoftext|>");
  strcpy(t->eos_token, "<|endoftext|>");
  return 0;
}

/* ---- rendering ---------------------------------------------------------------- */

/* OLMO2_TEMPLATE, spelled out: bos, then per message its header, content and
 * '\n' (an assistant turn: eos, and '\n' unless it is the last message), then
 * after the last message the generation prompt if asked. No messages: bos. */
static void render_olmo2(const rt_chat_template *t, const rt_chat_message *m, size_t n,
                         bool gen, buf *b) {
  puts_(b, t->bos_token);
  for (size_t i = 0; i < n; i++) {
    int last = i + 1 == n;
    if (strcmp(m[i].role, "system") == 0) puts_(b, "<|system|>\n");
    else if (strcmp(m[i].role, "user") == 0) puts_(b, "<|user|>\n");
    else puts_(b, "<|assistant|>\n");
    puts_(b, m[i].content);
    if (strcmp(m[i].role, "assistant") == 0) {
      puts_(b, t->eos_token);
      if (!last) putc_(b, '\n');
    } else {
      putc_(b, '\n');
    }
    if (last && gen) puts_(b, "<|assistant|>\n");
  }
}

int rt_chat_render(const rt_chat_template *t, const rt_chat_message *messages, size_t n,
                   bool add_generation_prompt, char **out, oc_error *e) {
  *out = NULL;
  if (n && !messages) return oc_fail(e, "chat: %zu messages but no message array", n);
  for (size_t i = 0; i < n; i++) {
    const char *role = messages[i].role;
    if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")))
      return oc_fail(e, "chat: message %zu has role '%s': expected system, user or assistant", i,
                     role ? role : "(null)");
    if (!messages[i].content)
      return oc_fail(e, "chat: message %zu (%s) has no content", i, role);
  }
  if (t->kind != RT_CHAT_OLMO2) return oc_fail(e, "chat: unknown template kind %d", (int)t->kind);
  buf b = {0};
  puts_(&b, ""); /* an empty result is still a string */
  render_olmo2(t, messages, n, add_generation_prompt, &b);
  if (b.oom) {
    free(b.p);
    return oc_fail(e, "chat: out of memory rendering %zu messages", n);
  }
  *out = b.p;
  return 0;
}
