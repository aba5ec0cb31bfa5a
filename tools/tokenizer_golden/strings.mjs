// The strings olmoc's tokenizer is checked on: [name, text] where text is a JS
// string (written out as UTF-8) or a Uint8Array (bytes as they are, for
// ill-formed UTF-8). Grouped by what they exercise; names are unique.

const bytes = (...b) => Uint8Array.from(b);
const cat = (...parts) => {
  const enc = new TextEncoder();
  const chunks = parts.map((p) => (typeof p === 'string' ? enc.encode(p) : p));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) out.set(c, o), (o += c.length);
  return out;
};

// A small deterministic generator (mulberry32) for the random mixtures.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const prose = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog.',
  'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.',
  'Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse, I thought I would sail about a little and see the watery part of the world.',
  'In 1969, Neil Armstrong became the first person to walk on the Moon.',
  '"Are you coming?" she asked. "No," he replied, "not today."',
  "She said, 'I can't believe it's already 5 o'clock!'",
  'Mr. and Mrs. Dursley, of number four, Privet Drive, were proud to say that they were perfectly normal, thank you very much.',
  'The mitochondria is the powerhouse of the cell; ATP synthase spins at ~9,000 rpm.',
  'e.g., i.e., etc., vs. — abbreviations everywhere.',
  'Semicolons; colons: dashes – and em-dashes — and ellipses…',
  'WHY ARE YOU SHOUTING? I AM NOT SHOUTING!!!',
  'tHiS iS mIxEd CaSe TeXt',
  'A sentence with  two spaces and   three spaces.',
  'Line one.\nLine two.\nLine three.',
  'Paragraph one.\n\nParagraph two.\n\n\nParagraph three.',
  'The year 2024 had 366 days; 2023 had 365.',
  'Prices: $5.99, €4.50, £3.20, ¥1000, ₹250.',
  'Temperature: -40°C equals -40°F.',
  'He scored 99.5% on the test (out of 100%).',
  'OLMo 2 is a family of fully open language models by Ai2.',
  'To be, or not to be, that is the question:\nWhether \'tis nobler in the mind to suffer\nThe slings and arrows of outrageous fortune,',
  'Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in Liberty, and dedicated to the proposition that all men are created equal.',
  'antidisestablishmentarianism floccinaucinihilipilification',
  'The U.S.A. and the U.K. signed the treaty at 10:30 a.m. on Jan. 5th.',
  'I\'ll be there at 8pm—don\'t be late!',
  'Tokenization is the process of splitting text into tokens.',
  'What?! No way... Really??',
  '(parenthetical remark) [bracketed] {braced} <angled>',
  'hashtags #like #this and @mentions @user_name',
  '  leading spaces',
  'trailing spaces   ',
  'trailing newline\n',
  'trailing newlines\n\n\n',
  '\nleading newline',
  'ends with a space ',
  'Windows line\r\nendings\r\n',
  'old Mac\rline endings\r',
  'tab\tseparated\tvalues',
  'a\tb\t\tc\t\t\td',
];

const code = [
  '#include <stdio.h>\n\nint main(void) {\n    printf("Hello, world!\\n");\n    return 0;\n}\n',
  'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
  'class Foo:\n\tdef __init__(self):\n\t\tself.x = 1\n',
  'const add = (a, b) => a + b;\nconsole.log(add(2, 3));',
  'fn main() {\n    let v: Vec<i32> = (0..10).map(|x| x * x).collect();\n    println!("{:?}", v);\n}',
  'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi")\n}\n',
  'public static void main(String[] args) { System.out.println("Java"); }',
  'SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;',
  '#!/bin/sh\nset -eu\nfor f in *.txt; do echo "$f"; done\n',
  '<!DOCTYPE html>\n<html><head><title>T</title></head><body><p class="x">Hi</p></body></html>',
  '.container > .item:hover { color: #ff0000; margin: 0 auto; }',
  'main :: IO ()\nmain = mapM_ print [x * 2 | x <- [1..10], odd x]',
  '(defun square (x) (* x x))',
  'x = [i**2 for i in range(10) if i % 2 == 0]',
  'if (a != b && c <= d || !e) { return -1; }',
  'ptr->next->prev = &node; *p++ = 0x7f;',
  'a += 1; b -= 2; c *= 3; d /= 4; e %= 5; f <<= 6; g >>= 7;',
  '    indented four\n        indented eight\n',
  '\t\t\ttabs before code();',
  '    \n    \n',
  '// comment\n/* block\n   comment */\n',
  '"""docstring"""\n\'\'\'another\'\'\'',
  'std::vector<std::string> v{"a", "b"};',
  'template<typename T> T max(T a, T b) { return a > b ? a : b; }',
  '$ npm install --save-dev @huggingface/tokenizers',
  'git commit -m "Fix bug #123"',
  'matrix = [[1, 2, 3],\n          [4, 5, 6]]',
  'print(f"{name!r:>10}")',
  'let re = /^[a-z0-9_-]{3,16}$/i;',
  'x=1;y=2;z=x+y',
];

