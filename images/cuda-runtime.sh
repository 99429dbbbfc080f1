#!/usr/bin/env bash
# Lays out the CUDA runtime library of the GPU worker image from NVIDIA's PyPI wheel
# (CUDA_RUNTIME_WHEEL in images/versions.env, the same pin as kernels/cuda/install.sh, whose
# download it reuses), where nvidia/cuda images keep it:
#
#   OUT_DIR/usr/local/cuda/lib64/libcudart.so.13
#   OUT_DIR/usr/local/cuda/share/doc/cuda-runtime/License.txt   (NVIDIA's license, which allows
#                                                               redistributing the runtime)
#
# The driver (libcuda.so.1) is not in any image: the NVIDIA container runtime mounts the node's.
#
# usage: images/cuda-runtime.sh OUT_DIR WHEEL_CACHE_DIR...
set -euo pipefail
umask 022
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"
out="${1:?usage: images/cuda-runtime.sh OUT_DIR WHEEL_CACHE_DIR...}"
shift
name="${CUDA_RUNTIME_WHEEL%%==*}"
version="${CUDA_RUNTIME_WHEEL##*==}"
pattern="${name//-/_}-$version-*.whl"

find_wheel() {
  local dir w
  for dir in "$@"; do
    for w in "$dir"/$pattern; do
      if [[ -f "$w" ]]; then echo "$w" && return; fi
    done
  done
}
wheel="$(find_wheel "$@")"
if [[ -z "$wheel" ]]; then
  cache="${!#}"
  mkdir -p "$cache"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --python-version 3.11 \
    --dest "$cache" "$CUDA_RUNTIME_WHEEL" >&2
  wheel="$(find_wheel "$cache")"
fi
[[ -n "$wheel" ]] || { echo "cuda-runtime: no $pattern found or downloaded" >&2 && exit 1; }

tmp="$out.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/usr/local/cuda/lib64" "$tmp/usr/local/cuda/share/doc/cuda-runtime"
python3 - "$wheel" "$tmp" <<'EOF'
import re, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    libs = [n for n in names if re.fullmatch(r"nvidia/[^/]+/lib/libcudart\.so\.\d+", n)]
    lics = [n for n in names if re.fullmatch(r"[^/]+\.dist-info/licenses/License\.txt", n)]
    if len(libs) != 1 or len(lics) != 1:
        sys.exit(f"cuda-runtime: {wheel} has no single libcudart.so.N and License.txt")
    for member, dest in ((libs[0], "usr/local/cuda/lib64/"), (lics[0], "usr/local/cuda/share/doc/cuda-runtime/")):
        with open(f"{out}/{dest}{member.rsplit('/', 1)[1]}", "wb") as f:
            f.write(z.read(member))
EOF
rm -rf "$out"
mv "$tmp" "$out"
echo "cuda-runtime: $(basename "$out"/usr/local/cuda/lib64/libcudart.so.*) from $(basename "$wheel")"
