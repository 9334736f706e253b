#!/bin/sh
# Start hello on the host's port (the agent's "port" label) in the background.
set -e
dir="${GANTRY_INSTALL_ROOT}/hello"
nohup "$dir/bin/hello" -addr "127.0.0.1:${GANTRY_LABEL_PORT}" >"$dir/hello.log" 2>&1 &
echo $! >"$dir/hello.pid"
echo "hello started on port ${GANTRY_LABEL_PORT} (pid $!)"
