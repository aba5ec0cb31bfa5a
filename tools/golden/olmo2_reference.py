#!/usr/bin/python3
"""Independent PyTorch reference of OLMo 2 (Hugging Face Olmo2ForCausalLM) and
the script that makes tests/data/tiny/{config.json,model.safetensors,golden.safetensors}.

Written from transformers' models/olmo2/modeling_olmo2.py (eager attention path).
Everything is computed in float32, op for op like HF; only the consistency checks
additionally run the same code in float64.  Run with the Debian python (it has torch):

    /usr/bin/python3 tools/golden/olmo2_reference.py

The outputs are byte-identical from run to run (fixed seed, one thread).
"""
import hashlib
import json
import math
import os
import struct

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "data", "tiny")
SEED = 20241126

TINY_CONFIG = {
    "architectures": ["Olmo2ForCausalLM"],
    "model_type": "olmo2",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "intermediate_size": 128,
    "vocab_size": 256,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-06,
    "rope_theta": 500000,
    "rope_scaling": None,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "use_cache": True,
    "eos_token_id": 255,
    "pad_token_id": 254,
    "bos_token_id": None,
    "torch_dtype": "float32",
}


# ----------------------------------------------------------------------------- model
def rms_norm(x, w, eps):
    # Olmo2RMSNorm: upcast to f32 (no-op here), w * (x * rsqrt(mean(x^2) + eps)).
    # Note: weight multiplies AFTER normalisation, and there is no "1 +" offset.
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def rope_cos_sin(positions, head_dim, theta, dtype):
    # Olmo2RotaryEmbedding (rope_type "default"):
    # inv_freq = 1 / theta^(arange(0, d, 2)/d); freqs = pos * inv_freq; emb = cat(freqs, freqs)
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(dtype) / head_dim))
    freqs = positions.to(dtype)[:, None] * inv_freq[None, :]          # [T, d/2]
    emb = torch.cat((freqs, freqs), dim=-1)                           # [T, d]
    return emb.cos(), emb.sin()


def repeat_kv(x, n_rep):
    # [kvh, L, d] -> [kvh*n_rep, L, d]; query head h uses kv head h // n_rep
    # (HF: expand at a new dim 2 then reshape == repeat_interleave over heads).
    kvh, L, d = x.shape
    return x[:, None].expand(kvh, n_rep, L, d).reshape(kvh * n_rep, L, d)


