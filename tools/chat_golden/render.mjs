// Renders OLMo 2 Instruct's chat template with @huggingface/jinja (a Jinja
// implementation independent of olmoc) on the conversations below and writes
// tests/data/chat/golden.json, which tests/test_chat.c renders natively and
// compares byte for byte. Run: cd tools/chat_golden && npm ci && node render.mjs
import { Template } from "@huggingface/jinja";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "..", "tests", "data", "chat", "golden.json");
const jinjaVersion = JSON.parse(
  readFileSync(join(here, "node_modules", "@huggingface", "jinja", "package.json"), "utf8"),
).version;

// The "chat_template" line of allenai/OLMo-2-1124-13B-Instruct's tokenizer_config.json,
// copied as JSON text (so its "\n" escapes decode exactly as transformers decodes them).
const template = JSON.parse(
  `"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>\\n' + message['content'] + '\\n' }}{% elif message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + '\\n' }}{% elif message['role'] == 'assistant' %}{% if not loop.last %}{{ '<|assistant|>\\n'  + message['content'] + eos_token + '\\n' }}{% else %}{{ '<|assistant|>\\n'  + message['content'] + eos_token }}{% endif %}{% endif %}{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}{% endfor %}"`,
);

const EOT = "<|endoftext|>";
const sys = (content) => ({ role: "system", content });
const user = (content) => ({ role: "user", content });
const asst = (content) => ({ role: "assistant", content });

// [name, messages, add_generation_prompt, bos_token, eos_token]
const cases = [
  ["system_user_prompt", [sys("You are a helpful assistant."), user("Hello!")], true],
  ["user_prompt", [user("What is 2+2?")], true],
  ["user_no_prompt", [user("What is 2+2?")], false],
  ["multi_turn_system_prompt",
    [sys("Be brief."), user("Hi"), asst("Hello! How can I help?"), user("Name a prime.")], true],
  ["ends_on_assistant", [user("Hi"), asst("Hello.")], false],
  ["ends_on_assistant_prompt", [user("Hi"), asst("Hello.")], true],
  ["three_rounds_no_system",
    [user("a"), asst("b"), user("c"), asst("d"), user("e"), asst("f")], false],
  ["three_rounds_then_user",
    [user("one"), asst("two"), user("three"), asst("four"), user("five")], true],
  ["system_only_prompt", [sys("You are OLMo.")], true],
  ["system_only_no_prompt", [sys("You are OLMo.")], false],
  ["no_messages_prompt", [], true],
  ["no_messages", [], false],
  ["newlines",
    [sys("line 1\nline 2\n"), user("\nleading and trailing\n\n"), asst("a\r\nb\n"), user("x")], true],
  ["unicode",
    [user("Grüße, 你好, नमस्ते, 🎉🦀, e\u0301"), asst("Ça va — très bien ✓"), user("\u00a0\u2028end")], true],
  ["braces_quotes_backslashes",
    [sys("{{ bos_token }} {% if x %}{# c #}"), user("'single' \"double\" \\n \\ `tick`"),
      asst("{'role': 'user'} }} %} {{"), user("<|assistant|>\n<|endoftext|>")], true],
  ["empty_contents", [sys(""), user(""), asst(""), user("")], true],
  ["empty_assistant_last", [user("say nothing"), asst("")], false],
  ["odd_orders", [asst("I speak first"), user("ok"), sys("late system"), user("again"), user("twice")], true],
  ["other_special_tokens", [sys("s"), user("u"), asst("a"), user("u2")], true, "<s>", "</s>"],
  ["empty_bos", [user("u"), asst("a")], true, "", "<|im_end|>"],
  ["long_conversation",
    Array.from({ length: 20 }, (_, i) => (i % 2 ? asst(`answer ${i}`) : user(`question ${i}`))), true],
];

const golden = {
  generator: `tools/chat_golden/render.mjs, @huggingface/jinja ${jinjaVersion}`,
  template,
  cases: cases.map(([name, messages, add_generation_prompt, bos = EOT, eos = EOT]) => ({
    name,
    bos_token: bos,
    eos_token: eos,
    add_generation_prompt,
    messages,
    expected: new Template(template).render({
      messages,
      bos_token: bos,
      eos_token: eos,
      add_generation_prompt,
    }),
  })),
};

// The rendering the model card shows, as a check on the template itself.
const first = golden.cases[0].expected;
const want = "<|endoftext|><|system|>\nYou are a helpful assistant.\n<|user|>\nHello!\n<|assistant|>\n";
if (first !== want) throw new Error(`unexpected rendering: ${JSON.stringify(first)}`);

writeFileSync(out, JSON.stringify(golden, null, 1) + "\n");
console.log(`wrote ${golden.cases.length} cases to ${out}`);
