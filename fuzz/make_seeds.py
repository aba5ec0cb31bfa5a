#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ from the project's test data
(tests/data, models/): small, valid inputs in each harness's input format
(fuzz/<target>.c says it), so the fuzzer starts from files olmoc accepts.
Run from the source root: python3 fuzz/make_seeds.py. The output is
committed; rerunning it rewrites the same files."""
import collections
import json
import os
import shutil
import struct

OUT = "fuzz/corpus"


def target_dir(name):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- safetensors: header length (u64 LE), JSON header, data ----

def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the reference pads headers to 8 bytes
    return struct.pack("<Q", len(h)) + h + data


def f32(*xs):
    return struct.pack("<%df" % len(xs), *xs)


def seeds_safetensors():
    d = target_dir("safetensors")
    write(d, "single", safetensors([
        ("model.norm.weight", "F32", [4], f32(1, 2, 3, 4)),
        ("model.embed_tokens.weight", "BF16", [2, 3], bytes(range(12))),
        ("empty", "F16", [0, 5], b""),
        ("codes", "I8", [3], b"\x01\xff\x7f"),
        ("ids", "I32", [1], struct.pack("<i", 7)),
    ], metadata={"format": "pt"}))
    write(d, "scalar", safetensors([("x", "F32", [], f32(0.5))]))
    write(d, "empty", safetensors([]))
    shard1 = safetensors([("a", "F32", [2], f32(1, 2)), ("b", "F16", [1], b"\x00\x3c")])
    shard2 = safetensors([("c", "BF16", [2, 1], b"\x80\x3f\x00\x40")])
    index = json.dumps({"metadata": {"total_size": 14}, "weight_map": {
        "a": "model-1.safetensors", "b": "model-1.safetensors", "c": "model-2.safetensors"}})
    sep = b"\n--shard--\n"
    write(d, "index", index.encode() + sep + shard1 + sep + shard2)


# ---- config.json: the published configs and the test ones ----

def seeds_config():
    d = target_dir("config")
    for src in sorted(os.listdir("models")):
        path = os.path.join("models", src, "config.json")
        if os.path.exists(path):
            shutil.copy(path, os.path.join(d, src))
    for src in ("tiny", "dolma-tiny"):
        shutil.copy(os.path.join("tests/data", src, "config.json"), os.path.join(d, "test-" + src))


# ---- tokenizer.json (+ NUL + text): the hand-made tokenizer of test_tokenizer.c ----

def byte_chars():
    chars, nxt = [], 256
    for b in range(256):
        prints = ord("!") <= b <= ord("~") or 0xA1 <= b <= 0xAC or b >= 0xAE
        chars.append(chr(b if prints else nxt))
        nxt += not prints
    return chars


def tiny_tokenizer(pre_tokenizer):
    vocab = {c: b for b, c in enumerate(byte_chars())}
    for i, t in enumerate(["bc", "ab", "abc", "aa", "xy", "yz", "\u0120a", "\u0120t", "th", "\u0120th"]):
        vocab[t] = 256 + i
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
            "normalizer": None, "pre_tokenizer": pre_tokenizer, "post_processor": None,
            "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab,
                      "merges": ["b c", "a b", "ab c", "a a", "\u0120 a", "\u0120 t", "t h",
                                 "\u0120t h"]}}


def seeds_tokenizer():
    d = target_dir("tokenizer")
    variants, texts = {}, collections.defaultdict(list)
    for line in open("tests/data/tokenizer/variants.jsonl"):
        v = json.loads(line)
        if "pre_tokenizer" in v:
            variants[v["variant"]] = v["pre_tokenizer"]
        elif len(v["hex"]) <= 400 and len(texts[v["variant"]]) < 2:
            texts[v["variant"]].append(bytes.fromhex(v["hex"]))
    for name, pt in variants.items():
        tok = json.dumps(tiny_tokenizer(pt), separators=(",", ":")).encode()
        for i, text in enumerate(texts[name] + [b"abc aab xyz the"]):
            write(d, "%s-%d" % (name, i), tok + b"\0" + text)
    tok = tiny_tokenizer(variants["gpt2"])
    tok["added_tokens"] = [
        {"id": 300, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True},
        {"id": 301, "content": "abcd", "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": True, "special": False}]
    tok["model"]["ignore_merges"] = True
    tok["model"]["merges"] = [m.split(" ") for m in tok["model"]["merges"]]
    write(d, "added-ignore-merges", json.dumps(tok).encode() + b"\0abcd<|endoftext|>abc\xff x")


# ---- OLMo 2's tokenizer: texts of the golden file, a few of each kind ----

def seeds_tokenizer_dolma2():
    d = target_dir("tokenizer_dolma2")
    per_kind = collections.Counter()
    for line in open("tests/data/tokenizer/dolma2.jsonl"):
        v = json.loads(line)
        kind = v["name"].rsplit("-", 1)[0]
        text = bytes.fromhex(v["hex"])
        if len(text) <= 2048 and per_kind[kind] < 2:
            per_kind[kind] += 1
            write(d, v["name"], text)


# ---- IR text: every .ir of the tests ----

def seeds_ir():
    d = target_dir("ir")
    for folder in ("tests/data/ir", "tests/data/passes"):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".ir"):
                shutil.copy(os.path.join(folder, name),
                            os.path.join(d, os.path.basename(folder) + "-" + name))


# ---- chat: tokenizer_config.json + NUL + flags + role NUL content NUL ... ----

def seeds_chat():
    d = target_dir("chat")
    golden = json.load(open("tests/data/chat/golden.json"))
    for case in golden["cases"][:8]:
        config = {"bos_token": case["bos_token"], "eos_token": {"content": case["eos_token"]},
                  "chat_template": golden["template"]}
        conv = b"".join(m["role"].encode() + b"\0" + m["content"].encode() + b"\0"
                        for m in case["messages"])
        flags = b"\x01" if case["add_generation_prompt"] else b"\x00"
        write(d, case["name"], json.dumps(config).encode() + b"\0" + flags + conv)
    write(d, "tiny-model-config", open("models/olmo2-tiny/tokenizer_config.json", "rb").read()
          + b"\0\x01user\0Hi\0")
    listed = {"chat_template": [{"name": "tool_use", "template": "{{ x }}"},
                                {"name": "default", "template": golden["template"]}]}
    write(d, "template-list", json.dumps(listed).encode() + b"\0\x00system\0Be brief.\0user\0?\0")


# ---- program: a context byte, then edits of the harness's own program section ----

def seeds_program():
    d = target_dir("program")
    write(d, "as-compiled", b"")
    write(d, "context-16", b"\x10")

    def edit(pos, op, value):
        return struct.pack("<HB", pos, op) + value

    # an i64 set to -1, to 2^62, and nudged by +1 and -1 at spread positions
    write(d, "i64-minus-one", b"\x00" + edit(200, 2, struct.pack("<q", -1)))
    write(d, "i64-huge", b"\x00" + edit(400, 2, struct.pack("<q", 1 << 62)))
    write(d, "nudges", b"\x00" + b"".join(edit(p, 3, bytes([1 if p % 2 else 255])) for p in range(40, 1200, 97)))
    write(d, "u32-set", b"\x08" + edit(600, 1, struct.pack("<I", 3)))


if __name__ == "__main__":
    seeds_safetensors()
    seeds_config()
    seeds_tokenizer()
    seeds_tokenizer_dolma2()
    seeds_ir()
    seeds_chat()
    seeds_program()
