# The image of workers and agents that run shell commands: build and test
# workers, the source worker (git) and deploy agents. Its root filesystem is
# assembled from the host's own files by runner-rootfs.sh (a shell,
# coreutils, git, the Go toolchain, CA certificates), since no base image
# can be pulled; `make images` tags it gantry-runner:dev.
FROM scratch
# The root filesystem and binaries, with their owners (see build-images.sh).
ADD rootfs.tar /
ENV PATH=/usr/local/go/bin:/usr/bin:/bin HOME=/home/gantry GANTRY_BIN=/usr/bin/gantry SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/bin/gantry"]
