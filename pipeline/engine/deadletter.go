package engine

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
)

// DeadLetterType is the Type of the messages the engine raises for records
// it could not decode, messages it could not encode, and messages an output
// refused for good. Route them with `message_matcher = "Type == 'tern.deadletter'"`.
const DeadLetterType = "tern.deadletter"

// Field names carried by dead letters.
const (
	DeadLetterReason = "deadletter.reason" // decode_error, encode_error, output_rejected
	DeadLetterError  = "deadletter.error"
	DeadLetterPlugin = "deadletter.plugin" // the instance that failed
	DeadLetterSource = "deadletter.source" // Record.Source, or the message's Logger
)

// deadLetter adds a dead letter to b: the payload keeps the bytes that failed
// exactly (the raw record, or the encoded record an output refused).
func (e *Engine) deadLetter(b *pipeline.Batch, reason, plugin, source string, err error, raw []byte) *pipeline.Message {
	m := b.Add()
	m.Type = DeadLetterType
	m.Severity = pipeline.SeverityError
	m.Hostname = e.hostname
	m.Logger = plugin
	m.Payload = b.Str(raw)
	m.AddString(DeadLetterReason, reason)
	msg := err.Error()
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	m.AddString(DeadLetterError, msg)
	m.AddString(DeadLetterPlugin, plugin)
	if source != "" {
		m.AddString(DeadLetterSource, source)
	}
	return m
}

// fallbackFile keeps dead letters that no output matched (or that failed
// again), one canonical JSON message a line, so their bytes always survive
// somewhere: <data_dir>/deadletter/unrouted.jsonl, capped in size.
//
// The file I/O runs on one writer goroutine, never on the routing path
// (input goroutines, filter and output runners): write encodes the line and
// queues it, bounded in bytes. A dead letter whose source can be told (its
// tracker has an AckFunc) holds the tracker until the line is written, and
// waits for room when the queue is full (counted: a disk that stalls
// becomes backpressure, not loss); one whose source cannot be told is
// dropped when the queue is full, counted in tern_dropped_total{plugin=
// "engine",reason="deadletter_queue_full"}.
type fallbackFile struct {
	path     string
	max      int64 // file size cap
	queueMax int   // bytes queued for the writer
	log      *slog.Logger
	logs     *ratelog.Keyed // nil: every line is written (tests)
	dropped  func(reason string, n int)
	waited   func() // a told dead letter waited for room
	// capture, when set (only by a Harness), takes every dead letter
	// instead of the file.
	capture func(m *pipeline.Message)

	mu      sync.Mutex
	items   []fallbackItem
	bytes   int
	started bool
	closed  bool
	room    chan struct{} // closed and replaced when the writer frees room
	kick    chan struct{} // one slot: wakes the writer
	done    chan struct{} // closed when the writer has returned

	// the writer's own
	f       *os.File
	written int64
	buf     []byte
	spare   []fallbackItem
}

type fallbackItem struct {
	line   []byte
	plugin string
	tr     *tracker // nil: nobody waits for it
}

