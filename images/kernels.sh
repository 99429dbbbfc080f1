#!/usr/bin/env bash
# Builds the worker's native addons (the codec and the engine, N-API) for an image, from the
# same kernels/ sources as `make kernels-build` but in a configuration of their own:
#
# - cpu: no CUDA backend, whether or not this machine has a CUDA compiler, so that the CPU
#   image is the same everywhere; cuda: the CUDA backends, for sm_90 and sm_100;
# - Node's headers from the pinned Node package (images/node.sh), not the machine's Node;
# - RUNPATH $ORIGIN (and /usr/local/cuda/lib64 for cuda) instead of this machine's paths, and
#   -ffile-prefix-map, so no path of the checkout or the build ends up in an image: the same
#   sources give the same bytes wherever they are built;
# - debug sections stripped (the symbol table stays, for stack traces): 6 MB less.
#
#   OUT_DIR/app/kernels/{covenant_codec.node,libcovenant_codec.so,covenant_engine.node}
#
# usage: images/kernels.sh cpu|cuda NODE_INCLUDE_DIR BUILD_DIR OUT_DIR [CMAKE_FLAG...]
# The build directory is kept: ninja rebuilds only what changed.
set -euo pipefail
umask 022
variant="${1:?usage: images/kernels.sh cpu|cuda NODE_INCLUDE_DIR BUILD_DIR OUT_DIR [CMAKE_FLAG...]}"
node_include="$(cd "${2:?}" && pwd)/node"
mkdir -p "${3:?}"
build="$(cd "$3" && pwd)"
out="${4:?}"
shift 4
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Where the checkout and the build directory are must not show, not even through the build ID
# (a hash over the debug sections that survives their stripping). The last matching map wins.
prefix_map="-ffile-prefix-map=$root=/src -ffile-prefix-map=$build=/build"

case "$variant" in
  cpu) flags=(-DCOVENANT_CUDA=OFF "-DCMAKE_INSTALL_RPATH=\$ORIGIN") ;;
  cuda) flags=(-DCOVENANT_CUDA=ON "-DCMAKE_INSTALL_RPATH=\$ORIGIN;/usr/local/cuda/lib64"
    "-DCMAKE_CUDA_FLAGS=-Xcompiler=${prefix_map// /,}") ;;
  *) echo "kernels: unknown variant $variant (cpu or cuda)" >&2 && exit 2 ;;
esac
[[ -f "$node_include/node_api.h" ]] || { echo "kernels: no node_api.h in $node_include" >&2 && exit 1; }

cmake -S "$root/kernels" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCOVENANT_NODE_INCLUDE="$node_include" -DNODE_API_HEADERS="$node_include" \
  -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON \
  "-DCMAKE_C_FLAGS=$prefix_map" "-DCMAKE_CXX_FLAGS=$prefix_map" \
  "${flags[@]}" "$@" >/dev/null
if [[ "$variant" == cuda ]] && ! grep -q '^COVENANT_CUDA:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "kernels: no CUDA compiler found for the cuda variant (make cuda-toolchain)" >&2
  exit 1
fi
cmake --build "$build" -j2 --target covenant_codec_node covenant_engine_node

rm -rf "$out"
mkdir -p "$out/app/kernels"
for f in codec/covenant_codec.node codec/libcovenant_codec.so engine/covenant_engine.node; do
  strip --strip-debug -o "$out/app/kernels/$(basename "$f")" "$build/$f"
done

# Each library may need only what the image has: the C and C++ runtimes, OpenMP, the codec's own
# library, and (cuda) the CUDA runtime. Anything else would fail at load time in the image.
libs='libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|libgomp|ld-linux-x86-64|libcovenant_codec'
[[ "$variant" == cuda ]] && libs+='|libcudart'
allowed="^($libs)\.so"
for f in "$out"/app/kernels/*; do
  readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r lib; do
    if ! [[ "$lib" =~ $allowed ]]; then
      echo "kernels: $(basename "$f") needs $lib, which the image does not have" >&2
      exit 1
    fi
  done
done
echo "kernels ($variant): $(cd "$out/app/kernels" && du -b -- * | awk '{printf "%s %d KiB  ", $2, $1 / 1024}')"
