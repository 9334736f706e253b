// Package clustertest holds Gantry's fault tests against a real three-node
// NATS JetStream cluster in containers of the project's own images
// (testcontainers-go; see docs/operations.md, "Running on a cluster"). It
// is a module of its own so that testcontainers and the Docker client stay
// out of the services module.
package clustertest
