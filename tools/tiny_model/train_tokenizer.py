#!/usr/bin/python3
"""Trains the byte-level BPE tokenizer of models/olmo2-tiny (4096 ids) on the
training part of the Brown corpus and writes it as a Hugging Face
tokenizer.json with the same structure and options as OLMo 2's dolma2 tokenizer.

    /usr/bin/python3 tools/tiny_model/train_tokenizer.py

Input: tools/tiny_model/data/brown.jsonl (from extract_brown.js). The held-out
documents (split.py) are NOT used. Vocabulary: ids 0..255 are the 256 bytes in
GPT-2's byte-to-unicode order (like cl100k/dolma2), ids 256..4094 the 3839
merges in the order learned, id 4095 the special added token <|endoftext|>
(eos, pad and document separator). Pre-tokenization: the exact Split regex of
models/olmo2-tokenizer/tokenizer.json (copied below and checked against
that file when it exists). Training is the classic algorithm: count the
pre-tokenized words, then repeatedly merge the most frequent adjacent pair
(ties: the larger pair of ids, deterministic), updating pair counts only for
the words that contain the merged pair. Takes well under a minute.
"""
import collections
import json
import os
import sys
import time

import regex

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import split  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "models", "olmo2-tiny", "tokenizer.json")
DOLMA2 = os.path.join(ROOT, "models", "olmo2-tokenizer", "tokenizer.json")

VOCAB_SIZE = 4096          # including the one added token
EOS = "<|endoftext|>"
# The Split pattern of dolma2-tokenizer.json (cl100k_base's), verbatim.
PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
           r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def train_bpe(word_counts, n_merges):
    """word_counts: {byte-level unicode string: count}. Returns the merges as (a, b) string pairs."""
    base = list(bpe.BYTE_TO_UNI.values())
    sym_id = {s: i for i, s in enumerate(base)}
    syms = list(base)
    words = [[sym_id[c] for c in w] for w in word_counts]
    counts = list(word_counts.values())
    pair_count = collections.defaultdict(int)
    where = collections.defaultdict(set)          # pair -> indices of words containing it
    for wi, w in enumerate(words):
        for p in zip(w, w[1:]):
            pair_count[p] += counts[wi]
            where[p].add(wi)
    merges = []
    for _ in range(n_merges):
        if not pair_count:
            break
        best = max(pair_count.items(), key=lambda kv: (kv[1], kv[0]))[0]
        if pair_count[best] < 2:
            break
        a, b = best
        new = len(syms)
        syms.append(syms[a] + syms[b])
        sym_id[syms[new]] = new
        merges.append((syms[a], syms[b]))
        for wi in list(where[best]):
            w, c = words[wi], counts[wi]
            # remove this word's old pairs, merge, add its new pairs
            for p in zip(w, w[1:]):
                pair_count[p] -= c
                if pair_count[p] <= 0:
                    del pair_count[p]
                where[p].discard(wi)
            out, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and w[i] == a and w[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[wi] = out
            for p in zip(out, out[1:]):
                pair_count[p] += c
                where[p].add(wi)
        where.pop(best, None)
        pair_count.pop(best, None)
    return merges


def main():
    t0 = time.time()
    if os.path.exists(DOLMA2):
        with open(DOLMA2, encoding="utf-8") as f:
            dolma2 = json.load(f)
        assert bpe.load_split_pattern(dolma2) == PATTERN, "pattern differs from dolma2's"
    train_docs, _ = split.load_split()
    pat = regex.compile(PATTERN)
    wc = collections.Counter()
    for d in train_docs:
        wc.update(pat.findall(d["text"]))
    word_counts = {"".join(bpe.BYTE_TO_UNI[b] for b in w.encode("utf-8")): c for w, c in wc.items()}
    print(f"{len(train_docs)} training documents, {sum(wc.values())} pre-tokens, {len(wc)} distinct")

    n_merges = VOCAB_SIZE - 256 - 1
    merges = train_bpe(word_counts, n_merges)
    assert len(merges) == n_merges, len(merges)
    vocab = {s: i for i, s in enumerate(bpe.BYTE_TO_UNI.values())}
    for a, b in merges:
        vocab[a + b] = len(vocab)
    assert len(vocab) == VOCAB_SIZE - 1
    eos_id = len(vocab)

    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": eos_id, "content": EOS, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        # as dolma2's: Split with behavior Removed + invert true keeps exactly the regex matches
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Removed", "invert": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    if os.path.exists(DOLMA2):   # same keys and options as dolma2's, everywhere but the data
        for k in dolma2:
            assert k in tok, k
            if k not in ("model", "added_tokens"):
                assert tok[k] == dolma2[k], k
        assert {k: v for k, v in tok["model"].items() if k not in ("vocab", "merges")} == \
               {k: v for k, v in dolma2["model"].items() if k not in ("vocab", "merges")}
        assert set(tok["added_tokens"][0]) == set(dolma2["added_tokens"][0])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=2)
        f.write("\n")

    # check: the encoder reproduces training, round trips, and compresses
    t = bpe.Tokenizer(OUT)
    sample = train_docs[0]["text"][:2000]
    ids = t.encode(sample + EOS)
    assert ids[-1] == eos_id and t.decode(ids[:-1]) == sample
    n_chars = sum(len(d["text"]) for d in train_docs[:50])
    n_tok = sum(len(t.encode(d["text"])) for d in train_docs[:50])
    print(f"wrote {OUT}: {VOCAB_SIZE} ids ({n_merges} merges, eos {eos_id}); "
          f"{n_chars / n_tok:.2f} chars/token on 50 docs; {time.time() - t0:.1f} s")
    print("longest tokens:", sorted(vocab, key=len)[-8:])


if __name__ == "__main__":
    main()
