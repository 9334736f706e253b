#!/bin/sh
# compose-demo.sh: run examples/hello through the compose cluster from the
# host, as the operator user over TLS on the loopback-published port of
# nats1 (the client fails over to the others). Exits non-zero unless the
# run succeeded.
set -eu
gantry=${GANTRY:-./bin/gantry}
export NATS_URL=tls://127.0.0.1:4222,tls://localhost:4223,tls://localhost:4224
export NATS_CA=.compose/tls/ca.pem NATS_USER=operator NATS_PASSWORD_FILE=.compose/passwords/operator
# Right after a node dies, JetStream requests time out until its streams'
# groups elect new leaders (seconds): the one-shot steps try again.
retry() {
	n=0
	until "$@"; do
		n=$((n + 1))
		[ $n -lt 10 ] || return 1
		echo "compose-demo: retrying in 3s: $*" >&2
		sleep 3
	done
}
retry "$gantry" pipeline apply -f examples/hello/pipeline.yaml
retry "$gantry" deploy group apply -f examples/hello/deploygroup.yaml
run=$("$gantry" run start hello -o json | sed -n 's/.*"run": *"\([^"]*\)".*/\1/p')
[ -n "$run" ] || { echo "compose-demo: no run started" >&2; exit 1; }
echo "run $run started"
status=0
timeout "${DEMO_TIMEOUT:-600}" "$gantry" run watch "$run" || status=$?
"$gantry" run show "$run" || true
"$gantry" deploy list --group hello-dev || true
if [ $status -ne 0 ]; then
	echo "compose-demo: run $run did not succeed (exit $status)" >&2
	exit $status
fi
echo "compose-demo: run $run succeeded on the cluster"
