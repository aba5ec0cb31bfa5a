#!/usr/bin/python3
"""Trains models/olmo2-tiny: an OLMo 2 (Olmo2ForCausalLM) of ~4M parameters on the
Brown corpus, on CPU, in at most one hour of wall time on 2 cores.

    nohup nice /usr/bin/python3 tools/tiny_model/train.py > tools/tiny_model/runs/train.log 2>&1 &

Steps (each resumable; rerunning continues from the last checkpoint in
tools/tiny_model/runs/ or, when training is done, only redoes the export):
  1. tokenize the 475 training documents (split.py) with models/olmo2-tiny/tokenizer.json,
     each document followed by <|endoftext|>, into one token stream;
  2. train on random windows of SEQ+1 tokens of that stream: AdamW, linear warmup then
     cosine decay, bf16 autocast matmuls (AMX) with f32 master weights; checkpoint every
     CKPT_EVERY_S seconds to runs/ckpt.pt (model, optimizer, step, RNG);
  3. evaluate in float32 (no autocast): train and held-out loss over non-overlapping
     windows, with the f32 weights and with the weights rounded to bf16;
  4. write models/olmo2-tiny/{config.json, generation_config.json, model.safetensors (BF16),
     heldout.txt} and runs/model_f32.safetensors, runs/summary.json.

The training model is the math of tools/golden/olmo2_reference.py, batched and without a
KV cache (plus dropout, active only while training); `--check` verifies that its float32
logits equal the reference's on the same weights.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "golden"))
import bpe  # noqa: E402
import olmo2_reference as ref  # noqa: E402
import split  # noqa: E402

MODEL_DIR = os.path.join(ROOT, "models", "olmo2-tiny")
RUNS = os.path.join(HERE, "runs")
EOS_ID = 4095

CONFIG = {
    "architectures": ["Olmo2ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": None,
    "eos_token_id": EOS_ID,
    "head_dim": 32,
    "hidden_act": "silu",
    "hidden_size": 256,
    "initializer_range": 0.02,
    "intermediate_size": 352,
    "max_position_embeddings": 512,
    "model_type": "olmo2",
    "num_attention_heads": 8,
    "num_hidden_layers": 4,
    "num_key_value_heads": 4,
    "pad_token_id": EOS_ID,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 10000,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.51.3",
    "use_cache": True,
    "vocab_size": 4096,
}

HP = {
    # The schedule runs on wall time: progress = elapsed / budget_s (evaluations and
    # checkpoints included), so the run ends at the budget with the LR decayed whatever the
    # machine's load; the number of steps is whatever fits.
    "budget_s": 3420,       # 57 min of training (+ ~2 min final evaluation and export)
    "tokens_per_step": 8192,
    "seq_schedule": [(0.0, 256), (0.7, 512)],   # from progress p on: windows of this length
    "lr": 3e-3,
    "min_lr_frac": 0.05,    # cosine over progress decays to lr * min_lr_frac
    "warmup": 100,          # steps of linear warmup
    "weight_decay": 0.1,    # on 2-D weights except the embedding
    "betas": (0.9, 0.95),
    "grad_clip": 1.0,
    "dropout": 0.1,         # on each sublayer's normed output and the embedding; training only
    "eval_windows": 64,     # held-out windows for the periodic (bf16 autocast) estimate
    "eval_seq": 256,        # final evaluation: non-overlapping windows of this many tokens
    "seed": 1234,
}
CKPT_EVERY_S = 300         # also the period of the held-out estimate
HELDOUT_PREFIX_DOCS = 8     # heldout.txt: the first 8 held-out documents (~100 KB) of 25


# ----------------------------------------------------------------------------- model
class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):   # Olmo2RMSNorm: computed in float32, weight after normalising
        x = x.float()
        return self.weight.float() * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class Linear(nn.Linear):
    """nn.Linear without bias. Float32 inference (no grad, no autocast) goes through oneDNN's
    f32 GEMM: the Debian torch's own f32 BLAS is the reference one (~3 GFLOPS here)."""

    def forward(self, x):
        if x.dtype == torch.float32 and not torch.is_grad_enabled() and not torch.is_autocast_cpu_enabled():
            shp = x.shape
            y = torch._C._nn.mkldnn_linear(x.reshape(-1, shp[-1]).contiguous().to_mkldnn(),
                                           self.weight.to_mkldnn(), None).to_dense()
            return y.view(*shp[:-1], y.shape[-1])
        return super().forward(x)


