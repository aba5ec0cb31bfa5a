/* Chat templates: turning a conversation into the prompt text a chat model
 * was trained on. Hugging Face models carry a Jinja template in
 * tokenizer_config.json; olmoc recognizes the ones it renders natively (the
 * OLMo 2 Instruct template) and refuses any other with a clear message. */
#ifndef OLMOC_CHAT_H
#define OLMOC_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "olmoc/error.h"

typedef struct rt_chat_message {
  const char *role; /* "system", "user" or "assistant" */
  const char *content;
} rt_chat_message;

typedef enum rt_chat_kind { RT_CHAT_OLMO2 } rt_chat_kind;

typedef struct rt_chat_template {
  rt_chat_kind kind;
  char bos_token[64]; /* as tokenizer_config.json gives them */
  char eos_token[64];
} rt_chat_template;

/* Reads path (a model directory or its tokenizer_config.json) and recognizes
 * its chat_template. No file or no chat_template: an error saying so. */
int rt_chat_template_load(const char *path, rt_chat_template *t, oc_error *e);
/* json: the text of a tokenizer_config.json (NUL-terminated); source names
 * it in messages. */
int rt_chat_template_parse(const char *json, const char *source, rt_chat_template *t,
                           oc_error *e);
/* A template by name ("olmo2", with OLMo 2's <|endoftext|> tokens). */
int rt_chat_template_named(const char *name, rt_chat_template *t, oc_error *e);

/* Renders messages (and, if asked, the assistant's turn opener) into a
 * malloc'ed NUL-terminated string. Unknown roles are an error. */
int rt_chat_render(const rt_chat_template *t, const rt_chat_message *messages, size_t n,
                   bool add_generation_prompt, char **out, oc_error *e);

#endif
