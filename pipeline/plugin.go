package pipeline

import (
	"context"
	"time"
)

// Record is one unit of raw input: a line, a frame, a datagram, a Kafka
// record, an HTTP body line.
type Record struct {
	// Data is only valid during the Emit call that carries it: decoders copy
	// what they keep (Batch.Str), so inputs may reuse their buffers at once.
	Data []byte
	// Source says where the record came from, e.g. "tcp://10.0.0.5:51544",
	// "/var/log/auth.log", "kafka://logs/3@1822". It is kept on dead letters.
	Source string
	// Fields are appended to every message decoded from the record (Kafka key
	// and headers, the syslog sender's address). They are copied, so inputs
	// may share one slice between records.
	Fields []Field
}

// AckFunc learns the fate of a batch of records. The engine calls it exactly
// once: with nil when every output and filter whose matcher accepted any
// message of the batch has taken it (written it with the configured
// durability, or moved it to the dead-letter route), or with an error when
// that did not happen (the engine stopped first). Inputs that can replay
// (file offsets, Kafka offsets) advance their position only on nil; inputs
// that can answer their sender (HTTP, tern's native protocol) answer then.
type AckFunc func(err error)

// Emitter is how an input hands records to the engine.
type Emitter interface {
	// Emit decodes recs and routes the messages. It blocks while the queues
	// they go to are full (backpressure) and returns ctx.Err() once ctx is
	// done. ack may be nil. Emit is safe for concurrent use.
	Emit(ctx context.Context, recs []Record, ack AckFunc) error
}

// BufferEmitter is an Emitter that also takes records with the read buffer
// they lie in (the engine's is one). A stream input that reads into a
// ReadBuffer hands it over with a batch that fills most of it: the
// decoders' strings are then views into the bytes as read, where
// otherwise they are copies.
type BufferEmitter interface {
	Emitter
	// EmitBuffer is Emit for records whose Data all lie in rb.B. The caller
	// gives rb up with the call, whatever it returns, and never writes to
	// it again.
	EmitBuffer(ctx context.Context, recs []Record, ack AckFunc, rb *ReadBuffer) error
}

// Input reads records from the outside world.
type Input interface {
	// Run reads until ctx is done, then returns nil. Any other return is a
	// failure: the engine logs it and calls Run again after a backoff. Run
	// owns all I/O; constructors do none.
	Run(ctx context.Context, out Emitter) error
}

// Decoder turns a record into zero or more messages.
type Decoder interface {
	// Decode adds the messages decoded from rec to out (usually one; none for
	// records that carry no event, such as a Zeek header line). An error sends
	// the whole record, with its original bytes, to the dead-letter route.
	// The engine fills what the decoder leaves unset: UUID, Timestamp (receive
	// time), Logger (input name). Decoders are shared by all connections of an
	// input and must be safe for concurrent use; per-source state (a Zeek
	// header) is keyed by rec.Source. What a decoder keeps across records
	// (that header, a cache of names it looked up) must be copies
	// (strings.Clone), never strings from out.Str or views into rec.Data:
	// see the memory rule of Filter.
	Decode(rec Record, out *Batch) error
}

// Transformer is implemented by decoders that can also run after another
// decoder in an input's decoder chain (`decoder = ["syslog", "enrich"]`),
// rewriting each message the previous step produced.
type Transformer interface {
	// Transform may change m in place, add more messages to out, or drop m
	// by returning keep=false. An error dead-letters the original record.
	Transform(m *Message, out *Batch) (keep bool, err error)
}

// Injector takes messages that a filter creates.
type Injector interface {
	// Inject routes m like any other message. When called from Process,
	// the delivery of m is tied to the acknowledgement of the message being
	// processed. The filter must not modify m afterwards. Inject blocks
	// while an output queue m goes to is full; it never waits on a filter
	// queue (filters may feed each other): past a full filter queue's
	// overflow allowance m is dropped for that filter, and counted.
	Inject(m *Message) error
}

// Filter observes messages that its matcher accepts and may inject new ones.
//
// Memory rule: a message's strings may be views into memory that its whole
// batch shares (Batch.Str): chunks of up to 32 KiB, or the 256 KiB read
// buffer its records were read into (BufferEmitter). What a filter keeps after
// Process returns (map keys, per-key state, a message to compare with, a
// string handed to a Lua table) must be Retain'ed or DeepClone'd: a view
// would keep the whole chunk or buffer alive, and with it every message decoded
// beside it, unseen by any accounting (Message.Size counts a message's own
// bytes). Worse, once every destination of a batch has acknowledged it,
// the engine reuses its memory for the next records (Batch.Reset), so a
// view kept past the call would read other messages' bytes; the -race test
// runs overwrite retired chunks so that such a plugin fails its tests.
// Copy when the key is first stored, not on every lookup: a map lookup
// with a view is free. The engine keeps queues honest the same way: a
// destination that takes a small share of a batch's bytes gets copies, and
// batches are sized for the records they hold (Batch.Reserve).
type Filter interface {
	// Process is called once per matching message, from one goroutine.
	// m is shared and read-only, and only valid during the call. An error is
	// counted and logged; the message still counts as processed.
	Process(ctx context.Context, m *Message, out Injector) error
}

