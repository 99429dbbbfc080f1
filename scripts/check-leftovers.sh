#!/usr/bin/env bash
# Fails when a test left something behind: any process whose command line names a pinned
# binary in bin/ or a test stack's temporary directory, and, given a stamp file made when
# the run started (usage: check-leftovers.sh [STAMP]), any covenant-* temporary directory
# made since then. Directories are only listed, never removed: another run (a demo, a second
# checkout) may be using one.
set -uo pipefail
bin=${COVENANT_BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin}
stamp=${1:-}
tmp=${TMPDIR:-/tmp}
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
if [ -n "${COVENANT_KEEP_TMP:-}" ]; then
  echo "leftovers: temporary directories kept (COVENANT_KEEP_TMP)"
elif [ -n "$stamp" ] && [ -e "$stamp" ]; then
  dirs=0
  while IFS= read -r dir; do
    echo "left behind: directory $dir"
    dirs=1
  done < <(find "$tmp" -maxdepth 1 -name 'covenant-*' -newer "$stamp" 2>/dev/null)
  [ $dirs = 0 ] && echo "leftovers: no temporary directory left behind"
  [ $dirs = 0 ] || found=1
fi
exit $found
