// Package faults is tern's end-to-end fault suite
// (docs/reliability.md §5): it builds the real tern binary, feeds
// it through its HTTP input with events stamped by internal/testutil/oracle, lets it
// deliver to HTTP sinks, and injects faults: kill -9 and SIGTERM at seeded
// random times (internal/testutil/supervisor), network faults between tern and a
// sink (internal/testutil/faultproxy), a flaky, slow, full or missing sink, and a
// full disk. R8 feeds it from a Kafka topic instead (internal/testutil/kafkatest)
// and reads the consumer group's committed offsets after every kill -9: a
// commit never covers an undelivered record. Each scenario ends with the oracle's report (sent,
// acknowledged, delivered, missing, duplicates, spurious, corrupt, and
// tern's own drop counters) and asserts that no acknowledged event is
// missing and nothing spurious or corrupt arrived.
//
// The model-level scenarios live with the code they test: R4 (crash
// consistency), R5 (corrupt state), R6 (ENOSPC, EIO) and R16 (ledger
// durability) in pipeline/buffer.
//
// Scale: CI by default (go test ./internal/test/faults/), full with
// TERN_TEST_SCALE=full (make faults), a tenth under -race; -short skips the
// suite. TERN_FAULT_SEED=<n> replays a run; every report prints its seed.
package faults