class Olmo2:
    """Olmo2ForCausalLM forward for one sequence (batch 1, no padding)."""

    def __init__(self, cfg, weights, dtype=torch.float32):
        self.cfg = cfg
        self.w = {k: v.to(dtype) for k, v in weights.items()}
        self.dtype = dtype
        self.H = cfg["num_attention_heads"]
        self.KVH = cfg["num_key_value_heads"]
        self.D = cfg.get("head_dim") or cfg["hidden_size"] // self.H
        self.eps = cfg["rms_norm_eps"]

    def new_cache(self):
        # per layer: keys/values after k_norm + RoPE, [kv_heads, positions, head_dim]
        empty = torch.zeros(self.KVH, 0, self.D, dtype=self.dtype)
        return [[empty, empty] for _ in range(self.cfg["num_hidden_layers"])]

    def attention(self, i, x, cos, sin, cache, P):
        w, H, KVH, D, T = self.w, self.H, self.KVH, self.D, x.shape[0]
        p = f"model.layers.{i}.self_attn."
        # q_norm / k_norm act on the WHOLE projection (H*D resp. KVH*D wide), before the head split.
        q = rms_norm(x @ w[p + "q_proj.weight"].T, w[p + "q_norm.weight"], self.eps)
        k = rms_norm(x @ w[p + "k_proj.weight"].T, w[p + "k_norm.weight"], self.eps)
        v = x @ w[p + "v_proj.weight"].T
        q = q.view(T, H, D).transpose(0, 1)                             # [H, T, D]
        k = k.view(T, KVH, D).transpose(0, 1)                           # [KVH, T, D]
        v = v.view(T, KVH, D).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:                                           # append, then attend to all
            cache[i][0] = k = torch.cat((cache[i][0], k), dim=1)
            cache[i][1] = v = torch.cat((cache[i][1], v), dim=1)
        L = k.shape[1]                                                  # == P + T
        k, v = repeat_kv(k, H // KVH), repeat_kv(v, H // KVH)
        scores = (q @ k.transpose(1, 2)) * D ** -0.5                    # [H, T, L]
        # causal mask as HF builds it: 0 where key_pos <= query_pos, else finfo.min (added)
        qpos = torch.arange(P, P + T)[:, None]
        kpos = torch.arange(L)[None, :]
        mask = torch.zeros(T, L, dtype=self.dtype)
        mask[kpos > qpos] = torch.finfo(self.dtype).min
        # softmax in float32 as HF does (float64 when the whole model runs in float64)
        sm_dtype = torch.promote_types(self.dtype, torch.float32)
        probs = torch.softmax(scores + mask, dim=-1, dtype=sm_dtype).to(self.dtype)
        a = (probs @ v).transpose(0, 1).reshape(T, H * D)               # heads back to [T, H*D]
        return a @ w[p + "o_proj.weight"].T

    def mlp(self, i, x):
        w, p = self.w, f"model.layers.{i}.mlp."
        g = x @ w[p + "gate_proj.weight"].T
        u = x @ w[p + "up_proj.weight"].T
        return (torch.nn.functional.silu(g) * u) @ w[p + "down_proj.weight"].T

    def forward(self, tokens, cache=None, P=0):
        """tokens: int64 [T] at positions P..P+T-1. Returns logits [T, vocab]."""
        w, eps = self.w, self.eps
        x = w["model.embed_tokens.weight"][tokens]                       # no embedding scale
        cos, sin = rope_cos_sin(torch.arange(P, P + len(tokens)), self.D, self.cfg["rope_theta"], self.dtype)
        for i in range(self.cfg["num_hidden_layers"]):
            p = f"model.layers.{i}."
            # post-norm INSIDE the residual: x + norm(sublayer(x)); no pre-norm
            x = x + rms_norm(self.attention(i, x, cos, sin, cache, P), w[p + "post_attention_layernorm.weight"], eps)
            x = x + rms_norm(self.mlp(i, x), w[p + "post_feedforward_layernorm.weight"], eps)
        x = rms_norm(x, w["model.norm.weight"], eps)
        head = w["model.embed_tokens.weight"] if self.cfg["tie_word_embeddings"] else w["lm_head.weight"]
        return x @ head.T


# ------------------------------------------------------------------------ safetensors
_DTYPES = {torch.float32: "F32", torch.int32: "I32", torch.float64: "F64", torch.int64: "I64"}


def save_safetensors(path, tensors, metadata=None):
    """Writes the safetensors format by hand: u64 LE header length N, N bytes of JSON
    ({name: {dtype, shape, data_offsets:[begin,end]}} plus optional "__metadata__"),
    padded with spaces so N % 8 == 0, then the raw little-endian data, contiguous,
    in header order (names sorted)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + b"".join(blobs))


def load_safetensors(path):
    np_types = {"F32": "<f4", "I32": "<i4", "F64": "<f8", "I64": "<i8"}
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    return {k: torch.from_numpy(np.frombuffer(data[base + h["data_offsets"][0]:base + h["data_offsets"][1]],
                                              dtype=np_types[h["dtype"]]).reshape(h["shape"]).copy())
            for k, h in header.items()}


# ------------------------------------------------------------------------ tiny model
def make_weights(cfg, gen):
    """Random weights, fixed order. Projections ~ N(0, 1/fan_in) (std 1/sqrt(fan_in)),
    embedding ~ N(0,1), lm_head std 3/sqrt(hidden) (peaked logits), norms 1 + 0.1 N(0,1).
    v_proj is 20x smaller (std 0.05/sqrt(fan_in)): the attention output then has a mean
    square ~1e-4, so rms_norm_eps visibly matters (1e-5 instead of 1e-6 moves logits by
    ~0.05); the post-attention norm is scale-invariant otherwise, so nothing else changes."""
    Hd, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, KVH, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]

    def lin(out_f, in_f, gain=1.0):
        return torch.randn(out_f, in_f, generator=gen) * (gain / math.sqrt(in_f))

    def norm(n):
        return 1.0 + 0.1 * torch.randn(n, generator=gen)

    w = {"model.embed_tokens.weight": torch.randn(V, Hd, generator=gen)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = lin(H * D, Hd)
        w[p + "self_attn.k_proj.weight"] = lin(KVH * D, Hd)
        w[p + "self_attn.v_proj.weight"] = lin(KVH * D, Hd, gain=0.05)
        w[p + "self_attn.o_proj.weight"] = lin(Hd, H * D)
        w[p + "self_attn.q_norm.weight"] = norm(H * D)
        w[p + "self_attn.k_norm.weight"] = norm(KVH * D)
        w[p + "mlp.gate_proj.weight"] = lin(I, Hd)
        w[p + "mlp.up_proj.weight"] = lin(I, Hd)
        w[p + "mlp.down_proj.weight"] = lin(Hd, I)
        w[p + "post_attention_layernorm.weight"] = norm(Hd)
        w[p + "post_feedforward_layernorm.weight"] = norm(Hd)
    w["model.norm.weight"] = norm(Hd)
    w["lm_head.weight"] = lin(V, Hd, gain=3.0)
    return {k: v.float().contiguous() for k, v in w.items()}


def main():
    torch.set_num_threads(1)  # fixed reduction order -> byte-identical reruns
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    os.makedirs(OUT_DIR, exist_ok=True)

    with open(os.path.join(OUT_DIR, "config.json"), "w") as f:
        json.dump(TINY_CONFIG, f, indent=2)
        f.write("\n")
    with open(os.path.join(OUT_DIR, "config.json")) as f:
        cfg = json.load(f)                                   # the model is driven by the file

    weights = make_weights(cfg, gen)
    tokens = torch.randint(0, cfg["vocab_size"], (10,), generator=gen, dtype=torch.int64)
    n_prompt = 7

    model = Olmo2(cfg, weights, torch.float32)
    cache = model.new_cache()
    prefill = model.forward(tokens[:n_prompt], cache, P=0)                      # [7, V]
    decode = torch.cat([model.forward(tokens[P:P + 1], cache, P=P) for P in range(n_prompt, 10)])  # [3, V]
    cached = torch.cat([prefill, decode])

    # Check 1: the KV-cache path equals a full 10-token forward without cache.
    full = model.forward(tokens, None, P=0)
    d_cache = (cached - full).abs().max().item()
    print(f"cache vs full (f32): max abs diff {d_cache:.3e}")
    assert d_cache < 1e-5, d_cache

    # Check 2: the float32 result vs the same model in float64 (conditioning; guides test tolerances).
    full64 = Olmo2(cfg, weights, torch.float64).forward(tokens, None, P=0)
    d64 = (cached.double() - full64).abs().max().item()
    print(f"f32 vs f64:          max abs diff {d64:.3e}")
    assert d64 < 1e-4, d64

    # Check 3: every part matters -- the wrong eps, or any single norm weight reset to ones,
    # changes the logits by >> 1e-4.
    d = (Olmo2(dict(cfg, rms_norm_eps=1e-5), weights).forward(tokens) - full).abs().max().item()
    print(f"  rms_norm_eps 1e-5 instead of 1e-6 changes logits by {d:.3f}")
    assert d > 1e-2
    for name in ["self_attn.q_norm.weight", "post_attention_layernorm.weight", "post_feedforward_layernorm.weight"]:
        w2 = dict(weights)
        w2["model.layers.1." + name] = torch.ones_like(w2["model.layers.1." + name])
        d = (Olmo2(cfg, w2).forward(tokens) - full).abs().max().item()
        print(f"  norm weight {name} -> ones changes logits by {d:.3f}")
        assert d > 1e-2

    for name, t in (("prefill", prefill), ("decode", decode)):
        top = t.softmax(-1).max(-1).values
        print(f"{name}_logits: shape {list(t.shape)}, max |logit| {t.abs().max().item():.3f}, "
              f"std {t.std().item():.3f}, top-1 prob {top.min().item():.3f}..{top.max().item():.3f}")
    print("tokens:", tokens.tolist(), " argmax:", cached.argmax(-1).tolist())

    save_safetensors(os.path.join(OUT_DIR, "model.safetensors"), weights, {"format": "pt"})
    save_safetensors(os.path.join(OUT_DIR, "golden.safetensors"), {
        "tokens": tokens.to(torch.int32),
        "prefill_logits": prefill.float().contiguous(),
        "decode_logits": decode.float().contiguous(),
    })

    # Round trip: what we wrote is exactly what we computed with.
    back = load_safetensors(os.path.join(OUT_DIR, "model.safetensors"))
    assert back.keys() == weights.keys() and all(torch.equal(back[k], weights[k]) for k in back)
    g = load_safetensors(os.path.join(OUT_DIR, "golden.safetensors"))
    assert torch.equal(g["prefill_logits"], prefill) and torch.equal(g["decode_logits"], decode)
    for fn in ("config.json", "model.safetensors", "golden.safetensors"):
        with open(os.path.join(OUT_DIR, fn), "rb") as f:
            print(f"{hashlib.sha256(f.read()).hexdigest()}  tests/data/tiny/{fn}")


if __name__ == "__main__":
    main()
