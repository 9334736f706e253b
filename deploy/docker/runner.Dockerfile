# The image of workers and agents that run shell commands: build and test
# workers, the source worker (git) and deploy agents. Its root filesystem is
# assembled from the host's own files by runner-rootfs.sh (a shell,
# coreutils, git, the Go toolchain, CA certificates), since no base image
# can be pulled; `make images` tags it gantry-runner:dev.
FROM scratch
COPY rootfs/ /
# COPY makes everything root-owned: the directories the non-root user
# writes are copied again with its ownership.
COPY --chown=65532:65532 rootfs/home/gantry /home/gantry
COPY --chown=65532:65532 rootfs/work /work
COPY --chown=65532:65532 rootfs/agent /agent
COPY gantry /usr/bin/gantry
ENV PATH=/usr/local/go/bin:/usr/bin:/bin HOME=/home/gantry GANTRY_BIN=/usr/bin/gantry SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/bin/gantry"]