// Ticker is implemented by filters that act on a timer (Heka's
// timer_event); the engine calls Tick every ticker_interval, on the same
// goroutine as Process, and once more at shutdown.
type Ticker interface {
	Tick(ctx context.Context, now time.Time, out Injector) error
}

// Encoder turns a message into the bytes of one record. The memory rule of
// Filter holds here too: what an encoder keeps after Encode returns (a cache
// of alerts, names seen) must be copies, not the message's strings.
type Encoder interface {
	// Encode appends the record for m to dst and returns the extended slice.
	// The record has no trailing line terminator: stream outputs add their
	// delimiter, message outputs (syslog, Kafka, UDP) send it as a unit.
	// An error sends m to the dead-letter route. Encoders are used by one
	// goroutine at a time.
	Encode(dst []byte, m *Message) ([]byte, error)
}

// Delimited is implemented by encoders whose records must be separated by
// something other than a newline in stream outputs ("" for self-framing
// binary formats).
type Delimited interface {
	Delimiter() string
}

// Framer is implemented by encoders whose files carry a header and trailer,
// like Zeek's "#fields" block and "#close" line. File outputs call Header
// when they open a file (with its first message) and Trailer before closing
// or rotating it.
type Framer interface {
	Header(dst []byte, first *Message, open time.Time) []byte
	Trailer(dst []byte, close time.Time) []byte
}

// Encoded is a message with its encoded record.
type Encoded struct {
	Msg  *Message
	Data []byte
}

// Separated is implemented by outputs that end every record with the same
// bytes (the file output's delimiter). The engine then writes those bytes
// after each encoded record in its buffer and gives Data the capacity to
// cover them, so that records the engine laid out one after the other can
// be written as one run, as they are, where they would otherwise be copied
// to put separators between them. Outputs only read past len(Data), never
// write there, and check the separator is there (SeparatorFollows): Write
// may be called by others than the engine.
type Separated interface {
	Separator() []byte
}

// SeparatorFollows reports whether sep follows e.Data within its capacity.
func (e *Encoded) SeparatorFollows(sep []byte) bool {
	n := len(e.Data)
	return cap(e.Data)-n >= len(sep) && string(e.Data[n:n+len(sep)]) == string(sep)
}

// Output writes encoded messages to the outside world. Nothing it keeps
// after Write returns may be a view into a batch (Encoded.Data, the message's
// strings): copy what outlives the call.
type Output interface {
	// Write delivers batch. It returns nil only when every record has reached
	// the output's configured durability (written to the file, acknowledged
	// by the broker or server): that is what lets inputs advance. On an error
	// the engine retries the whole batch with backoff, forever, unless the
	// error is Permanent; a *PartialError settles records individually.
	// Write does not sleep before returning an error: a wait the peer asked
	// for goes back as RetryAfter(err, d), and the engine honours it.
	// Write is called from one goroutine; batch, its Data and its messages
	// are only valid during the call (their memory is reused after it).
	Write(ctx context.Context, batch []Encoded) error
}

// Closer is implemented by plugins that hold resources. The engine calls
// Close once, after the plugin's last call, even if Run or Write never ran.
// No method runs during or after Close: a plugin still inside a call when
// the shutdown timeout (plus a second) has passed is not closed at all,
// and the engine logs its name.
type Closer interface {
	Close(ctx context.Context) error
}

// MemoryBudgeter is implemented by plugins that bound the memory their
// user-supplied logic may hold (Lua scripts: memory_limit). The engine adds
// the budgets up to set Go's soft memory limit (Engine.MemoryBudget), so the
// collector keeps the process near what the config allows instead of
// letting the heap grow to twice what is live.
type MemoryBudgeter interface {
	MemoryBudget() int64
}

// Checker is implemented by plugins whose config names files they read at
// run time (scripts, alert definitions, certificates). `tern check` calls
// Check after building the plugin so such mistakes surface before a
// deployment. Check may read files; it must not write, listen or connect.
type Checker interface {
	Check() error
}
