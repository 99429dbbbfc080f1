#!/usr/bin/env python3
"""Independent PyTorch implementation of the engine's model, for cross-checking.

Reads an engine checkpoint (safetensors: weights plus AdamW moments), the first
batch x seq_len + 1 tokens of a token shard (docs/token-shards.md), and the engine's own
loss and gradients (`covenant-engine grads`), recomputes them with PyTorch autograd and
reports the relative loss difference and per-tensor gradient cosine similarity.

    covenant-engine train --preset llama3-tiny --shard S --steps 20 --save ckpt.safetensors
    covenant-engine grads --preset llama3-tiny --load ckpt.safetensors --shard S --out g.safetensors
    python3 kernels/engine/scripts/torch_reference.py --ckpt ckpt.safetensors --shard S \
        --grads g.safetensors [--dtype bfloat16] [--device cuda]

Exit status 0 when the loss agrees within --loss-rtol and every cosine is above --min-cos.
"""
import argparse
import json
import math
import struct
import sys

import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", f"{name}: dtype {info['dtype']}"
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + b : base + e]), dtype=torch.float32)
        tensors[name] = t.reshape(info["shape"]) if info["shape"] else t
    return tensors, meta


def read_shard(path, count):
    with open(path, "rb") as f:
        head = f.read(64)
        assert head[:8] == b"CVTOKENS", "not a token shard"
        version, width, vocab, _tok, n = struct.unpack("<IIIIQ", head[8:32])
        assert version == 1 and width in (2, 4)
        count = min(count, n)
        raw = f.read(count * width)
    dtype = torch.int16 if width == 2 else torch.int32
    t = torch.frombuffer(bytearray(raw), dtype=dtype).to(torch.int64)
    if width == 2:
        t = t & 0xFFFF
    return t


def rms_norm(x, w, eps):
    x32 = x.float()
    y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return (y * w.float()).to(x.dtype)


def rope(x, theta):
    # x: [B, T, heads, hd]; dimension i pairs with i + hd/2 ("rotate half").
    B, T, H, hd = x.shape
    half = hd // 2
    inv = theta ** (-torch.arange(0, half, dtype=torch.float64) * 2.0 / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos = ang.cos().to(x.device, torch.float32)[None, :, None, :]
    sin = ang.sin().to(x.device, torch.float32)[None, :, None, :]
    a, b = x[..., :half].float(), x[..., half:].float()
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1).to(x.dtype)


def forward(w, cfg, inputs, targets, dtype):
    C, H, KV = cfg["dim"], cfg["n_heads"], cfg["n_kv_heads"]
    hd = C // H
    eps, theta = cfg["norm_eps"], cfg["rope_theta"]
    B, T = inputs.shape
    x = w["model.embed_tokens.weight"][inputs].to(dtype)
    mask = torch.full((T, T), float("-inf"), device=x.device).triu(1)
    for l in range(cfg["n_layers"]):
        p = lambda n: w[f"model.layers.{l}.{n}"].to(dtype)  # noqa: E731
        h = rms_norm(x, p("input_layernorm.weight"), eps)
        q = (h @ p("self_attn.q_proj.weight").T).view(B, T, H, hd)
        k = (h @ p("self_attn.k_proj.weight").T).view(B, T, KV, hd)
        v = (h @ p("self_attn.v_proj.weight").T).view(B, T, KV, hd)
        q, k = rope(q, theta), rope(k, theta)
        rep = H // KV
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        s = torch.einsum("bthd,bshd->bhts", q.float(), k.float()) / math.sqrt(hd) + mask
        att = torch.softmax(s, dim=-1)
        y = torch.einsum("bhts,bshd->bthd", att, v.float()).to(dtype).reshape(B, T, C)
        x = x + y @ p("self_attn.o_proj.weight").T
        h = rms_norm(x, p("post_attention_layernorm.weight"), eps)
        g = h @ p("mlp.gate_proj.weight").T
        u = h @ p("mlp.up_proj.weight").T
        x = x + (torch.nn.functional.silu(g) * u) @ p("mlp.down_proj.weight").T
    x = rms_norm(x, w["model.norm.weight"].to(dtype), eps)
    logits = (x @ w["lm_head.weight"].to(dtype).T).float()
    return torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--shard", required=True)
    ap.add_argument("--grads", required=True, help="output of `covenant-engine grads`")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--loss-rtol", type=float, default=None)
    ap.add_argument("--min-cos", type=float, default=0.99)
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    rtol = args.loss_rtol if args.loss_rtol is not None else (1e-2 if dtype == torch.bfloat16 else 1e-4)

    tensors, meta = read_safetensors(args.ckpt)
    cfg = {k[len("config.") :]: float(v) if "." in v or "e" in v else int(v)
           for k, v in meta.items() if k.startswith("config.") and k != "config.name"}
    grads, gmeta = read_safetensors(args.grads)
    B, T = int(gmeta["batch"]), int(gmeta["seq_len"])
    engine_loss = float(gmeta["loss"])

    toks = read_shard(args.shard, B * (T + 1)).view(B, T + 1).to(args.device)
    w = {n: t.to(args.device).requires_grad_(True) for n, t in tensors.items() if not n.startswith("optimizer.")}
    loss = forward(w, cfg, toks[:, :-1], toks[:, 1:], dtype)
    loss.backward()

    rel = abs(loss.item() - engine_loss) / abs(engine_loss)
    print(f"loss: torch {loss.item():.6f}  engine {engine_loss:.6f}  relative difference {rel:.2e}")
    worst = 1.0
    for name, p in w.items():
        g_t = p.grad.flatten().double().cpu()
        g_e = grads["grad." + name].flatten().double()
        cos = torch.nn.functional.cosine_similarity(g_t, g_e, dim=0).item()
        worst = min(worst, cos)
        if cos < args.min_cos:
            print(f"  {name}: cosine {cos:.5f} BELOW {args.min_cos}")
    print(f"gradient cosine similarity: worst {worst:.6f} over {len(w)} tensors")
    ok = rel <= rtol and worst >= args.min_cos
    print("agree" if ok else "DISAGREE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
