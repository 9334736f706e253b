// Package events defines Gantry's wire contract: the CloudEvents 1.0 envelope,
// every event type with its typed payload, the NATS subjects and the
// deterministic event IDs that make at-least-once delivery safe.
//
// Nothing here does I/O. The bus client lives in events/bus and the pure fold
// of a run in events/run.
package events
