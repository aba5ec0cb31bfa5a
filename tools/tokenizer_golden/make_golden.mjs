// Makes tests/data/tokenizer/{dolma2,variants}.jsonl: for every string of
// strings.mjs, its bytes (hex) and the ids the reference tokenizers give for
// OLMo 2's tokenizer (models/olmo2-tokenizer/tokenizer.json).
//
//   cd tools/tokenizer_golden && npm ci && node make_golden.mjs
//
// "ids" come from @huggingface/tokenizers (pure JS). The Rust tokenizers crate
// (npm `tokenizers`, its Node binding: what transformers runs) encodes every
// string too; where it disagrees the line also has "rust_ids", and olmoc
// follows Rust. Bytes that are not UTF-8 reach both as the string a lossy
// decoder makes of them (WHATWG TextDecoder, keeping a BOM); "lossy_hex" is
// that string's UTF-8, what decode(encode(bytes)) must give back.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { strings, variants } from './strings.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const source = path.resolve(repo, 'models/olmo2-tokenizer/tokenizer.json');
const outDir = path.join(repo, 'tests/data/tokenizer');
const Rust = createRequire(import.meta.url)('tokenizers').Tokenizer;

const lossy = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const utf8 = (s) => new TextEncoder().encode(s);
const hex = (u8) => Buffer.from(u8).toString('hex');
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

async function golden(config, list, extra = {}) {
  const js = new Tokenizer(config, { clean_up_tokenization_spaces: false });
  const rust = Rust.fromString(JSON.stringify(config));
  const lines = [];
  const differ = [];
  for (const [name, text] of list) {
    const raw = typeof text === 'string' ? utf8(text) : text;
    const str = lossy.decode(raw);
    const ids = js.encode(str, { add_special_tokens: false }).ids;
    const line = { ...extra, name, hex: hex(raw), ids };
    if (hex(utf8(str)) !== line.hex) line.lossy_hex = hex(utf8(str));
    const rust_ids = (await rust.encode(str, null, { addSpecialTokens: false })).getIds();
    if (!same(rust_ids, ids)) {
      line.rust_ids = rust_ids;
      differ.push(name);
    }
    if (!extra.variant && (await rust.decode(rust_ids, false)) !== str)
      throw new Error(`${name}: Rust decode does not give the text back`);
    lines.push(JSON.stringify(line));
  }
  return { lines, differ };
}

const names = new Set();
for (const [name] of strings) {
  if (names.has(name)) throw new Error(`duplicate name ${name}`);
  names.add(name);
}

const config = JSON.parse(fs.readFileSync(source, 'utf8'));
fs.mkdirSync(outDir, { recursive: true });

const main = await golden(config, strings);
fs.writeFileSync(path.join(outDir, 'dolma2.jsonl'), main.lines.join('\n') + '\n');
console.log(`dolma2.jsonl: ${main.lines.length} strings; JS and Rust differ on ${main.differ.length}: ${main.differ.join(' ')}`);

// Variants: short strings only, to keep the file small.
const short = strings.filter(([, t]) => (typeof t === 'string' ? utf8(t) : t).length <= 300);
const out = [];
for (const [variant, pre_tokenizer] of variants) {
  const g = await golden({ ...config, pre_tokenizer }, short, { variant });
  out.push(JSON.stringify({ variant, pre_tokenizer }), ...g.lines);
  console.log(`variant ${variant}: ${g.lines.length} strings; JS and Rust differ on ${g.differ.length}: ${g.differ.join(' ')}`);
}
fs.writeFileSync(path.join(outDir, 'variants.jsonl'), out.join('\n') + '\n');
