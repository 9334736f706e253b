# nats-server built from its Go module (CGO_ENABLED=0, static), FROM
# scratch. Built by `make images` (tag gantry-nats:dev). The configuration
# is mounted at /etc/nats/nats-server.conf (see docker-compose.yml); the
# JetStream store is /data.
FROM scratch
# The root filesystem and binaries, with their owners (see build-images.sh).
ADD rootfs.tar /
USER 65532:65532
VOLUME ["/data"]
EXPOSE 4222 6222 8222
ENTRYPOINT ["/usr/bin/nats-server"]
CMD ["-c", "/etc/nats/nats-server.conf"]
