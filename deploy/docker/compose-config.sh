#!/bin/sh
# compose-config.sh: generate what docker-compose.yml mounts and what must
# never be committed, under .compose/ (mode 0700): a throwaway CA and
# server certificate naming nats1..3 (tls/), one random password per NATS
# user (passwords/USER, handed to each service as a compose secret), the
# three nats-server configurations with bcrypt hashes only (nats/natsN.conf)
# and the example's git repository for the source worker (repos/hello).
# Existing certificates and passwords are kept, so running it again is
# harmless; delete .compose/ (make compose-down removes volumes, not it)
# for new ones. Run from the repository root with bin/gantry built.
set -eu
gantry=${GANTRY:-./bin/gantry}
dir=.compose
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
if [ ! -f "$dir/tls/ca.pem" ]; then
	"$gantry" dev certs --dir "$dir/tls" --host nats1,nats2,nats3,localhost >/dev/null
fi
routes="--route nats-route://nats1:6222 --route nats-route://nats2:6222 --route nats-route://nats3:6222"
agents="--agent hello-dev/hello-dev-1 --agent hello-dev/hello-dev-2 --agent hello-dev/hello-dev-3"
if [ ! -f "$dir/nats/nats1.conf" ]; then
	# One configuration with fresh passwords; the other two differ only in
	# their server name, so all three hold the same hashes.
	# shellcheck disable=SC2086
	"$gantry" nats config --out "$dir/nats" --server-name nats1 --listen 0.0.0.0:4222 --monitor 0.0.0.0:8222 \
		--store-dir /data --server-cert /etc/gantry/tls/server.pem --server-key /etc/gantry/tls/server-key.pem \
		--ca /etc/gantry/tls/ca.pem --cluster-name gantry --cluster-listen 0.0.0.0:6222 $routes $agents >/dev/null
	mv "$dir/nats/nats-server.conf" "$dir/nats/nats1.conf"
	rm -rf "$dir/passwords"
	mv "$dir/nats/passwords" "$dir/passwords"
	for n in 2 3; do
		sed "s/^server_name: \"nats1\"$/server_name: \"nats$n\"/" "$dir/nats/nats1.conf" >"$dir/nats/nats$n.conf"
	done
fi
# The containers run as uid 65532: they must read their files. (Where
# chown is not allowed, the files are made readable instead.)
if ! chown -R 65532:65532 "$dir/tls" "$dir/nats" "$dir/passwords" 2>/dev/null; then
	chmod -R a+rX "$dir/tls" "$dir/nats" "$dir/passwords"
fi
chmod 0755 "$dir"

# The gateway's token file and one admin token for the web UI and the API
# (printed once by gantry token create; kept here, mode 0600).
if [ ! -f "$dir/gateway/tokens.jsonl" ]; then
	mkdir -p "$dir/gateway"
	"$gantry" token create --role admin --name compose --file "$dir/gateway/tokens.jsonl" | head -n 1 >"$dir/gateway/admin.token"
	if ! chown -R 65532:65532 "$dir/gateway" 2>/dev/null; then
		chmod a+rx "$dir/gateway"
		chmod a+r "$dir/gateway/tokens.jsonl"
	fi
fi

# The example repository the pipeline checks out (relative "hello").
if [ ! -d "$dir/repos/hello/.git" ]; then
	rm -rf "$dir/repos/hello"
	mkdir -p "$dir/repos"
	cp -R examples/hello "$dir/repos/hello"
	git -C "$dir/repos/hello" init -q -b main
	git -C "$dir/repos/hello" add -A
	git -C "$dir/repos/hello" -c user.name=gantry -c user.email=gantry@localhost commit -q -m "hello example"
	chmod -R a+rX "$dir/repos"
fi
echo "compose configuration in $dir/"
