#!/bin/sh
# Stop the running hello, if any.
pidfile="${GANTRY_INSTALL_ROOT}/hello/hello.pid"
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
kill "$pid" 2>/dev/null || true
for _ in 1 2 3 4 5 6 7 8 9 10; do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
kill -9 "$pid" 2>/dev/null || true
rm -f "$pidfile"
