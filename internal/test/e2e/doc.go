// Package e2e holds end-to-end tests of tern's at-least-once paths across
// plugins and engines: Kafka → tern → Kafka through broker restarts and
// consumer-group scale-out, commits never ahead of delivery, an edge tern
// forwarding to a central tern across restarts of both, and the throughput
// benchmarks of those paths. It has no code outside its tests.
package e2e
