// Package pipeline is tern's contract: the message, the five plugin kinds
// and the rules the engine keeps. Plugins import this package (and the
// helpers in pipeline/config and pipeline/framing); they never import the
// engine, the router or each other.
//
// # Data flow
//
//	inputs/*  --[]Record-->  decoders/*  --*Message-->  router (matchers)
//	                                                     |-> filters/*  --Inject--> router
//	                                                     `-> queue -> encoders/* --[]Encoded--> outputs/*
//
// An input reads records and hands them to the engine in batches through an
// Emitter. On the input's goroutine the engine decodes each record (a
// decoder chain: the first Decoder, then any Transformers), fills what the
// decoders left unset (UUID, Timestamp = receive time, Logger = input name),
// and routes the batch: every filter and output whose message_matcher
// accepts a message gets it, in a per-destination queue bounded in bytes.
// Messages are shared read-only between destinations. A filter runner calls
// Filter.Process for each message on one goroutine, and Ticker.Tick every
// ticker_interval; injected messages are routed like any other (never back
// to the filter that injected them, and at most max_message_loops deep).
// Inject waits for room in output queues but never in filter queues: two
// filters that feed each other would deadlock. An injected message takes
// the room a filter queue has, then an overflow allowance as large as its
// queue_max_bytes, and past that it is dropped, counted as
// tern_dropped_total{reason="overflow_full"}. An output runner takes
// batches from its queue, encodes them and calls Output.Write.
//
// A message, its fields and its strings belong to the batch they were
// decoded in; a stream input that reads in large pieces lends the batch the
// buffer its records were read into (BufferEmitter), and the strings are
// views into it. Once every destination has settled a batch, the engine reuses
// its memory for the records of a later Emit (Batch.Reset): a plugin keeps
// nothing of a message past the call that handed it over, and copies what
// it stores (Retain, Message.DeepClone). Filter's documentation has the
// rule in full.
//
// # Delivery contract: at least once
//
// Every Emit carries an AckFunc. The engine calls it exactly once, with nil
// when every destination that matched any message of the batch has settled
// it: an output wrote it with its configured durability (Write returned nil),
// a filter processed it, or it went to the dead-letter route. Messages a
// filter injects while processing a message are part of that message's
// acknowledgement. Inputs that can replay (file checkpoints, Kafka offsets)
// advance only on a nil ack; inputs that can answer their sender (HTTP, the
// native tern protocol) answer then. An ack with an error (ErrStopped) means
// the engine stopped first: offer the records again.
//
// Output.Write is retried forever with capped, jittered backoff
// ([outputs.x.retries]) unless its error is Permanent; a *PartialError
// settles records one by one. Outputs never sleep between attempts
// themselves: a peer's request to wait (HTTP Retry-After) is returned as
// RetryAfter(err, d), and the engine waits the longer of d and its
// backoff. Each destination has its own queue, so a stuck output only
// stalls inputs once its own queue is full
// (queue_max_bytes; full_action = "block"), or sheds new messages with
// full_action = "drop_newest" (counted, and acknowledged: shedding is the
// user's explicit choice). With use_buffering the queue is on disk and the
// acknowledgement is given once the messages are durable there: fsynced
// with sync = "always", written with "interval" (pipeline/buffer).
//
// Paths that cannot be at-least-once: UDP, plain TCP and syslog without an
// application-level ack (bytes in socket buffers die with the process),
// memory queues across a crash of tern, drop_newest, and filters that
// aggregate in memory (their Tick output belongs to no acknowledgement).
//
// # Nothing dropped silently
//
// Every message that is not delivered is counted in tern_dropped_total by
// plugin and reason (no_match, queue_full, overflow_full, loop, oversize,
// deadletter_lost, deadletter_queue_full, …). A record that fails to
// decode, a message that fails to encode and a message an output refuses
// for good become dead letters: messages of Type "tern.deadletter" whose
// Payload holds the original bytes and whose fields say why
// (deadletter.reason, deadletter.error, deadletter.plugin, deadletter.source).
// Route them like any message.
//
// A dead letter belongs to the acknowledgement of the record it stands for:
// the source's position does not advance (nor a disk buffer's cursor) until
// the dead letter is stored by the output that takes it, or in the fallback
// file. Output runners raise theirs without waiting on any queue: a
// destination whose queue and overflow allowance are full is counted
// (overflow_full) and the dead letter goes to the fallback file instead.
// Dead letters still unstored at shutdown are offered again with their
// record, or, for sources that cannot be told, counted as
// tern_dropped_total{reason="deadletter_lost"}. Dead letters no output
// matches are appended to <data_dir>/deadletter/unrouted.jsonl by a writer
// goroutine (file I/O never runs on the routing path). Their source's acknowledgement waits
// for that write; when the writer's queue (4 MiB) is full, a dead letter
// whose source can be told waits for room (counted in
// tern_deadletter_queue_waits_total), one whose source cannot be told is
// dropped (tern_dropped_total{reason="deadletter_queue_full"}).
//
// Counters exist from zero: the engine creates its own series for every
// plugin when it is built, and a constructor declares each drop reason and
// error kind its plugin may count (Settings.DeclareDrops, DeclareErrors),
// so a scrape before any traffic shows what can go wrong where. A test in
// internal/test/layout fails on a reason counted but never declared.
//
// # Lifecycle
//
//  1. Build: the config is decoded strictly (unknown keys, wrong types and
//     missing keys are errors placed at file:line), matchers compile, and
//     every plugin's constructor runs. Constructors do no I/O and start no
//     goroutines, so `tern check` runs exactly this (and Checker, and
//     Warner on configs); `tern run` runs the same check before it builds
//     the engine that runs, and starts nothing when it fails.
//  2. Start, downstream first: outputs, filters, then inputs.
//  3. Run: a failing Input.Run is restarted with capped, jittered backoff;
//     panics in any plugin call are recovered and counted. Nothing a plugin
//     does stops the process.
//  4. Stop (SIGTERM, or every input returned ErrEndOfInput): inputs stop
//     first; the engine waits for filter queues to drain, gives each Ticker
//     one last Tick, waits for output queues to drain and every ack to be
//     given, then closes each plugin (Closer) once its runner has returned.
//     What is still queued when [tern] shutdown_timeout passes is
//     abandoned: its sources get ErrStopped, never a false success. Output
//     runners get one more second to return from a Write whose context
//     ended; a plugin still inside a call after that is not closed (no
//     method ever runs during or after Close) but named in an error log.
//  5. Reload (SIGHUP, cmd/tern): a stop as in 4, then a new engine with new
//     plugin instances from the config read again. An instance never sees
//     two runs; state that must survive goes through the plugin's own
//     persistence (checkpoints, offsets, preserve_data).
package pipeline