const numbers = [
  '0', '1', '12', '123', '1234', '12345', '123456', '1234567',
  '12345678901234567890',
  '3.14159265358979323846264338327950288419716939937510',
  '-273.15', '+1', '1,000,000', '1.000.000,00', '1e-10', '6.022e23', '0xDEADBEEF', '0b101010',
  '2024-01-15T10:30:00Z', '555-123-4567', '192.168.0.1', 'v1.2.3-beta.4',
  '１２３４５', '١٢٣٤٥٦٧', '०१२३४५६७८९', '²³¹ ½ ¾', 'Ⅻ ⅻ', '𝟎𝟏𝟐𝟑',
  'abc123def456', '123abc', 'a1b2c3d4',
];

const whitespace = [
  '', ' ', '  ', '   ', '    ', '     ', '        ', ' '.repeat(16), ' '.repeat(33),
  '\n', '\n\n', '\n\n\n', '\r\n', '\r\n\r\n', '\r', '\t', '\t\t', '\t\n', ' \n', '\n ', ' \n ',
  'a b', 'a  b', 'a   b', 'a    b', 'a \n b', 'a\n\n b', 'a \t b', 'x \r\n y',
  'word   \n', '   \n\n   word', 'a\u00a0b', 'a\u00a0\u00a0b', 'a\u3000b', 'a\u2028b', 'a\u2029b',
  'a\u0085b', 'a\u180eb', 'a\ufeffb', '\ufeffBOM at start', 'a\u000bb', 'a\u000cb', 'a\u200bb',
  'a\u2003\u2003b', ' \u00a0 ', '\n\u00a0\n',
  // Where engines disagree on \s (PCRE2 adds U+180E; JS's adds U+FEFF, drops U+0085):
  '!\u180e!', '.\u180e\u180e.', '!\u0085!', 'x.\u0085\u0085', '!\ufeff!', '?\ufeff\ufeff?',
  'a \u180e b', ':\u180e\n', '\u0085\u0085x',
];

const emoji = [
  '😀', '😀😀😀', 'I love 🍕!', 'ok👍', '👍🏽', '👍🏿 thumbs', '👨‍👩‍👧‍👦', 'family: 👨‍👩‍👧‍👦.',
  '🏳️‍🌈', '🇺🇸🇫🇷🇯🇵', '❤️', 'I ❤️ NY', '1️⃣2️⃣3️⃣', '🧑🏿‍🚀', '👩🏻‍💻 coding', '🤷‍♀️',
  '🫠🫡🫥', '✨ sparkles ✨', '🙂 🙃', '(╯°□°)╯︵ ┻━┻',
];

const scripts = [
  '你好，世界！', '我爱自然语言处理。', '今天天气很好，我们去公园散步吧。',
  'こんにちは、世界！', 'カタカナとひらがなと漢字', '東京は日本の首都です。',
  '안녕하세요 세계', '한국어 텍스트입니다.', 'ＡＢＣ ｆｕｌｌｗｉｄｔｈ',
  '中文English混合text', '「引用」と『二重引用』', '日本語　全角スペース',
  'مرحبا بالعالم', 'اللغة العربية جميلة.', 'שלום עולם', 'नमस्ते दुनिया', 'हिन्दी भाषा सुन्दर है।',
  'Привет, мир!', 'Съешь же ещё этих мягких французских булок.', 'Γειά σου Κόσμε', 'ΑΒΓΔ αβγδ',
  'สวัสดีชาวโลก', 'Xin chào thế giới', 'გამარჯობა', 'Բարեւ աշխարհ', 'வணக்கம் உலகம்', 'ওহে বিশ্ব',
  'ሰላም ልዑል', 'Ελληνικά, русский, 中文, العربية', 'Türkçe: çğıöşü İ', 'Dziękuję bardzo', 'Ærøskøbing',
];

