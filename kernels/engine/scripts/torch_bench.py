#!/usr/bin/env python3
"""PyTorch baseline for `make bench-engine`: the engine's model (same shapes and layout as
scripts/torch_reference.py) trained with AdamW in bf16 autocast, eager and torch.compile,
on random tokens. Prints tokens/s and model FLOPs utilisation per mode.

    python3 kernels/engine/scripts/torch_bench.py --preset llama3-150m --batch 8 --seq 1024
"""
import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

def _load_presets():
    """vocab, dim, layers, heads, kv heads, ffn, theta of each preset, from the one table."""
    path = Path(__file__).resolve().parents[1] / "presets.json"
    table = json.loads(path.read_text())["presets"]
    return {
        p["name"]: (p["vocab"], p["hidden"], p["layers"], p["heads"], p["kvHeads"], p["ffn"], p["ropeTheta"])
        for p in table
    }


PRESETS = _load_presets()


class Block(torch.nn.Module):
    def __init__(self, C, H, KV, Fd):
        super().__init__()
        hd = C // H
        self.H, self.KV, self.hd = H, KV, hd
        self.n1 = torch.nn.RMSNorm(C, eps=1e-5)
        self.q = torch.nn.Linear(C, C, bias=False)
        self.k = torch.nn.Linear(C, KV * hd, bias=False)
        self.v = torch.nn.Linear(C, KV * hd, bias=False)
        self.o = torch.nn.Linear(C, C, bias=False)
        self.n2 = torch.nn.RMSNorm(C, eps=1e-5)
        self.gate = torch.nn.Linear(C, Fd, bias=False)
        self.up = torch.nn.Linear(C, Fd, bias=False)
        self.down = torch.nn.Linear(Fd, C, bias=False)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        h = self.n1(x)
        q = self.q(h).view(B, T, self.H, self.hd).transpose(1, 2)
        k = self.k(h).view(B, T, self.KV, self.hd).transpose(1, 2)
        v = self.v(h).view(B, T, self.KV, self.hd).transpose(1, 2)
        half = self.hd // 2

        def rot(t):
            a, b = t[..., :half], t[..., half:]
            return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)

        q, k = rot(q), rot(k)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.o(y.transpose(1, 2).reshape(B, T, C))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(torch.nn.Module):
    def __init__(self, V, C, L, H, KV, Fd, theta, T):
        super().__init__()
        self.emb = torch.nn.Embedding(V, C)
        self.blocks = torch.nn.ModuleList(Block(C, H, KV, Fd) for _ in range(L))
        self.norm = torch.nn.RMSNorm(C, eps=1e-5)
        self.head = torch.nn.Linear(C, V, bias=False)
        hd = C // H
        inv = theta ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd)
        ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None]
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)

    def forward(self, idx, tgt):
        x = self.emb(idx)
        for b in self.blocks:
            x = b(x, self.cos, self.sin)
        logits = self.head(self.norm(x)).float()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), tgt.view(-1))


def run(model, opt, idx, tgt, steps):
    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="llama3-150m", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    args = ap.parse_args()
    V, C, L, H, KV, Fd, theta = PRESETS[args.preset]
    params = 2 * V * C + C + L * (2 * C + 2 * C * C + 2 * C * (C // H) * KV + 3 * C * Fd)
    flops_per_token = 6 * params + 6 * L * args.seq * C
    idx = torch.randint(0, V, (args.batch, args.seq), device="cuda")
    tgt = torch.randint(0, V, (args.batch, args.seq), device="cuda")
    for mode in ("eager", "compile"):
        torch.manual_seed(0)
        model = Model(V, C, L, H, KV, Fd, theta, args.seq).cuda()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
        m = torch.compile(model) if mode == "compile" else model
        secs = run(m, opt, idx, tgt, args.steps)
        tok = args.batch * args.seq * args.steps / secs
        tf = flops_per_token * tok / 1e12
        print(f"{args.preset} torch {mode} batch {args.batch} seq {args.seq}: {tok:.0f} tokens/s, "
              f"{tf:.1f} TFLOP/s, MFU {100 * tf / args.peak_tflops:.1f}% of {args.peak_tflops:.0f}")
        del model, opt, m
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
