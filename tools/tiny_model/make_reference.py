#!/usr/bin/python3
"""Computes models/olmo2-tiny/reference.json: what a runtime that widens the shipped BF16
weights to float32 and computes in float32 must reproduce.

    /usr/bin/python3 tools/tiny_model/make_reference.py [MODEL_DIR]   (default models/olmo2-tiny)

Everything is computed by the independent PyTorch model tools/golden/olmo2_reference.py
(float32, one thread) from models/olmo2-tiny/{config.json, model.safetensors, tokenizer.json};
the text is models/olmo2-tiny/heldout.txt as shipped. Takes a few minutes.

(a) Held-out perplexity. ids = tokenize(heldout.txt) (added tokens such as <|endoftext|>
    matched first, no BOS). Windows: ids[k*N:(k+1)*N] for k = 0..floor(len(ids)/N)-1, with
    N = 256; the tail shorter than N is dropped. Each window is run on its own from position
    0 with an empty cache; position j predicts token j+1 for j = 0..N-2, so each window
    contributes N-1 predicted tokens (its first token is predicted from nothing and not
    scored). With p_j = softmax(logits_j) over the whole vocabulary,
        NLL = mean over all windows and j of -log p_j[ids[k*N + j + 1]]
        ppl = exp(NLL).
    Logits are float32; the log-softmax and the mean are taken in float64.
    "all_with_tail" also scores the last, shorter window (L tokens, L-1 predicted) the same
    way. The same over ids[:4096] only (16 windows, 4080 predicted tokens) for a fast test.
(b) For each prompt: its ids (no BOS), then 32 greedy tokens (argmax of float32 logits;
    ties -> lowest id), prefill of the prompt then one token at a time with the KV cache;
    the generated ids and their decoded text. Also the first 8 logits at the last prompt
    position of the first prompt.
"""
import json
import math
import os
import re
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "golden"))
import bpe  # noqa: E402
import olmo2_reference as ref  # noqa: E402
from train import load_safetensors_any  # noqa: E402  (BF16 -> f32 widening, exact)

MODEL_DIR = os.path.join(ROOT, "models", "olmo2-tiny")
N = 256
FAST_TOKENS = 4096
GEN = 32
PROMPTS = ["Language modeling is ", "The jury said", "In the morning", "He was"]


def window_ppl(model, ids, n, tail=False):
    """tail: also score the last, shorter window (when it has >= 2 tokens)."""
    bounds = [(k * n, (k + 1) * n) for k in range(len(ids) // n)]
    if tail and len(ids) - len(bounds) * n >= 2:
        bounds.append((len(bounds) * n, len(ids)))
    tot, cnt = 0.0, 0
    for a, b in bounds:
        w = torch.tensor(ids[a:b], dtype=torch.int64)
        logits = model.forward(w, None, 0)                        # [len, V] float32
        lp = torch.log_softmax(logits[:-1].double(), dim=-1)
        tot += -lp.gather(-1, w[1:, None]).sum().item()
        cnt += len(w) - 1
    return {"windows": len(bounds), "window_tokens": n, "predicted_tokens": cnt, "nll_sum": tot,
            "mean_nll": tot / cnt, "ppl": math.exp(tot / cnt)}


def greedy(model, ids, n_new):
    cache = model.new_cache()
    logits = model.forward(torch.tensor(ids, dtype=torch.int64), cache, 0)
    first_logits = logits[-1].clone()
    out, P, margin = [], len(ids), math.inf
    for _ in range(n_new):
        top2 = torch.topk(logits[-1], 2).values
        margin = min(margin, float(top2[0] - top2[1]))
        nxt = int(torch.argmax(logits[-1]))                       # first maximum = lowest id
        out.append(nxt)
        logits = model.forward(torch.tensor([nxt]), cache, P)
        P += 1
    return out, first_logits, margin


def main():
    global MODEL_DIR
    if len(sys.argv) > 1:
        MODEL_DIR = sys.argv[1]
    torch.set_num_threads(1)
    with open(os.path.join(MODEL_DIR, "config.json")) as f:
        cfg = json.load(f)
    weights = load_safetensors_any(os.path.join(MODEL_DIR, "model.safetensors"))
    model = ref.Olmo2(cfg, weights, torch.float32)
    tok = bpe.Tokenizer(os.path.join(MODEL_DIR, "tokenizer.json"))
    with open(os.path.join(MODEL_DIR, "heldout.txt"), encoding="utf-8", newline="") as f:
        text = f.read()
    ids = tok.encode(text)
    assert tok.decode(ids) == text

    out = {
        "model": "models/olmo2-tiny (model.safetensors BF16 widened to float32; float32 compute)",
        "computed_by": "tools/tiny_model/make_reference.py with tools/golden/olmo2_reference.py",
        "heldout": {
            "file": "models/olmo2-tiny/heldout.txt",
            "bytes": len(text.encode("utf-8")),
            "tokens": len(ids),
            "formula": (f"windows ids[k*{N}:(k+1)*{N}], k < floor(tokens/{N}) (tail dropped), each from "
                        f"position 0 with an empty cache; in each window positions 0..{N - 2} predict "
                        f"tokens 1..{N - 1}; ppl = exp(mean NLL over all predicted tokens), "
                        f"NLL = -log softmax(float32 logits)[target] (log-softmax and mean in float64); "
                        f"all_with_tail also scores the final shorter window (L tokens: L-1 predicted) "
                        f"the same way"),
        },
    }
    print(f"heldout.txt: {len(text)} chars, {len(ids)} tokens", flush=True)
    out["heldout"]["all"] = window_ppl(model, ids, N)
    print("all:", out["heldout"]["all"], flush=True)
    out["heldout"]["all_with_tail"] = window_ppl(model, ids, N, tail=True)
    print("all, with the tail window:", out["heldout"]["all_with_tail"], flush=True)
    out["heldout"]["first_4096_tokens"] = window_ppl(model, ids[:FAST_TOKENS], N)
    print("first 4096:", out["heldout"]["first_4096_tokens"], flush=True)

    gens = []
    for i, p in enumerate(PROMPTS):
        pid = tok.encode(p)
        new, first_logits, margin = greedy(model, pid, GEN)
        # the cached greedy path equals a full forward over prompt + continuation
        full = model.forward(torch.tensor(pid + new, dtype=torch.int64), None, 0)
        assert full[len(pid) - 1:-1].argmax(-1).tolist() == new
        g = {"prompt": p, "prompt_ids": pid, "greedy_ids": new, "greedy_text": tok.decode(new),
             "min_top1_top2_logit_margin": margin}   # how robust the argmax choices are
        if i == 0:
            g["last_prompt_position_logits_first8"] = [float(x) for x in first_logits[:8]]
        gens.append(g)
        print(repr(p), "->", repr(g["greedy_text"]), flush=True)
    out["greedy"] = {"new_tokens": GEN, "decoding": "argmax, ties to the lowest id; KV cache; no BOS",
                     "prompts": gens}
    text = json.dumps(out, indent=2)
    # lists of numbers on one line each
    text = re.sub(r"\[\s*([-0-9.e, \n]+?)\s*\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    json.loads(text)
    with open(os.path.join(MODEL_DIR, "reference.json"), "w") as f:
        f.write(text + "\n")
    print("wrote", os.path.join(MODEL_DIR, "reference.json"))


if __name__ == "__main__":
    main()