const accents = [
  'café', 'cafe\u0301', 'naïve', 'nai\u0308ve', 'Ångström', 'A\u030angstro\u0308m', 'résumé',
  're\u0301sume\u0301', 'ﬁnancial ﬂow', 'Z̤̈́a̴̡l͉͗g̛͘o̸ text', 'ñ n\u0303', 'œuvre Straße ß SS',
  'İstanbul ıi', 'e\u0301\u0301\u0301', '\u0301 leading combining mark',
];

const contractions = [];
for (const c of ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]) {
  contractions.push(`it${c}`, `IT${c.toUpperCase()}`, ` x${c} y`);
}
contractions.push(
  "don't", "DON'T", "Don'T", "we're", "We'Re", "I've", "I'VE", "I'm", "I'M", "we'll", "WE'LL",
  "he'd", "HE'D", "'s", "'S", "'", "''", "'''s", "x'sy", "’s curly", "it’s", "'ſ", "'ll've",
  "rock 'n' roll", "'tis 'twas", "the dogs' bones", "O'Neill's", "'99", "can't've",
);

const added = [
  '<|extra_id_0|>', '<|endoftext|>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>',
  '|||PHONE_NUMBER|||', '|||EMAIL_ADDRESS|||', '|||IP_ADDRESS|||', '<|im_start|>', '<|im_end|>',
  '<|extra_id_1|>', '<|extra_id_2|>', '<|extra_id_3|>', '<|extra_id_4|>', '<|extra_id_5|>',
  '<|extra_id_6|>', '<|extra_id_7|>', '<|extra_id_8|>', '<|extra_id_9|>', '<|extra_id_10|>',
  '<|endofprompt|>', '<|pad|>',
];
const addedUse = added.map((tok, i) => [
  `added-embedded-${i}`,
  i % 2 ? `Hello ${tok} world` : `text${tok}more`,
]);
const addedMix = [
  'Hello<|endoftext|>World', '<|endoftext|><|endoftext|>', '<|endoftext|> <|endoftext|>',
  ' <|endoftext|> ', '<|endoftext|>  x', 'x  <|endoftext|>', '\n<|endoftext|>\n',
  '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n',
  '<|fim_prefix|>def f(x):\n    <|fim_suffix|>\n    return y<|fim_middle|>',
  'Call me at |||PHONE_NUMBER||| or mail |||EMAIL_ADDRESS|||.', 'host |||IP_ADDRESS|||:8080',
  '<|extra_id_1|>0', '<|extra_id_10|>0', '<|extra_id_1|><|extra_id_10|>', '<|extra_id_100|>',
  '<|endoftext', '<|endoftext|', 'endoftext|>', '<<|endoftext|>>', '<|<|endoftext|>|>',
  '|||PHONE_NUMBER||||', '||||IP_ADDRESS|||', '||PHONE_NUMBER|||', '<|ENDOFTEXT|>', '< |endoftext|>',
  '<|pad|><|pad|><|pad|>', 'a<|pad|>b<|pad|>c', '<|endofprompt|>\n\n', '   <|im_end|>',
  "it's<|endoftext|>'s", '123<|endoftext|>456', '😀<|endoftext|>😀', '<|im_start|>system',
];

