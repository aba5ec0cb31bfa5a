// The reference side of bench/tokenizer_bench.sh: encodes TEXT_FILE whole and
// line by line, best of RUNS, with tiktoken's cl100k_base (Rust compiled to
// WebAssembly; the same 100k ranks as OLMo 2's vocabulary), the Rust
// tokenizers crate (npm `tokenizers`, native, one thread) and
// @huggingface/tokenizers (pure JS) on TOKENIZER_JSON, and prints MB/s.
//
//   node bench_ref.mjs TEXT_FILE TOKENIZER_JSON [RUNS]
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { Tokenizer as JsTokenizer } from '@huggingface/tokenizers';
import { get_encoding } from 'tiktoken';

const [textPath, tokPath, runsArg] = process.argv.slice(2);
if (!textPath || !tokPath) {
  console.error('usage: node bench_ref.mjs TEXT_FILE TOKENIZER_JSON [RUNS]');
  process.exit(2);
}
const runs = Number(runsArg) || 2;
process.env.TOKENIZERS_PARALLELISM = 'false';
const text = fs.readFileSync(textPath, 'utf8');
const mb = Buffer.byteLength(text) / 1e6;
const RustTokenizer = createRequire(import.meta.url)('tokenizers').Tokenizer;

const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];

async function best(name, encode) {
  let t = Infinity;
  let n = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    n = await encode();
    t = Math.min(t, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.log(`${name.padEnd(48)} ${(mb / t).toFixed(1).padStart(7)} MB/s wall  (${n} tokens)`);
}

const cl100k = get_encoding('cl100k_base');
await best('tiktoken 1.0.22 cl100k_base (wasm), whole', () => cl100k.encode(text).length);
await best('tiktoken 1.0.22 cl100k_base (wasm), per line', () =>
  lines.reduce((n, l) => n + cl100k.encode(l).length, 0));
cl100k.free();
const rust = RustTokenizer.fromFile(tokPath);
const opts = { addSpecialTokens: false };
await best('tokenizers 0.23.2 (Rust, native), whole', async () =>
  (await rust.encode(text, null, opts)).getIds().length);
await best('tokenizers 0.23.2 (Rust, native), per line', async () =>
  (await rust.encodeBatch(lines, opts)).reduce((n, e) => n + e.getIds().length, 0));
const js = new JsTokenizer(JSON.parse(fs.readFileSync(tokPath, 'utf8')), {});
await best('@huggingface/tokenizers 0.2.0 (JS), whole', () =>
  js.encode(text, { add_special_tokens: false }).ids.length);
await best('@huggingface/tokenizers 0.2.0 (JS), per line', () =>
  lines.reduce((n, l) => n + js.encode(l, { add_special_tokens: false }).ids.length, 0));