func newFallbackFile(path string, log *slog.Logger) *fallbackFile {
	return &fallbackFile{
		path: path, max: 256 << 20, queueMax: 4 << 20, log: log,
		dropped: func(string, int) {}, waited: func() {},
		room: make(chan struct{}), kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// start runs the writer; Run calls it before any runner starts.
func (d *fallbackFile) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started || d.closed {
		return
	}
	d.started = true
	go d.writer()
}

// write queues m for the file. With a tracker whose source can be told it
// waits for room (until ctx ends: then the tracker is abandoned, so the
// source offers the record again); without one, a full queue drops m.
func (d *fallbackFile) write(ctx context.Context, m *pipeline.Message, tr *tracker) {
	if d.capture != nil {
		d.capture(m)
		return
	}
	line := append(codec.AppendJSON(nil, m), '\n')
	told := tr != nil && tr.ack != nil
	d.mu.Lock()
	waited := false
	for {
		if d.closed || !d.started {
			d.mu.Unlock()
			d.dropped("deadletter_lost", 1)
			d.logs.For("closed").Log(d.log, slog.LevelError, "dead letter lost: the engine has stopped", "plugin", pluginOf(m))
			if tr != nil {
				tr.hold()
				tr.Abandon()
			}
			return
		}
		if d.bytes == 0 || d.bytes+len(line) <= d.queueMax {
			break
		}
		if !told {
			d.mu.Unlock()
			d.dropped("deadletter_queue_full", 1)
			d.logs.For("full").Log(d.log, slog.LevelError, "dead letter lost: the fallback file's queue is full", "path", d.path, "plugin", pluginOf(m))
			return
		}
		if !waited {
			waited = true
			d.waited()
		}
		room := d.room
		d.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			tr.hold()
			tr.Abandon()
			return
		}
		d.mu.Lock()
	}
	if tr != nil {
		tr.hold()
	}
	d.items = append(d.items, fallbackItem{line: line, plugin: pluginOf(m), tr: tr})
	d.bytes += len(line)
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *fallbackFile) writer() {
	defer close(d.done)
	for {
		d.mu.Lock()
		for len(d.items) == 0 && !d.closed {
			d.mu.Unlock()
			<-d.kick
			d.mu.Lock()
		}
		if len(d.items) == 0 {
			d.mu.Unlock()
			break
		}
		items := d.items
		d.items = d.spare[:0]
		d.mu.Unlock()

		freed := d.writeItems(items)

		d.mu.Lock()
		d.bytes -= freed
		close(d.room)
		d.room = make(chan struct{})
		d.mu.Unlock()
		clear(items)
		d.spare = items[:0]
	}
	if d.f != nil {
		_ = d.f.Sync()
		_ = d.f.Close()
		d.f = nil
	}
}

// writeItems appends items to the file with one write and settles their
// trackers; it returns the queue bytes they held. A dead letter that cannot
// be written is counted and settled all the same (nothing else could store
// it; holding its source would stall it for good).
func (d *fallbackFile) writeItems(items []fallbackItem) int {
	freed := 0
	d.buf = d.buf[:0]
	var lost []fallbackItem
	kept := 0
	for _, it := range items {
		freed += len(it.line)
		if d.written+int64(len(d.buf)+len(it.line)) > d.max {
			lost = append(lost, it)
			continue
		}
		d.buf = append(d.buf, it.line...)
		items[kept] = it
		kept++
	}
	if len(lost) > 0 {
		d.dropped("deadletter_lost", len(lost))
		d.logs.For("max").Log(d.log, slog.LevelError, "dead letters lost: fallback file full", "path", d.path, "max_bytes", d.max, "lost", len(lost))
	}
	if kept > 0 {
		if err := d.open(); err != nil {
			d.dropped("deadletter_lost", kept)
			d.logs.For("open").Log(d.log, slog.LevelError, "dead letters lost: cannot open fallback file", "path", d.path, "err", err, "lost", kept)
		} else {
			n, err := d.f.Write(d.buf)
			d.written += int64(n)
			if err != nil {
				d.dropped("deadletter_lost", kept)
				d.log.Error("dead letters lost: write failed", "path", d.path, "err", err, "lost", kept)
			} else {
				d.logs.For("kept").Warn(d.log, "dead letter matched no output; kept in fallback file", "path", d.path, "plugin", items[0].plugin, "count", kept)
			}
		}
	}
	for _, it := range items[:kept] {
		if it.tr != nil {
			it.tr.Done()
		}
	}
	for _, it := range lost {
		if it.tr != nil {
			it.tr.Done()
		}
	}
	if cap(d.buf) > 1<<20 {
		d.buf = nil
	}
	return freed
}

func (d *fallbackFile) open() error {
	if d.f != nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(d.path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(d.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil {
		d.written = st.Size()
	}
	d.f = f
	return nil
}

// close lets the writer finish what is queued, then syncs and closes the
// file. Later writes are counted as lost. The writer may still be blocked
// on a stalled file: close waits at most until ctx ends.
func (d *fallbackFile) close(ctx context.Context) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	started := d.started
	close(d.room) // waiters see closed
	d.room = make(chan struct{})
	d.mu.Unlock()
	if !started {
		return
	}
	select {
	case d.kick <- struct{}{}:
	default:
	}
	select {
	case <-d.done:
	case <-ctx.Done():
		d.log.Error("dead-letter fallback file still blocked at shutdown; its writer is left running", "path", d.path)
	}
}

func pluginOf(m *pipeline.Message) string {
	s, _ := m.FieldString(DeadLetterPlugin)
	return s
}
