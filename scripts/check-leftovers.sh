#!/usr/bin/env bash
# Fails when a server started by the tests is still running: any process whose
# command line names a pinned binary in bin/ or a test stack's temporary directory.
set -uo pipefail
bin=${COVENANT_BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin}
found=0
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  [ "$pid" = "$$" ] && continue
  cmd=$( { tr "\0" " " <"$d/cmdline"; } 2>/dev/null) || continue
  case $cmd in
  "$bin"/* | *"/covenant-kube-"* | *"/covenant-nats-"* | *"/covenant-prometheus-"*)
    echo "left behind: pid $pid: ${cmd:0:160}"
    found=1
    ;;
  esac
done
[ $found = 0 ] && echo "leftovers: no test process left behind"
exit $found
