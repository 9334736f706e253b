# The gantry binary alone (CGO_ENABLED=0, static) for the services that run
# no shell command: conductor, projector, triggers, deploy service, rollback
# service, deploy worker, provisioning. Built by `make images` (tag
# gantry:dev) from a context holding rootfs.tar (a minimal root plus /usr/bin/gantry); nothing
# is pulled.
FROM scratch
# The root filesystem and binaries, with their owners (see build-images.sh).
ADD rootfs.tar /
ENV GANTRY_BIN=/usr/bin/gantry
USER 65532:65532
ENTRYPOINT ["/usr/bin/gantry"]
