#!/usr/bin/env bash
# The host side of a test node (e2e/stack/node.ts): its private mount namespace, its cgroup tree
# and its bridge, and the one place that removes them. Everything a node's kubelet, containerd,
# shims and containers do is kept inside these three, so that removing them removes the node.
#
#   node-ns.sh hold DIR CGROUP BRIDGE
#       Starts a guard (below), then becomes the holder of a new private mount namespace: covers
#       /run, /var/lib and /var/log with DIR's own (the kubelet's device-plugin socket, the CRI's
#       network namespaces, runc's state and pod logs have fixed paths there), shows the kubelet
#       the kernel settings it would otherwise write to the host, writes its pid to DIR/ns.pid
#       and waits. On SIGTERM (stop, or its reaper when the test process died) it runs `cleanup`.
#       The namespace, and every mount made in it, ends with the last process in it.
#   node-ns.sh guard HOLDER CGROUP BRIDGE
#       In its own session, outside the namespace: runs `cleanup` once HOLDER has gone, however
#       it went. A SIGKILL of the holder's process group (what the stack does to servers still
#       running when the test process exits) cannot stop it, and the shims and containers, which
#       no reaper knows of, are in the node's cgroup for it to find.
#   node-ns.sh exec CGROUP HOLDER CMD...   runs CMD in CGROUP/runtime, in HOLDER's mount namespace
#   node-ns.sh kill CGROUP                 SIGKILLs every process of the node (a lost node)
#   node-ns.sh cleanup CGROUP BRIDGE       kill, then remove the cgroups and the bridge; exits 1
#                                          naming whatever it could not remove
set -uo pipefail

# Every cgroup v1 hierarchy (and the v2 one beside them) that holds CGROUP.
hierarchies() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h$1" ] && echo "${h%/}"
  done
}

node_pids() {
  local h
  for h in $(hierarchies "$1"); do
    find "$h/$1" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -u
}

# SIGKILL until no process is left: a process may fork while we kill, a shim may outlive its
# container briefly. Bounded: after 30 s the caller's leftover check names what survived.
kill_all() {
  local pids i
  for i in $(seq 1 300); do
    pids=$(node_pids "$1" | grep -vx "$$")
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
    sleep 0.1
  done
  return 1
}

# Children before parents; a cgroup whose last process just died may stay busy for a moment.
remove_cgroups() {
  local h i
  for i in $(seq 1 50); do
    for h in $(hierarchies "$1"); do
      find "$h/$1" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    [ -z "$(hierarchies "$1")" ] && return 0
    sleep 0.1
  done
  return 1
}

cleanup() {
  local cg=$1 bridge=$2 status=0
  kill_all "$cg" || { echo "node-ns: processes left in cgroup $cg: $(node_pids "$cg" | tr '\n' ' ')" >&2; status=1; }
  remove_cgroups "$cg" || { echo "node-ns: cgroups left: $(hierarchies "$cg" | sed "s|\$|/$cg|" | tr '\n' ' ')" >&2; status=1; }
  if ip link show "$bridge" >/dev/null 2>&1; then
    ip link delete "$bridge" 2>/dev/null || { echo "node-ns: bridge $bridge left" >&2; status=1; }
  fi
  return $status
}

# The values the kubelet insists on (it writes them unless protectKernelDefaults, then refuses to
# start when they differ). These settings are not namespaced: writing them would change the whole
# machine, e.g. kernel.panic_on_oops=1. The kubelet reads them from bind-mounted files instead.
kernel_defaults() {
  printf '%s\n' vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
    kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000
}

hold() {
  local dir=$1 cg=$2 bridge=$3
  setsid "$0" guard $$ "$cg" "$bridge" </dev/null &
  echo $! >"$dir/guard.pid"
  exec unshare --mount --propagation private -- "$0" enter "$dir" "$cg" "$bridge"
}

guard() {
  local holder=$1 cg=$2 bridge=$3
  while kill -0 "$holder" 2>/dev/null; do sleep 0.5; done
  cleanup "$cg" "$bridge"
}

enter() {
  local dir=$1 cg=$2 bridge=$3 setting path value sleeper=""
  # The sleep is in the namespace too: it must not keep it (and its mounts) alive after us.
  trap '[ -n "$sleeper" ] && kill -KILL "$sleeper" 2>/dev/null; cleanup "$cg" "$bridge"; exit $?' TERM INT HUP
  for path in run var-lib var-log sysctl; do mkdir -p "$dir/$path"; done
  mount --bind "$dir/run" /run &&
    mount --bind "$dir/var-lib" /var/lib &&
    mount --bind "$dir/var-log" /var/log || exit 1
  for setting in $(kernel_defaults); do
    path=${setting%%=*} value=${setting#*=}
    echo "$value" >"$dir/sysctl/${path//\//.}"
    mount --bind "$dir/sysctl/${path//\//.}" "/proc/sys/$path" || exit 1
  done
  echo $$ >"$dir/ns.pid"
  while :; do
    sleep 3600 &
    sleeper=$!
    wait $sleeper
  done
}

exec_in() {
  local cg=$1 holder=$2 h
  shift 2
  for h in $(hierarchies "$cg"); do
    echo $$ >"$h/$cg/runtime/cgroup.procs" || exit 1
  done
  exec nsenter --target "$holder" --mount -- "$@"
}

cmd=${1:-}
shift || true
case $cmd in
hold) hold "$@" ;;
enter) enter "$@" ;;
guard) guard "$@" ;;
exec) exec_in "$@" ;;
kill) kill_all "$1" ;;
cleanup) cleanup "$@" ;;
*)
  echo "usage: node-ns.sh hold|enter|guard|exec|kill|cleanup ..." >&2
  exit 2
  ;;
esac
