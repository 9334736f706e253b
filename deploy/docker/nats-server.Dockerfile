# nats-server built from its Go module (CGO_ENABLED=0, static), FROM
# scratch. Built by `make images` (tag gantry-nats:dev). The configuration
# is mounted at /etc/nats/nats-server.conf (see docker-compose.yml); the
# JetStream store is /data.
FROM scratch
COPY rootfs-min/ /
# COPY makes everything root-owned: the directories the non-root user
# writes are copied again with its ownership.
COPY --chown=65532:65532 rootfs-min/data /data
COPY --chown=65532:65532 rootfs-min/home/gantry /home/gantry
COPY nats-server /usr/bin/nats-server
USER 65532:65532
VOLUME ["/data"]
EXPOSE 4222 6222 8222
ENTRYPOINT ["/usr/bin/nats-server"]
CMD ["-c", "/etc/nats/nats-server.conf"]