def lin(i, o):
    return Linear(i, o, bias=False)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.H, self.KVH, self.D = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        hs = c["hidden_size"]
        self.q_proj, self.k_proj = lin(hs, self.H * self.D), lin(hs, self.KVH * self.D)
        self.v_proj, self.o_proj = lin(hs, self.KVH * self.D), lin(self.H * self.D, hs)
        self.q_norm = RMSNorm(self.H * self.D, c["rms_norm_eps"])
        self.k_norm = RMSNorm(self.KVH * self.D, c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        H, KVH, D = self.H, self.KVH, self.D
        q = self.q_norm(self.q_proj(x)).view(B, T, H, D).transpose(1, 2)      # [B,H,T,D]
        k = self.k_norm(self.k_proj(x)).view(B, T, KVH, D).transpose(1, 2)    # [B,KVH,T,D]
        v = self.v_proj(x).view(B, T, KVH, D).transpose(1, 2)
        q = q * cos + ref.rotate_half(q) * sin
        k = k * cos + ref.rotate_half(k) * sin
        n_rep = H // KVH                                                     # GQA: head h uses kv head h // n_rep
        k = k[:, :, None].expand(B, KVH, n_rep, T, D).reshape(B, H, T, D)
        v = v[:, :, None].expand(B, KVH, n_rep, T, D).reshape(B, H, T, D)
        scores = (q @ k.transpose(-1, -2)).float() * D ** -0.5 + mask           # [B,H,T,T]
        probs = torch.softmax(scores, dim=-1)
        a = (probs.to(v.dtype) @ v).transpose(1, 2).reshape(B, T, H * D)
        return self.o_proj(a)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        hs, i = c["hidden_size"], c["intermediate_size"]
        self.gate_proj, self.up_proj, self.down_proj = lin(hs, i), lin(hs, i), lin(i, hs)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c, dropout):
        super().__init__()
        self.self_attn, self.mlp = Attention(c), MLP(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_feedforward_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.drop = nn.Dropout(dropout)

    def forward(self, x, cos, sin, mask):
        x = x + self.drop(self.post_attention_layernorm(self.self_attn(x, cos, sin, mask)))
        return x + self.drop(self.post_feedforward_layernorm(self.mlp(x)))


class Inner(nn.Module):
    def __init__(self, c, dropout):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c, dropout) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class Olmo2ForCausalLM(nn.Module):
    """Parameter names (state_dict keys) are exactly Hugging Face's."""

    def __init__(self, c, dropout=0.0):
        super().__init__()
        self.c = c
        self.model = Inner(c, dropout)
        self.lm_head = lin(c["hidden_size"], c["vocab_size"])
        self.drop = nn.Dropout(dropout)
        std = c["initializer_range"]
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, std)

    def forward(self, tokens):
        """tokens: int64 [B, T] at positions 0..T-1 -> logits [B, T, V] (float32)."""
        B, T = tokens.shape
        c = self.c
        cos, sin = ref.rope_cos_sin(torch.arange(T), c["head_dim"], c["rope_theta"], torch.float32)
        mask = torch.zeros(T, T)
        mask[torch.arange(T)[None, :] > torch.arange(T)[:, None]] = torch.finfo(torch.float32).min
        x = self.drop(self.model.embed_tokens(tokens))
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x)).float()


def n_params(c):
    hs, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    qd, kd = c["num_attention_heads"] * c["head_dim"], c["num_key_value_heads"] * c["head_dim"]
    layer = hs * qd * 2 + hs * kd * 2 + qd + kd + 3 * hs * i + 2 * hs
    return 2 * v * hs + c["num_hidden_layers"] * layer + hs


