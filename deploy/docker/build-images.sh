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

# Each context is one tarball, unpacked by ADD with the owners it records
# (COPY would make every file root's, and several COPY layers in a row
# trip the legacy builder's "layer does not exist").
mkdir -p "$out/gantry" "$out/nats" "$out/runner-ctx"
pack() { # pack CONTEXT ROOTDIR BINARY...: ROOTDIR plus the binaries in /usr/bin
	ctx=$1 rootdir=$2
	shift 2
	mkdir -p "$rootdir/usr/bin"
	for b in "$@"; do cp "$b" "$rootdir/usr/bin/"; done
	tar -C "$rootdir" --numeric-owner -cf "$ctx/rootfs.tar" .
}
pack "$out/gantry" "$min" "$root/bin/gantry"
rm -f "$min/usr/bin/gantry"
pack "$out/nats" "$min" "$root/bin/nats-server"
rm -f "$min/usr/bin/nats-server"
# The runner's root is rebuilt only when missing or older than the script.
if [ ! -d "$out/rootfs" ] || [ "$root/deploy/docker/runner-rootfs.sh" -nt "$out/rootfs" ]; then
	"$root/deploy/docker/runner-rootfs.sh" "$out/rootfs"
fi
pack "$out/runner-ctx" "$out/rootfs" "$root/bin/gantry"

status=0
docker build -q -t "gantry:$tag" -f "$root/deploy/docker/gantry.Dockerfile" "$out/gantry" || status=$?
[ $status -eq 0 ] && { docker build -q -t "gantry-nats:$tag" -f "$root/deploy/docker/nats-server.Dockerfile" "$out/nats" || status=$?; }
[ $status -eq 0 ] && { docker build -q -t "gantry-runner:$tag" -f "$root/deploy/docker/runner.Dockerfile" "$out/runner-ctx" || status=$?; }
exit $status
