#!/bin/sh
# compose-wait.sh: wait until the compose cluster is healthy: the three
# NATS nodes report JetStream healthy on their (loopback) monitoring ports,
# provisioning finished successfully and every service container runs.
set -eu
compose=${COMPOSE:-$(docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)}
deadline=$(( $(date +%s) + ${WAIT_SECONDS:-180} ))
fail() { echo "compose-wait: $*" >&2; $compose ps >&2 || true; exit 1; }
for port in 8222 8223 8224; do
	until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "NATS on 127.0.0.1:$port not healthy"
		sleep 1
	done
done
# provision is a one-shot: its container must have exited 0 (`ps -a`: compose
# v2 lists running containers only).
until [ "$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$($compose ps -a -q provision)" 2>/dev/null)" = "exited 0" ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "provisioning did not finish"
	sleep 1
done
for s in $($compose config --services); do
	[ "$s" = provision ] && continue
	for id in $($compose ps -q "$s"); do
		until [ "$(docker inspect -f '{{.State.Running}}' "$id")" = true ]; do
			[ "$(date +%s)" -lt "$deadline" ] || fail "service $s is not running"
			sleep 1
		done
	done
done
echo "compose cluster healthy: $($compose ps -q | wc -l) containers"