# ----------------------------------------------------------------------------- io
def save_safetensors_bf16(path, tensors, metadata=None):
    """Like olmo2_reference.save_safetensors, for BF16 tensors (raw bf16 bits, little endian)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].to(torch.bfloat16).contiguous()
        raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + b"".join(blobs))
    os.replace(path + ".tmp", path)


def load_safetensors_any(path):
    """Reads F32 or BF16 safetensors into float32 tensors (bf16 widened exactly)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for k, h in header.items():
        raw = data[8 + n + h["data_offsets"][0]:8 + n + h["data_offsets"][1]]
        if h["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif h["dtype"] == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        else:
            raise ValueError(f"{path}: {k}: unsupported dtype {h['dtype']}")
        out[k] = torch.from_numpy(arr.reshape(h["shape"]).copy())
    return out


def tokenize_docs(tok, docs):
    ids = []
    for d in docs:
        ids.extend(tok.encode(d["text"]))
        ids.append(EOS_ID)
    return torch.tensor(ids, dtype=torch.int64)


def heldout_text(held_docs):
    """The text of heldout.txt: documents each followed by <|endoftext|>, so that tokenizing it
    (added tokens matched first) gives exactly the token stream the model was trained on."""
    return "".join(d["text"] + split.EOS for d in held_docs)


# ----------------------------------------------------------------------------- eval
@torch.no_grad()
def window_nll(model, stream, n, autocast=False, max_windows=None, batch=8):
    """Non-overlapping windows of exactly n tokens (a shorter tail is dropped); in each,
    positions 1..n-1 are predicted from the tokens before them in the window.
    Returns (sum of NLL, number of predicted tokens)."""
    model.eval()
    nw = len(stream) // n
    if max_windows is not None:
        nw = min(nw, max_windows)
    w = stream[:nw * n].view(nw, n)
    tot, cnt = 0.0, 0
    for i in range(0, nw, batch):
        xb = w[i:i + batch]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model(xb)
        lp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
        nll = -lp.gather(-1, xb[:, 1:, None]).squeeze(-1)
        tot += nll.sum().item()
        cnt += nll.numel()
    model.train()
    return tot, cnt


# ----------------------------------------------------------------------------- check
def check_against_reference():
    """Float32 logits of this training model == olmo2_reference.Olmo2 on the same weights."""
    torch.manual_seed(0)
    c = dict(CONFIG)
    m = Olmo2ForCausalLM(c)
    with torch.no_grad():                     # trained-like scales, non-trivial norms
        for name, p in m.named_parameters():
            p.copy_(1 + 0.2 * torch.randn_like(p) if p.dim() == 1 else p * 5)
    w = {k: v.detach().clone() for k, v in m.state_dict().items()}
    r = ref.Olmo2(c, w, torch.float32)
    tokens = torch.randint(0, c["vocab_size"], (2, 40))
    m.eval()
    with torch.no_grad():
        got = m(tokens)
    worst = 0.0
    for b in range(2):
        want = r.forward(tokens[b])
        worst = max(worst, (got[b] - want).abs().max().item())
        cache = r.new_cache()                   # and the KV-cache path
        pre = r.forward(tokens[b, :30], cache, 0)
        dec = torch.cat([r.forward(tokens[b, P:P + 1], cache, P) for P in range(30, 40)])
        worst = max(worst, (got[b] - torch.cat([pre, dec])).abs().max().item())
    scale = got.abs().max().item()
    print(f"check: training model vs olmo2_reference (f32): max |diff| {worst:.2e} (max |logit| {scale:.2f})")
    assert worst < 1e-5 * max(1.0, scale), worst
    return worst


# ----------------------------------------------------------------------------- train
def lr_at(step, progress):
    warm = min(1.0, (step + 1) / HP["warmup"])
    p = min(1.0, progress)
    return HP["lr"] * warm * (HP["min_lr_frac"] + (1 - HP["min_lr_frac"]) * 0.5 * (1 + math.cos(math.pi * p)))


def seq_at(progress):
    return [s for p0, s in HP["seq_schedule"] if progress >= p0][-1]


def make_optimizer(model):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() == 2 and "embed_tokens" not in name else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": HP["weight_decay"]},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=HP["lr"], betas=HP["betas"], eps=1e-8)


def save_ckpt(path, model, opt, step, elapsed, n_tokens, log):
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed": elapsed,
                "tokens": n_tokens,
                "rng": torch.get_rng_state(), "log": log, "hp": HP, "config": CONFIG}, path + ".tmp")
    os.replace(path + ".tmp", path)


