"""The SparseLoCo codec written with PyTorch ops (torch.topk and friends), timed on one block
of Covenant-72B: the baseline the CUDA backend is compared with (kernels/BENCHMARKS.md).

usage: python3 kernels/codec/bench/torch_reference.py [--gather 20]
Prints one markdown table row. Needs torch with CUDA; prints "not run" without a GPU.
"""

import argparse
import math

HIDDEN, KV, FFN = 8192, 1024, 28672
SHAPES = [
    (HIDDEN, HIDDEN), (KV, HIDDEN), (KV, HIDDEN), (HIDDEN, HIDDEN),
    (FFN, HIDDEN), (FFN, HIDDEN), (HIDDEN, FFN), (HIDDEN,), (HIDDEN,),
]


def side(n):
    return next(d for d in range(min(n, 64), 0, -1) if n % d == 0)


def to_chunks(torch, x):
    """[rows, cols] -> [chunks, chunk_size], tiles in row-major order."""
    rows, cols = (1, x.numel()) if x.dim() == 1 else x.shape
    cr, cc = side(rows), side(cols)
    t = x.reshape(rows // cr, cr, cols // cc, cc).permute(0, 2, 1, 3)
    return t.reshape(-1, cr * cc), (rows, cols, cr, cc)


def from_chunks(torch, c, geo, shape):
    rows, cols, cr, cc = geo
    return c.reshape(rows // cr, cols // cc, cr, cc).permute(0, 2, 1, 3).reshape(shape)


def pack12(torch, idx):
    """Two 12-bit indices in three bytes."""
    i = idx.reshape(-1, 2).to(torch.int32)
    a, b = i[:, 0], i[:, 1]
    return torch.stack([a & 255, (a >> 8) | ((b & 15) << 4), b >> 4], 1).to(torch.uint8).reshape(-1)


def unpack12(torch, packed):
    p = packed.reshape(-1, 3).to(torch.int32)
    a = p[:, 0] | ((p[:, 1] & 15) << 8)
    b = (p[:, 1] >> 4) | (p[:, 2] << 4)
    return torch.stack([a, b], 1).reshape(-1).to(torch.int64)


def pack2(torch, codes):
    c = codes.reshape(-1, 4).to(torch.int32)
    return (c[:, 0] | (c[:, 1] << 2) | (c[:, 2] << 4) | (c[:, 3] << 6)).to(torch.uint8)


def unpack2(torch, packed):
    p = packed.to(torch.int32)
    return torch.stack([(p >> s) & 3 for s in (0, 2, 4, 6)], 1).reshape(-1).to(torch.int64)


def compress(torch, delta, error, beta, k):
    out = []
    for d, e in zip(delta, error):
        e.mul_(beta).add_(d)
        chunks, geo = to_chunks(torch, e)
        kk = min(k, chunks.shape[1])
        _, idx = torch.topk(chunks.abs(), kk, dim=1, sorted=False)
        idx, _ = idx.sort(dim=1)
        vals = chunks.gather(1, idx)
        shift = vals.mean()
        v = vals - shift
        sigma = v.norm() / math.sqrt(max(v.numel() - 1, 1))
        scale = 6 * sigma / 4
        codes = torch.clamp(torch.round(v / scale + 2), 0, 3).to(torch.int64)
        sums = torch.zeros(4, device=v.device, dtype=torch.float64).scatter_add_(0, codes.reshape(-1), v.reshape(-1).double())
        counts = torch.bincount(codes.reshape(-1), minlength=4)
        centre = (torch.arange(4, device=v.device) - 2).double() * scale.double()
        codebook = torch.where(counts > 0, sums / counts.clamp(min=1), centre).float()
        recon = codebook[codes] + shift
        chunks.scatter_add_(1, idx, -recon)
        e.copy_(from_chunks(torch, chunks, geo, e.shape))
        out.append((pack12(torch, idx) if idx.numel() % 2 == 0 else idx, pack2(torch, codes), shift, codebook, kk))
    return out


def aggregate(torch, payloads, theta, lr):
    for t, th in enumerate(theta):
        chunks, geo = to_chunks(torch, th)
        n, size = chunks.shape
        vals, idxs, norms = [], [], []
        for p in payloads:
            packed_idx, packed_codes, shift, codebook, kk = p[t]
            idx = unpack12(torch, packed_idx).reshape(n, kk)
            v = (codebook[unpack2(torch, packed_codes)[: n * kk]] + shift).reshape(n, kk)
            vals.append(v)
            idxs.append(idx)
            norms.append(v.norm())
        norms = torch.stack(norms)
        median = norms.median()
        total = torch.zeros_like(chunks)
        count = torch.zeros_like(chunks)
        for v, idx, nrm in zip(vals, idxs, norms):
            f = torch.clamp(median / nrm, max=1.0)
            total.scatter_add_(1, idx, v * f)
            count.scatter_add_(1, idx, torch.ones_like(v))
        mean = torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))
        new = chunks - lr * mean
        chunks.copy_(torch.where(torch.isfinite(new), new, chunks))
        th.copy_(from_chunks(torch, chunks, geo, th.shape))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gather", type=int, default=20)
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("| torch | not run: torch is not installed |")
        return
    if not torch.cuda.is_available():
        print("| torch | not run: no GPU |")
        return
    dev = torch.device("cuda")
    delta = [torch.randn(s, device=dev) * 0.01 for s in SHAPES]
    error = [torch.zeros(s, device=dev) for s in SHAPES]
    theta = [torch.zeros(s, device=dev) for s in SHAPES]
    params = sum(math.prod(s) for s in SHAPES)

    def timed(fn):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        r = fn()
        end.record()
        torch.cuda.synchronize()
        return r, start.elapsed_time(end)

    payloads, best_c = [], math.inf
    for _ in range(min(args.gather, 3)):
        p, ms = timed(lambda: compress(torch, delta, error, 0.95, 64))
        payloads.append(p)
        best_c = min(best_c, ms)
    payloads = [payloads[i % len(payloads)] for i in range(args.gather)]
    best_a = math.inf
    for _ in range(2):
        _, ms = timed(lambda: aggregate(torch, payloads, theta, 0.5))
        best_a = min(best_a, ms)
    gb = params * 4 / 1e9
    name = torch.cuda.get_device_name(0)
    print(f"| torch ({name}) | {params / 1e9:.3f}B | {best_c:.1f} ms | {gb / (best_c / 1e3):.1f} GB/s "
          f"| G={args.gather}: {best_a:.1f} ms | {gb / (best_a / 1e3):.1f} GB/s |")


if __name__ == "__main__":
    main()
