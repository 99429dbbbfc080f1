#!/usr/bin/env bash
# Codec benchmarks (`make bench-kernels`): CPU throughput over the shapes of a 1B-parameter
# model and payload bits per kept value; on a machine with a GPU, the CUDA backend beside the
# PyTorch version of the same algorithm and the memory-bandwidth floor, over one block of
# Covenant-72B. Results go to stdout as markdown rows for kernels/BENCHMARKS.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${KERNELS_BUILD:-$ROOT/kernels/build}"
THREADS="${BENCH_THREADS:-0}"

echo "## CPU: LLaMA-3 1B shapes, G = 20, top-k 64 ($(nproc) cores, threads=${THREADS:-all})"
"$BUILD/codec/codec_bench_cpu" --threads "$THREADS" --gather 20

echo
echo "## GPU: one block of Covenant-72B, G = 20"
if [[ -x "$BUILD/codec/codec_bench_gpu" ]]; then
  for format in 1 2; do "$BUILD/codec/codec_bench_gpu" --gather 20 --format "$format"; done
  python3 "$ROOT/kernels/codec/bench/torch_reference.py" --gather 20 || echo "| torch | not run |"
else
  echo "not run: the CUDA backend was not built"
fi
