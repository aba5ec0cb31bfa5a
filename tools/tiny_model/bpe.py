"""Byte-level BPE as Hugging Face `tokenizers` runs a tokenizer.json of the
dolma2 kind (no normalizer; added tokens matched whole first; pre-tokenizer =
Split(regex, keep the matches) then ByteLevel without its own regex; BPE model
applying merges by rank; ByteLevel decoder). Shared by train_tokenizer.py,
train.py and make_reference.py.  Needs python3-regex (`import regex`)."""
import json

import regex


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode character mapping."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))   # insertion order = GPT-2 / cl100k base-token order


BYTE_TO_UNI = bytes_to_unicode()
UNI_TO_BYTE = {c: b for b, c in BYTE_TO_UNI.items()}


def load_split_pattern(tokenizer_json):
    """The pre-tokenizer regex of a dolma2-style tokenizer.json (dict)."""
    pt = tokenizer_json["pre_tokenizer"]
    splits = [p for p in pt["pretokenizers"] if p["type"] == "Split"]
    assert len(splits) == 1
    return splits[0]["pattern"]["Regex"]


class Tokenizer:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        m = tj["model"]
        assert m["type"] == "BPE" and tj["normalizer"] is None
        self.vocab = m["vocab"]
        self.inv = {i: t for t, i in self.vocab.items()}
        self.ranks = {tuple(mm.split(" ")) if isinstance(mm, str) else tuple(mm): r for r, mm in enumerate(m["merges"])}
        self.added = {a["content"]: a["id"] for a in tj["added_tokens"]}
        for c, i in self.added.items():
            self.inv[i] = c
        self.special = {a["id"] for a in tj["added_tokens"] if a["special"]}
        self.pat = regex.compile(load_split_pattern(tj))
        self.added_pat = regex.compile("|".join(regex.escape(a) for a in sorted(self.added, key=len, reverse=True))) if self.added else None
        self.cache = {}

    def _bpe(self, word):
        """word: byte-level unicode string -> list of token strings."""
        parts = list(word)
        while len(parts) > 1:
            best, best_i = None, -1
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, best_i = r, i
            if best is None:
                break
            a, b = parts[best_i], parts[best_i + 1]
            # merge every occurrence of this pair, left to right (as HF's word merge does)
            out, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        return parts

    def encode_ordinary(self, text):
        ids = []
        for piece in self.pat.findall(text):
            got = self.cache.get(piece)
            if got is None:
                word = "".join(BYTE_TO_UNI[b] for b in piece.encode("utf-8"))
                got = [self.vocab[t] for t in self._bpe(word)]
                if len(self.cache) < 500000:
                    self.cache[piece] = got
            ids.extend(got)
        return ids

    def encode(self, text):
        """Added tokens (e.g. <|endoftext|>) are matched whole first, as HF does."""
        if self.added_pat is None:
            return self.encode_ordinary(text)
        ids, pos = [], 0
        for m in self.added_pat.finditer(text):
            ids.extend(self.encode_ordinary(text[pos:m.start()]))
            ids.append(self.added[m.group(0)])
            pos = m.end()
        ids.extend(self.encode_ordinary(text[pos:]))
        return ids

    def decode(self, ids, skip_special=False):
        out = bytearray()
        for i in ids:
            t = self.inv[i]
            if i in self.added.values() and t in self.added:
                if skip_special and i in self.special:
                    continue
                out += t.encode("utf-8")
            else:
                out += bytes(UNI_TO_BYTE[c] for c in t)
        return out.decode("utf-8", errors="replace")
