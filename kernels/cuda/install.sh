#!/usr/bin/env bash
# Installs a CUDA 13.0 compiler, runtime, CCCL and cuBLAS from NVIDIA's PyPI wheels into a
# git-ignored prefix laid out like a regular CUDA toolkit (bin/, include/, lib64/, nvvm/), so
# that CMake's enable_language(CUDA) and find_package(CUDAToolkit) work without a GPU and
# without Debian's non-free archive. Idempotent: a second run checks a stamp and exits.
#
# The CUDA 12 wheels (nvidia-cuda-nvcc-cu12, every 12.x release) ship only ptxas and libnvvm,
# not the nvcc driver nor cicc; the CUDA 13 wheels split the compiler into nvidia-cuda-nvcc
# (nvcc, ptxas, fatbinary, nvlink), nvidia-nvvm (cicc, libnvvm) and nvidia-cuda-crt (crt
# headers), which together compile for sm_90 and sm_100. See
# docs/decisions/codec-cuda-toolchain.md.
#
# usage: kernels/cuda/install.sh [PREFIX]   (default: .cache/cuda/13.0 under the repository)
# prints the path of nvcc on success.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX="${1:-$ROOT/.cache/cuda/13.0}"

# Exact pins: one CUDA release (13.0) for every component.
PINS=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
  nvidia-cublas==13.0.2.14
  # CUDA 13 dropped libnvToolsExt, which CMake 3.25's FindCUDAToolkit still requires; the NVTX
  # library does not depend on the CUDA version.
  nvidia-nvtx-cu12==12.8.90
)
STAMP="$PREFIX/.installed"
WANT="$(printf '%s\n' "${PINS[@]}")"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$PREFIX/bin/nvcc" ]]; then
  echo "$PREFIX/bin/nvcc"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cuda-wheels.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

WHEELS="$ROOT/.cache/cuda/wheels"
mkdir -p "$WHEELS"
echo "cuda: fetching ${PINS[*]}" >&2
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 \
  --python-version 3.11 --dest "$WHEELS" "${PINS[@]}" >&2

rm -rf "$PREFIX.tmp"
mkdir -p "$PREFIX.tmp"
for pin in "${PINS[@]}"; do
  name="${pin%%==*}"
  version="${pin##*==}"
  wheel="$(ls "$WHEELS"/"${name//-/_}"-"$version"-*.whl | head -n1)"
  "$PYTHON" -m zipfile -e "$wheel" "$WORK/$name" >&2
  # Each wheel holds nvidia/<cu13|nvtx>/{bin,include,lib,nvvm,...}: merge them into one tree.
  for component in "$WORK/$name"/nvidia/*/; do
    cp -a "$component". "$PREFIX.tmp/"
  done
done

cd "$PREFIX.tmp"
chmod +x bin/* nvvm/bin/* 2>/dev/null || true
rm -f lib/__init__.py include/__init__.py __init__.py
mv lib lib64
ln -s lib64 lib
# Unversioned names for the linker (the wheels ship only the SONAMEs).
for so in lib64/lib*.so.[0-9]*; do
  base="${so%%.so.*}.so"
  [[ -e "$base" ]] || ln -s "$(basename "$so")" "$base"
done
# CMake's CUDA compiler check links the static runtime by default; the wheels ship only
# the shared one, so the project selects CMAKE_CUDA_RUNTIME_LIBRARY=Shared (see codec.mk).
cd "$ROOT"
printf '%s\n' "${PINS[@]}" >"$PREFIX.tmp/.installed"
rm -rf "$PREFIX"
mv "$PREFIX.tmp" "$PREFIX"
echo "$PREFIX/bin/nvcc"
