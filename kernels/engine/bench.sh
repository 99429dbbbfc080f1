#!/usr/bin/env bash
# Training engine benchmarks (make bench-engine). CPU: llama3-tiny and llama3-20m training
# tokens/s at the machine's thread count, llama3-tiny also at one thread. GPU: llama3-150m and llama3-1b training steps of
# the engine next to PyTorch eager and torch.compile of the same model, when a GPU is present.
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
OMP_NUM_THREADS="$THREADS" "$BIN" bench --preset llama3-20m --batch 8 --seq 256 --steps 3
GPU_BENCH="${COVENANT_ENGINE_GPU_BENCH:-$ROOT/kernels/build/engine/cuda/engine_bench_gpu}"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && [[ -x "$GPU_BENCH" ]]; then
  echo "# $(nvidia-smi -L | head -n1)"
  for run in "llama3-150m 8 1024" "llama3-1b 4 1024"; do
    set -- $run
    "$GPU_BENCH" "$1" "$2" "$3" 10 || echo "$1 engine: failed"
    python3 "$ROOT/kernels/engine/scripts/torch_bench.py" --preset "$1" --batch "$2" --seq "$3" ||
      echo "$1 torch: not run (PyTorch with CUDA not available)"
  done
else
  echo "llama3-150m, llama3-1b (engine GPU, PyTorch eager, torch.compile): not run: no GPU lent"
fi