const invalid = [
  ['invalid-ff', bytes(0xff)],
  ['invalid-fe-ff', bytes(0xfe, 0xff)],
  ['invalid-c0-80-overlong', bytes(0xc0, 0x80)],
  ['invalid-e0-80-af-overlong', bytes(0xe0, 0x80, 0xaf)],
  ['invalid-surrogate', bytes(0xed, 0xa0, 0x80)],
  ['invalid-surrogate-pair', bytes(0xed, 0xa0, 0xbd, 0xed, 0xb2, 0xa9)],
  ['invalid-truncated-3', bytes(0xe2, 0x82)],
  ['invalid-truncated-emoji', bytes(0xf0, 0x9f, 0x98)],
  ['invalid-text-then-truncated', cat('abc', bytes(0xe2, 0x82))],
  ['invalid-truncated-then-text', cat(bytes(0xe2, 0x82), 'abc')],
  ['invalid-lone-continuation', bytes(0x80)],
  ['invalid-continuations', bytes(0x80, 0x80, 0x80)],
  ['invalid-in-word', cat('a', bytes(0x80), 'b')],
  ['invalid-past-10ffff', bytes(0xf4, 0x90, 0x80, 0x80)],
  ['invalid-f5', bytes(0xf5, 0x80, 0x80, 0x80)],
  ['invalid-5-byte', bytes(0xf8, 0x88, 0x80, 0x80, 0x80)],
  ['invalid-c3-28', bytes(0xc3, 0x28)],
  ['invalid-latin1', cat('caf', bytes(0xe9), ' cr', bytes(0xe8), 'me')],
  ['invalid-before-added', cat(bytes(0xe2), '<|endoftext|>', bytes(0x82, 0xac))],
  ['invalid-space-runs', cat('  ', bytes(0xff), '  ', bytes(0xfe), '\n')],
  ['invalid-mixed', cat('Hello ', bytes(0xf0, 0x9f), ' world ', bytes(0xc2), '!')],
  ['invalid-all-high', Uint8Array.from({ length: 128 }, (_, i) => 0x80 + i)],
];

