#!/usr/bin/env python3
"""Checks an engine checkpoint exported for Hugging Face against the engine itself.

Exports CKPT with `covenant-engine export --hf`, loads the directory with
`transformers.LlamaForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained`, and
compares:
  - logits on a fixed token batch with the engine's (`covenant-engine logits`): max abs
    difference within --tol (default 1e-4), and the cross-entropy of both;
  - the ids the exported tokenizer gives a fixed string with those of the engine's byte-level
    tokenizer (`covenant-engine tokenize`), and decoding back to the string;
  - the config values that matter numerically (rms_norm_eps, rope_theta, untied head).
Then the other direction, on small random models that transformers saves itself
(`save_pretrained`): fp32 import -> export gives every tensor back bit for bit and the engine's
logits of the imported checkpoint match transformers'; a bf16 model imports exactly widened;
a tied-embedding model is untied by copying; a rope_scaling model is refused naming the field.

    python3 kernels/engine/scripts/hf_check.py --cli kernels/build/engine/covenant-engine \\
        --ckpt ckpt.safetensors --work build/hf-check

Needs torch, transformers and safetensors (`make hf-check` installs them in build/hf-venv).
Exit status 0 when everything agrees.
"""
import argparse
import os
import struct
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

TEXT = (
    "Covenant trains one model across many peers.\n"
    "\tTabs, two  spaces, digits 12345, punctuation !?;:'\"<>{}[]\\ and UTF-8: "
    "naïve café, Ελληνικά, 日本語, 🙂.\r\nThe end."
)


