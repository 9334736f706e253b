#!/bin/sh
# runner-rootfs.sh DIR: assemble the root filesystem of the gantry-runner
# image from this host's own files, because no base image can be pulled on
# the machines Gantry is built on. Build and test workers and deploy agents
# run shell commands (buildspecs, appspec hooks; the example builds Go
# code), so the image needs a shell, coreutils, git and the Go toolchain:
# each program is copied with the shared libraries `ldd` lists for it, plus
# git's helpers, /usr/local/go (without tests and docs) and the CA
# certificates. The gantry binary itself is copied by the Dockerfile.
# The result is as reproducible as the host: rebuild it after a host upgrade.
set -eu
dir="${1:?usage: runner-rootfs.sh DIR}"
goroot="${GOROOT:-$(go env GOROOT)}"
rm -rf "$dir"
mkdir -p "$dir/bin" "$dir/usr/bin" "$dir/etc/ssl/certs" "$dir/usr/local" "$dir/home/gantry" "$dir/work" "$dir/agent" "$dir/repos"
mkdir -m 1777 -p "$dir/tmp"

# Programs buildspecs and hooks commonly call, from wherever the host has them.
progs="sh dash bash cat cp mv rm ln mkdir rmdir chmod chown touch ls ln env nohup kill sleep
printf echo test true false date id uname basename dirname head tail tr wc cut sort uniq
sed grep find xargs tar gzip tee stat readlink realpath mktemp du df diff cmp
git ssh"
libs=""
for p in $progs; do
	# The program file, also for shell builtins (kill, printf, test, …).
	src=""
	for d in /usr/bin /bin /usr/sbin /sbin; do
		[ -x "$d/$p" ] && { src="$d/$p"; break; }
	done
	[ -n "$src" ] || continue
	src=$(readlink -f "$src")
	cp -L "$src" "$dir/usr/bin/$p"
	libs="$libs $(ldd "$src" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib/{print $1}')"
done
# git runs its helpers (remote-https, upload-pack, …) from its exec path.
gitexec=$(git --exec-path)
mkdir -p "$dir$gitexec"
cp -a "$gitexec/." "$dir$gitexec/"
for f in "$gitexec"/*; do
	[ -f "$f" ] && libs="$libs $(ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib/{print $1}')"
done
for l in $(printf '%s\n' $libs | sort -u); do
	mkdir -p "$dir$(dirname "$l")"
	cp -L "$l" "$dir$l"
done
# /bin is where scripts' #!/bin/sh points.
for p in sh bash; do [ -e "$dir/usr/bin/$p" ] && ln -sf "/usr/bin/$p" "$dir/bin/$p"; done
cp -L /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/bin/sh\ngantry:x:65532:65532:gantry:/home/gantry:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
printf 'root:x:0:\ngantry:x:65532:\nnobody:x:65534:\n' >"$dir/etc/group"
printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
# Repositories mounted into a container belong to another uid; git would
# refuse them as of "dubious ownership".
printf '[safe]\n\tdirectory = *\n' >"$dir/home/gantry/.gitconfig"

# The Go toolchain, without what building code never reads.
mkdir -p "$dir/usr/local/go"
(cd "$goroot" && tar -cf - --exclude='./test' --exclude='./doc' --exclude='./api' --exclude='./misc' \
	--exclude='testdata' --exclude='*_test.go' --exclude='./pkg/tool/*/race*' --exclude='./lib/wasm' .) |
	(cd "$dir/usr/local/go" && tar -xf -)
ln -sf /usr/local/go/bin/go "$dir/usr/bin/go"
ln -sf /usr/local/go/bin/gofmt "$dir/usr/bin/gofmt"

chown -R 65532:65532 "$dir/home/gantry" "$dir/work" "$dir/agent" 2>/dev/null || true