const long = [
  ['long-a-1000', 'a'.repeat(1000)],
  ['long-x-5000', 'x'.repeat(5000)],
  ['long-ab-500', 'ab'.repeat(500)],
  ['long-word', 'Pneumonoultramicroscopicsilicovolcanoconiosis'],
  ['long-supercal', 'Supercalifragilisticexpialidocious'.repeat(3)],
  ['long-digits-300', '1234567890'.repeat(30)],
  ['long-spaces-1000', ' '.repeat(1000) + 'x'],
  ['long-newlines-200', '\n'.repeat(200)],
  ['long-han-400', '的一是不了人我在有他这为之大来以个中上们'.repeat(20)],
  ['long-hash', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['long-base64', 'TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsuIFRoZSBxdWljayBicm93biBmb3g/IQ=='.repeat(8)],
  ['long-punct', '!?.,;:'.repeat(100)],
  ['long-emoji', '😀🎉🚀'.repeat(100)],
];
{
  const r = rng(7);
  let s = '';
  for (let i = 0; i < 3000; i++) s += String.fromCharCode(97 + Math.floor(r() * 26));
  long.push(['long-random-letters-3000', s]);
}

const web = [
  'https://www.example.com/path/to/page?query=1&other=two#anchor',
  'http://localhost:8080/api/v1/users/42',
  'ftp://files.example.org/pub/file.tar.gz',
  'mailto:someone@example.com',
  'Visit https://huggingface.co/allenai/OLMo-2-0425-1B for details.',
  'user.name+tag@sub.domain.co.uk', '/usr/local/bin/python3', 'C:\\Users\\Admin\\Documents\\file.txt',
  '../relative/path/./file.md', 'https://例子.测试/路径', 'www.ex-ample.com:443',
];

const markdown = [
  '# Heading 1\n## Heading 2\n### Heading 3\n',
  '- item one\n- item two\n  - nested item\n',
  '1. first\n2. second\n3. third\n',
  '**bold** and *italic* and `code` and ~~strike~~',
  '[link text](https://example.com) and ![image](img.png)',
  '| col1 | col2 |\n|------|------|\n| a    | b    |\n',
  '```python\nprint("hi")\n```\n',
  '> quoted text\n> more quote\n',
  '---\ntitle: Front matter\n---\n',
  '<details><summary>More</summary>\n\nHidden\n</details>',
];

const json = [
  '{"key": "value", "number": 42, "array": [1, 2, 3], "nested": {"a": null, "b": true}}',
  '{\n  "name": "olmoc",\n  "version": "0.1.0"\n}',
  '[{"id":1},{"id":2},{"id":3}]',
  '{"escaped": "line\\nbreak \\"quote\\" \\u00e9"}',
  '{"emoji": "😀", "cjk": "中文"}',
  '[]', '{}', 'null', '{"a":{"b":{"c":{"d":[[[]]]}}}}',
  '{"float": -1.5e-10, "big": 12345678901234567890}',
];

const misc = [
  'a\u0000b', '\u0000', '\u0001\u0002\u0003\u001f', 'del\u007fchar', 'c1\u0080\u009fcontrols',
  'private\ue000use', 'nonchar\ufffe\uffff', 'max\u{10ffff}', 'replacement \ufffd char',
  '𝄞 musical', '𝐀𝐁𝐂 math bold', '∀x∈ℝ: x²≥0', '∑∫∂√∞≠≈', '┌─┐\n│ │\n└─┘',
  '←↑→↓⇒⇔', '™®©℠', '«guillemets» „quotes“ ‚single‘', '¿Qué? ¡Sí!', '§¶†‡•', '°′″',
  'zero\u200bwidth\u200cjoiner\u200dtest', 'rtl\u200fmark\u200e', 'soft\u00adhyphen',
  'K\u212a Kelvin', '\u00b5 micro \u03bc mu', 'ǅ titlecase ǈ', 'ᴬᴮᶜ superscript letters',
];

// Random mixtures of the characters the pre-tokenizer treats differently.
const mixtures = [];
{
  const alphabet = [
    ' ', ' ', ' ', '\n', '\r', '\t', 'a', 'b', 'e', 'the', 'The', 'THE', '1', '22', '333', '.', ',',
    '!', '?', "'", "'s", "'t", "'LL", '"', '(', ')', '-', '_', '/', '\\', '😀', '👍🏽', '中', '文',
    'é', 'e\u0301', 'ß', '\u00a0', '\u3000', '\u0085', 'ا', 'न', '€', '<|endoftext|>', '<|', '|>',
    '|||', '0', '٣', 'Ⅻ', '\u200d', '\u180e', '\ufeff',
  ];
  const r = rng(2024);
  for (let i = 0; i < 40; i++) {
    let s = '';
    const n = 3 + Math.floor(r() * 40);
    for (let k = 0; k < n; k++) s += alphabet[Math.floor(r() * alphabet.length)];
    mixtures.push([`mixture-${i}`, s]);
  }
}

export const strings = [
  ...prose.map((s, i) => [`prose-${i}`, s]),
  ...code.map((s, i) => [`code-${i}`, s]),
  ...numbers.map((s, i) => [`number-${i}`, s]),
  ...whitespace.map((s, i) => [`space-${i}`, s]),
  ...emoji.map((s, i) => [`emoji-${i}`, s]),
  ...scripts.map((s, i) => [`script-${i}`, s]),
  ...accents.map((s, i) => [`accent-${i}`, s]),
  ...contractions.map((s, i) => [`contraction-${i}`, s]),
  ...added.map((s, i) => [`added-alone-${i}`, s]),
  ...addedUse,
  ...addedMix.map((s, i) => [`added-mix-${i}`, s]),
  ...invalid,
  ...long,
  ...web.map((s, i) => [`web-${i}`, s]),
  ...markdown.map((s, i) => [`markdown-${i}`, s]),
  ...json.map((s, i) => [`json-${i}`, s]),
  ...misc.map((s, i) => [`misc-${i}`, s]),
  ...mixtures,
];

// Pre-tokenizers of other real byte-level tokenizers, tried on the dolma2
// vocabulary: each replaces the file's pre_tokenizer.
export const variants = [
  // GPT-2, RoBERTa: the ByteLevel pre-tokenizer's own regex.
  ['gpt2', { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }],
  // Llama 3: the same regex as OLMo 2 but with Isolated behaviour.
  ['llama3', {
    type: 'Sequence',
    pretokenizers: [
      {
        type: 'Split',
        pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
        behavior: 'Isolated',
        invert: false,
      },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  }],
  // StarCoder-like: digits one by one, then GPT-2's regex.
  ['digits', {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Digits', individual_digits: true },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    ],
  }],
  // A literal split removing the delimiter, then bytes as they are.
  ['removed-string', {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { String: ' ' }, behavior: 'Removed', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  }],
];