def run(cmd):
    print("$", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(out.stdout)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        sys.exit(f"command failed with status {out.returncode}")
    return out.stdout


def read_shard(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"CVTOKENS", f"{path}: not a token shard"
    _version, width, _vocab, _tok, n = struct.unpack("<IIIIQ", data[8:32])
    fmt = {2: "H", 4: "I"}[width]
    return list(struct.unpack(f"<{n}{fmt}", data[64 : 64 + n * width]))


def token_batch(vocab, batch, seq):
    # Bytes of the text, repeated, then ids from the whole vocabulary (a fixed generator), so
    # rows the byte tokenizer never produces are exercised too.
    text = list(TEXT.encode("utf-8"))
    g = torch.Generator().manual_seed(1234)
    rows = []
    for b in range(batch):
        if b % 2 == 0:
            row = [text[(b * 7 + i) % len(text)] for i in range(seq)]
        else:
            row = torch.randint(0, vocab, (seq,), generator=g).tolist()
        rows.append(row)
    return rows


def engine_logits(a, ckpt, rows, name):
    tokens_path = os.path.join(a.work, name + "-tokens.txt")
    with open(tokens_path, "w") as f:
        for r in rows:
            f.write(" ".join(map(str, r)) + "\n")
    out = os.path.join(a.work, name + "-logits.safetensors")
    run([a.cli, "logits", ckpt, tokens_path, out])
    return load_file(out)["logits"]


def bits(t):
    return t.contiguous().view(torch.int32) if t.dtype == torch.float32 else t


def import_check(a):
    """transformers-saved models -> engine checkpoints (and back)."""
    ok = True
    shape = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=300, max_position_embeddings=64,
                 rms_norm_eps=1e-6, rope_theta=500000.0)
    rows = torch.randint(0, 300, (2, 32), generator=torch.Generator().manual_seed(7)).tolist()
    for case in ("fp32", "bf16", "tied", "rope_scaling"):
        torch.manual_seed(3)
        extra = {"tie_word_embeddings": case == "tied"}
        if case == "rope_scaling":
            extra["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 32}
        model = LlamaForCausalLM(LlamaConfig(**shape, **extra)).eval()
        with torch.no_grad():  # norm gains away from 1, so they are checked too
            for n, p in model.named_parameters():
                if n.endswith("norm.weight"):
                    p.add_(torch.randn_like(p) * 0.1)
        if case == "bf16":
            model = model.to(torch.bfloat16)
        src = os.path.join(a.work, f"import-{case}")
        model.save_pretrained(src)
        ckpt = os.path.join(a.work, f"import-{case}.safetensors")
        print("$", a.cli, "import", "--hf", src, ckpt, flush=True)
        res = subprocess.run([a.cli, "import", "--hf", src, ckpt], capture_output=True, text=True)
        sys.stdout.write(res.stdout + res.stderr)
        if case == "rope_scaling":
            # transformers 4 writes rope_scaling, 5 writes rope_parameters.rope_type.
            refused = res.returncode != 0 and any(
                f in res.stderr for f in ("rope_scaling is", "rope_parameters.rope_type is"))
            print(f"import {case}: refused, naming the field: {refused}")
            ok = ok and refused
            continue
        if res.returncode != 0:
            print(f"FAIL: import {case} failed")
            ok = False
            continue
        back = os.path.join(a.work, f"import-{case}-back")
        run([a.cli, "export", "--hf", back, "--tokenizer", "none", ckpt])
        theirs = load_file(os.path.join(src, "model.safetensors"))
        ours = load_file(os.path.join(back, "model.safetensors"))
        if case == "tied":
            theirs["lm_head.weight"] = theirs["model.embed_tokens.weight"]
        same = sorted(theirs) == sorted(ours) and all(
            torch.equal(bits(theirs[k].float()), bits(ours[k])) for k in theirs)
        with torch.no_grad():
            ref = model.float()(torch.tensor(rows)).logits
        diff = (engine_logits(a, ckpt, rows, f"import-{case}") - ref).abs().max().item()
        print(f"import {case}: {len(theirs)} tensors; export of the import equals the "
              f"original{' widened to fp32' if case == 'bf16' else ''} bit for bit: {same}; "
              f"max |engine - transformers| logit difference {diff:.3e}")
        if not same or not diff <= a.tol:
            print(f"FAIL: import {case}")
            ok = False
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cli", required=True, help="covenant-engine binary")
    ap.add_argument("--ckpt", required=True, help="engine checkpoint (or worker checkpoint)")
    ap.add_argument("--run-config", help="run.json, for a worker checkpoint")
    ap.add_argument("--work", required=True, help="scratch directory")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()

    os.makedirs(a.work, exist_ok=True)
    hf_dir = os.path.join(a.work, "hf")
    extra = ["--run-config", a.run_config] if a.run_config else []
    run([a.cli, "export", "--hf", hf_dir, *extra, a.ckpt])

    t0 = time.time()
    model = LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model.eval()
    cfg = model.config
    print(
        f"transformers {__import__('transformers').__version__}, torch {torch.__version__}: "
        f"loaded in {time.time() - t0:.1f} s; rms_norm_eps {cfg.rms_norm_eps}, "
        f"rope_theta {getattr(cfg, 'rope_theta', None) or cfg.rope_parameters.get('rope_theta')}, "
        f"tie_word_embeddings {cfg.tie_word_embeddings}, "
        f"attention {cfg._attn_implementation}"
    )
    ok = True
    if model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr():
        print("FAIL: lm_head is tied to embed_tokens")
        ok = False

    # Logits on a fixed batch.
    rows = token_batch(cfg.vocab_size, a.batch, a.seq)
    tokens_path = os.path.join(a.work, "tokens.txt")
    with open(tokens_path, "w") as f:
        for r in rows:
            f.write(" ".join(map(str, r)) + "\n")
    logits_path = os.path.join(a.work, "engine-logits.safetensors")
    run([a.cli, "logits", *extra, a.ckpt, tokens_path, logits_path])
    ours = load_file(logits_path)["logits"]
    with torch.no_grad():
        theirs = model(torch.tensor(rows)).logits.float()
    diff = (ours - theirs).abs()
    max_abs = diff.max().item()
    rel = max_abs / theirs.abs().max().item()
    argmax = (ours.argmax(-1) == theirs.argmax(-1)).float().mean().item()
    ids = torch.tensor(rows)
    ce = lambda lg: torch.nn.functional.cross_entropy(  # noqa: E731
        lg[:, :-1].reshape(-1, lg.shape[-1]), ids[:, 1:].reshape(-1)
    ).item()
    print(
        f"logits {list(ours.shape)}: max |engine - transformers| {max_abs:.3e} "
        f"(largest |logit| {theirs.abs().max().item():.3f}, relative {rel:.2e}), "
        f"argmax agreement {argmax * 100:.1f}%, next-token loss engine {ce(ours):.6f} "
        f"transformers {ce(theirs):.6f}"
    )
    if not max_abs <= a.tol:
        print(f"FAIL: max abs logit difference {max_abs:.3e} above {a.tol:g}")
        ok = False

    # Tokenizer: the exported one against the engine's byte-level tokenizer.
    text_path = os.path.join(a.work, "text.txt")
    with open(text_path, "wb") as f:
        f.write(TEXT.encode("utf-8"))
    shard_dir = os.path.join(a.work, "text-shard")
    run([a.cli, "tokenize", "--out", shard_dir, text_path])
    engine_ids = read_shard(os.path.join(shard_dir, "shard_00000.bin"))
    tok = AutoTokenizer.from_pretrained(hf_dir)
    hf_ids = tok(TEXT)["input_ids"] + [tok.eos_token_id]  # the engine ends every document
    decoded = tok.decode(hf_ids[:-1])
    same = hf_ids == engine_ids
    print(
        f"tokenizer {type(tok).__name__}: {len(TEXT.encode('utf-8'))} bytes -> {len(hf_ids)} ids "
        f"(with end-of-document {tok.eos_token_id}); equal to the engine's: {same}; "
        f"decodes back: {decoded == TEXT}"
    )
    if not same:
        first = next(i for i, (x, y) in enumerate(zip(hf_ids, engine_ids)) if x != y)
        print(f"FAIL: ids differ first at {first}: {hf_ids[first:first + 8]} vs "
              f"{engine_ids[first:first + 8]}")
        ok = False
    if decoded != TEXT:
        print("FAIL: decoding the ids does not give the text back")
        ok = False

    ok = import_check(a) and ok
    print("hf-check: " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
