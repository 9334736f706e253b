# The gantry binary alone (CGO_ENABLED=0, static) for the services that run
# no shell command: conductor, projector, triggers, deploy service, rollback
# service, deploy worker, provisioning. Built by `make images` (tag
# gantry:dev) from a context holding bin/gantry and bin/rootfs-min; nothing
# is pulled.
FROM scratch
COPY rootfs-min/ /
# COPY makes everything root-owned: the directories the non-root user
# writes are copied again with its ownership.
COPY --chown=65532:65532 rootfs-min/data /data
COPY --chown=65532:65532 rootfs-min/home/gantry /home/gantry
COPY gantry /usr/bin/gantry
ENV GANTRY_BIN=/usr/bin/gantry
USER 65532:65532
ENTRYPOINT ["/usr/bin/gantry"]
