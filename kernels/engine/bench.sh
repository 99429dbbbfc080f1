#!/usr/bin/env bash
# Training engine benchmarks (make bench-engine). CPU: llama3-tiny training tokens/s at the
# machine's thread count and at one thread. GPU rows need a CUDA device and the GPU training
# step, which is not wired yet; they say so instead of printing a number.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${COVENANT_ENGINE_BIN:-$ROOT/kernels/build/engine/covenant-engine}"
if [[ ! -x "$BIN" ]]; then
  echo "bench-engine: $BIN not built; run make kernels-build" >&2
  exit 1
fi
THREADS="$(nproc)"
echo "# engine benchmarks on $(uname -m), $THREADS threads, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
OMP_NUM_THREADS="$THREADS" "$BIN" bench --preset llama3-tiny --batch 8 --seq 256 --steps 5
OMP_NUM_THREADS=1 "$BIN" bench --preset llama3-tiny --batch 8 --seq 256 --steps 3
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "GPU found ($(nvidia-smi -L | head -n1)); the GPU benchmark program is not written yet: llama3-150m / llama3-1b rows not run"
else
  echo "llama3-150m, llama3-1b (GPU, PyTorch eager, torch.compile): not run: no GPU lent"
fi
