#!/usr/bin/env bash
# Fails when a test left something behind: a server process still running, or a covenant-*
# temporary directory. Usage: check-leftovers.sh [STAMP]
#
# Under `make test`, COVENANT_TEST_RUN names the run: every process the tests start inherits
# it in its environment and every stack directory carries it in its name, so only what this
# run left counts (a demo or another checkout's tests may be running beside it). Without it,
# any process naming a pinned binary in bin/ or a stack directory counts, and, given a stamp
# file made when the run started, any covenant-* directory made since. Directories are only
# listed, never removed: another run may own them.
set -uo pipefail
bin=${COVENANT_BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin}
stamp=${1:-}
run=${COVENANT_TEST_RUN:-}
tmp=${TMPDIR:-/tmp}
found=0

ours() {
  local d=$1 cmd=$2
  if [ -n "$run" ]; then
    tr '\0' '\n' 2>/dev/null <"$d/environ" | grep -qx "COVENANT_TEST_RUN=$run"
    return
  fi
  case $cmd in
  "$bin"/* | *"/covenant-kube-"* | *"/covenant-nats-"* | *"/covenant-prometheus-"*) return 0 ;;
  esac
  return 1
}

for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  [ "$pid" = "$$" ] && continue
  [ "$pid" = "$PPID" ] && continue
  # this script's own pipelines
  [ "$(cut -d' ' -f4 "$d/stat" 2>/dev/null)" = "$$" ] && continue
  cmd=$( { tr "\0" " " <"$d/cmdline"; } 2>/dev/null) || continue
  [ -n "$cmd" ] || continue
  case $cmd in *check-leftovers.sh* | *"make "* | make) continue ;; esac
  if ours "$d" "$cmd"; then
    echo "left behind: pid $pid: ${cmd:0:160}"
    found=1
  fi
done
[ $found = 0 ] && echo "leftovers: no test process left behind"

if [ -n "${COVENANT_KEEP_TMP:-}" ]; then
  echo "leftovers: temporary directories kept (COVENANT_KEEP_TMP)"
else
  if [ -n "$run" ]; then
    dirs=$(find "$tmp" -maxdepth 1 -name "covenant-*-$run-*" 2>/dev/null)
  elif [ -n "$stamp" ] && [ -e "$stamp" ]; then
    dirs=$(find "$tmp" -maxdepth 1 -name 'covenant-*' -newer "$stamp" 2>/dev/null)
  else
    dirs=""
  fi
  if [ -n "$dirs" ]; then
    while IFS= read -r dir; do echo "left behind: directory $dir"; done <<<"$dirs"
    found=1
  else
    echo "leftovers: no temporary directory left behind"
  fi
fi

# Real nodes (e2e/stack/node.ts): each has a cgroup (under every hierarchy) and a bridge whose
# alias are both named after its directory, so they carry the run's id too. The node's mounts
# live in its private mount namespace, and so do its containers' network namespaces: they can
# outlive it only through a process, and every process of a node (kubelet, containerd, shims,
# containers, none of which a reaper or this run's environment may name) is in its cgroup.
node_glob="covenant-node-${run:+$run-}*"
node_found=0
for cg in /sys/fs/cgroup/*/$node_glob; do
  [ -d "$cg" ] || continue
  pids=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | tr '\n' ' ')
  echo "left behind: node cgroup $cg${pids:+ with processes $pids}"
  node_found=1
done
for alias in /sys/class/net/*/ifalias; do
  # shellcheck disable=SC2053
  [[ $(cat "$alias" 2>/dev/null) == $node_glob ]] || continue
  dev=${alias%/ifalias}
  echo "left behind: node bridge ${dev##*/} ($(cat "$alias"))"
  node_found=1
done
while read -r mountpoint; do
  echo "left behind: mount $mountpoint"
  node_found=1
done < <(awk -v prefix="$tmp/covenant-node-${run:+$run-}" 'index($5, prefix) == 1 { print $5 }' /proc/self/mountinfo)
# Nodes make no iptables rules (the kubelet's makeIPTablesUtilChains is off): a KUBE-* chain
# means a kubelet ran without the stack's settings. Not scoped to a run: no chain names one.
for save in iptables-save ip6tables-save; do
  command -v "$save" >/dev/null || continue
  for chain in $("$save" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\).*/\1/p'); do
    echo "left behind: $save chain $chain"
    node_found=1
  done
done
if [ $node_found = 0 ]; then
  echo "leftovers: no node cgroup, bridge, mount or iptables chain left behind"
else
  found=1
fi
exit $found
