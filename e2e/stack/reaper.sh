#!/usr/bin/env bash
# Runs a command and ends it when the process that asked for it (PARENT) is gone,
# so a test stack leaves nothing behind even when its test process is SIGKILLed.
# Usage: reaper.sh PARENT_PID COMMAND [ARG...]
parent=$1
shift
child=""
stop() {
  kill -TERM "$child" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$child" 2>/dev/null
}
# A signal to the process group reaches the command too: do not signal it twice, wait for it
# for up to 30 s (the caller usually escalates to SIGKILL sooner) and exit with its status.
# The trap is set before the command starts, so a signal that comes early is not lost.
on_signal() {
  [ -n "$child" ] || exit 143
  for _ in $(seq 1 300); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$child" 2>/dev/null
  wait "$child"
  exit $?
}
trap on_signal TERM INT HUP
"$@" &
child=$!
while kill -0 "$child" 2>/dev/null; do
  if ! kill -0 "$parent" 2>/dev/null; then
    stop
    exit 137
  fi
  sleep 0.5 &
  wait $!
done
wait "$child"
