#!/bin/sh
# build-images.sh: build gantry:dev, gantry-nats:dev and gantry-runner:dev
# from binaries built here (CGO_ENABLED=0) — no image is ever pulled. Each
# image gets a staged context of its own under .build/docker/ holding only
# what its Dockerfile copies, so a build sends megabytes, not the
# repository. Run from the repository root (make images does).
# IMAGE_TAG overrides the tag (default dev).
set -eu
tag="${IMAGE_TAG:-dev}"
root=$(pwd)
out="$root/.build/docker"
go=${GO:-go}
mkdir -p "$root/bin"
CGO_ENABLED=0 $go build -trimpath -o "$root/bin/gantry" ./services/cmd/gantry
# nats-server from the module the services already depend on (same version).
(cd services && CGO_ENABLED=0 $go build -trimpath -o "$root/bin/nats-server" github.com/nats-io/nats-server/v2)

rm -rf "$out/gantry" "$out/nats" "$out/runner-ctx"
# The minimal root of the two single-binary images: users, CA certificates,
# a world-writable /tmp and a /data the non-root user owns.
min="$out/rootfs-min"
rm -rf "$min"
mkdir -p "$min/etc/ssl/certs" "$min/data" "$min/home/gantry"
mkdir -m 1777 -p "$min/tmp"
cp -L /etc/ssl/certs/ca-certificates.crt "$min/etc/ssl/certs/"
printf 'root:x:0:0:root:/:/nonexistent\ngantry:x:65532:65532:gantry:/home/gantry:/nonexistent\n' >"$min/etc/passwd"
printf 'root:x:0:\ngantry:x:65532:\n' >"$min/etc/group"
chown -R 65532:65532 "$min/data" "$min/home/gantry" 2>/dev/null || true

mkdir -p "$out/gantry" "$out/nats" "$out/runner-ctx"
cp -a "$min" "$out/gantry/rootfs-min"
cp "$root/bin/gantry" "$out/gantry/gantry"
cp -a "$min" "$out/nats/rootfs-min"
cp "$root/bin/nats-server" "$out/nats/nats-server"
# The runner's root is rebuilt only when missing or older than the script.
if [ ! -d "$out/rootfs" ] || [ "$root/deploy/docker/runner-rootfs.sh" -nt "$out/rootfs" ]; then
	"$root/deploy/docker/runner-rootfs.sh" "$out/rootfs"
fi
mv "$out/rootfs" "$out/runner-ctx/rootfs"
cp "$root/bin/gantry" "$out/runner-ctx/gantry"

status=0
docker build -q -t "gantry:$tag" -f "$root/deploy/docker/gantry.Dockerfile" "$out/gantry" || status=$?
[ $status -eq 0 ] && { docker build -q -t "gantry-nats:$tag" -f "$root/deploy/docker/nats-server.Dockerfile" "$out/nats" || status=$?; }
[ $status -eq 0 ] && { docker build -q -t "gantry-runner:$tag" -f "$root/deploy/docker/runner.Dockerfile" "$out/runner-ctx" || status=$?; }
mv "$out/runner-ctx/rootfs" "$out/rootfs"
exit $status
