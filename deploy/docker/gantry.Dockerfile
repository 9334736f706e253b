# The gantry binary alone (CGO_ENABLED=0, static) for the services that run
# no shell command: conductor, projector, triggers, deploy service, rollback
# service, deploy worker, provisioning. Built by `make images` (tag
# gantry:dev) from a context holding bin/gantry and bin/rootfs-min; nothing
# is pulled.
FROM scratch
COPY rootfs-min/ /
COPY gantry /usr/bin/gantry
ENV GANTRY_BIN=/usr/bin/gantry
USER 65532:65532
ENTRYPOINT ["/usr/bin/gantry"]