def train(model, train_ids, held_ids, ckpt_path):
    opt = make_optimizer(model)
    step, elapsed, n_tokens, log = 0, 0.0, 0, []
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        assert ck["hp"] == HP and ck["config"] == CONFIG, "checkpoint from other settings: remove runs/"
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        torch.set_rng_state(ck["rng"])
        step, elapsed, n_tokens, log = ck["step"], ck["elapsed"], ck["tokens"], ck["log"]
        print(f"resumed at step {step} ({elapsed / 60:.1f} min trained)", flush=True)
    budget = HP["budget_s"]
    model.train()
    t_ref = time.time() - elapsed            # elapsed == time.time() - t_ref from here on
    t_last_eval = time.time()
    loss_acc, n_acc, tok_acc, t_prev = 0.0, 0, 0, time.time()
    while True:
        progress = (time.time() - t_ref) / budget
        if progress >= 1.0:
            break
        S = seq_at(progress)
        B = HP["tokens_per_step"] // S
        starts = torch.randint(0, len(train_ids) - S - 1, (B,))
        batch = torch.stack([train_ids[s:s + S + 1] for s in starts.tolist()])
        lr = lr_at(step, progress)
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), HP["grad_clip"])
        opt.step()
        step += 1
        n_tokens += B * S
        loss_acc += loss.item()
        n_acc += 1
        tok_acc += B * S
        if step % 25 == 0:
            el = time.time() - t_ref
            print(f"step {step:5d}  loss {loss_acc / n_acc:.4f}  lr {lr:.2e}  seq {S}  gnorm {gn:.2f}  "
                  f"{tok_acc / (time.time() - t_prev):.0f} tok/s  {el / 60:.1f} min  "
                  f"epochs {n_tokens / len(train_ids):.2f}", flush=True)
            log.append({"step": step, "loss": loss_acc / n_acc, "lr": lr, "seq": S, "elapsed": el,
                        "tokens": n_tokens})
            loss_acc, n_acc, tok_acc, t_prev = 0.0, 0, 0, time.time()
        if time.time() - t_last_eval > CKPT_EVERY_S:
            t_e = time.time()
            s, n = window_nll(model, held_ids, HP["eval_seq"], autocast=True, max_windows=HP["eval_windows"])
            print(f"  eval step {step}: held-out loss {s / n:.4f} (ppl {math.exp(s / n):.1f}; first "
                  f"{HP['eval_windows']} windows of {HP['eval_seq']}, bf16 autocast) [{time.time() - t_e:.0f} s]",
                  flush=True)
            log.append({"step": step, "heldout_loss_estimate": s / n, "elapsed": time.time() - t_ref})
            save_ckpt(ckpt_path, model, opt, step, time.time() - t_ref, n_tokens, log)
            t_last_eval = time.time()
            tok_acc, t_prev, loss_acc, n_acc = 0, time.time(), 0.0, 0
    elapsed = time.time() - t_ref
    save_ckpt(ckpt_path, model, opt, step, elapsed, n_tokens, log)
    return step, elapsed, n_tokens, log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="only check the model against olmo2_reference")
    ap.add_argument("--budget", type=float, help="override the training budget in seconds (pilot runs)")
    ap.add_argument("--runs", default=RUNS, help="checkpoint/output folder")
    ap.add_argument("--no-export", action="store_true", help="do not write models/olmo2-tiny")
    args = ap.parse_args()
    torch.set_num_threads(2)
    check_against_reference()
    if args.check:
        return
    if args.budget:
        HP["budget_s"] = args.budget
    torch.manual_seed(HP["seed"])
    os.makedirs(args.runs, exist_ok=True)

    t0 = time.time()
    train_docs, held_docs = split.load_split()
    tok = bpe.Tokenizer(os.path.join(MODEL_DIR, "tokenizer.json"))
    assert tok.added[split.EOS] == EOS_ID and len(tok.inv) == CONFIG["vocab_size"]
    train_ids = tokenize_docs(tok, train_docs)
    held_ids = tokenize_docs(tok, held_docs)
    assert torch.equal(held_ids, torch.tensor(tok.encode(heldout_text(held_docs))))
    print(f"tokens: train {len(train_ids)}  held-out {len(held_ids)}  ({time.time() - t0:.0f} s)")
    P = n_params(CONFIG)
    print(f"model: {P} parameters = {2 * P} bytes in bf16; hp {HP}", flush=True)

    model = Olmo2ForCausalLM(CONFIG, HP["dropout"])
    assert sum(p.numel() for p in model.parameters()) == P
    step, elapsed, n_tokens, log = train(model, train_ids, held_ids, os.path.join(args.runs, "ckpt.pt"))
    print(f"trained {step} steps in {elapsed / 60:.1f} min ({n_tokens} tokens, "
          f"{n_tokens / len(train_ids):.2f} epochs)", flush=True)

    # final evaluation in float32, dropout off
    model.eval()
    w32 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    res = {"steps": step, "train_minutes": elapsed / 60, "tokens_seen": n_tokens,
           "epochs": n_tokens / len(train_ids), "train_tokens": len(train_ids),
           "heldout_tokens": len(held_ids), "params": P, "bf16_bytes": 2 * P, "hp": HP, "eval_seq": HP["eval_seq"]}
    for tag, w in (("f32", w32), ("bf16", {k: v.to(torch.bfloat16).float() for k, v in w32.items()})):
        model.load_state_dict(w)
        t_e = time.time()
        s, n = window_nll(model, held_ids, HP["eval_seq"])
        res[f"heldout_loss_{tag}"] = s / n
        res[f"heldout_ppl_{tag}"] = math.exp(s / n)
        s2, n2 = window_nll(model, train_ids, HP["eval_seq"], max_windows=128)   # a 32K-token sample
        res[f"train_loss_{tag}"] = s2 / n2
        res[f"train_ppl_{tag}"] = math.exp(s2 / n2)
        print(f"final ({tag} weights, f32 compute, windows of {HP['eval_seq']}): held-out loss {s / n:.4f} "
              f"ppl {math.exp(s / n):.2f} over {n} tokens; train loss {s2 / n2:.4f} ppl {math.exp(s2 / n2):.2f} "
              f"over {n2} tokens  [{time.time() - t_e:.0f} s]", flush=True)
    model.load_state_dict(w32)
    ref.save_safetensors(os.path.join(args.runs, "model_f32.safetensors"), w32, {"format": "pt"})
    with open(os.path.join(args.runs, "summary.json"), "w") as f:
        json.dump({"result": res, "log": log}, f, indent=1)

    if args.no_export:
        return
    os.makedirs(MODEL_DIR, exist_ok=True)
    with open(os.path.join(MODEL_DIR, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    gen = {"_from_model_config": False, "do_sample": True, "eos_token_id": EOS_ID, "pad_token_id": EOS_ID,
           "temperature": 0.7, "top_k": 40, "top_p": 0.95, "transformers_version": CONFIG["transformers_version"]}
    with open(os.path.join(MODEL_DIR, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")
    save_safetensors_bf16(os.path.join(MODEL_DIR, "model.safetensors"), w32, {"format": "pt"})
    back = load_safetensors_any(os.path.join(MODEL_DIR, "model.safetensors"))
    assert all(torch.equal(back[k], w32[k].to(torch.bfloat16).float()) for k in w32)
    with open(os.path.join(MODEL_DIR, "heldout.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(heldout_text(held_docs[:HELDOUT_PREFIX_DOCS]))
    print("wrote", MODEL_DIR, flush=True)


if __name__ == "__main__":
    main()
