package engine

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"

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
type fallbackFile struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	written int64
	max     int64
	log     *slog.Logger
	dropped func(n int)
	buf     []byte
}

func (d *fallbackFile) write(m *pipeline.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		if err := os.MkdirAll(filepath.Dir(d.path), 0o750); err == nil {
			d.f, err = os.OpenFile(d.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
			if err == nil {
				if st, err := d.f.Stat(); err == nil {
					d.written = st.Size()
				}
			}
		}
		if d.f == nil {
			d.dropped(1)
			d.log.Error("dead letter lost: cannot open fallback file", "path", d.path)
			return
		}
	}
	d.buf = append(codec.AppendJSON(d.buf[:0], m), '\n')
	if d.written+int64(len(d.buf)) > d.max {
		d.dropped(1)
		d.log.Error("dead letter lost: fallback file full", "path", d.path, "max_bytes", d.max)
		return
	}
	n, err := d.f.Write(d.buf)
	d.written += int64(n)
	if err != nil {
		d.dropped(1)
		d.log.Error("dead letter lost: write failed", "path", d.path, "err", err)
		return
	}
	d.log.Warn("dead letter matched no output; kept in fallback file", "path", d.path, "plugin", pluginOf(m))
}

func (d *fallbackFile) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f != nil {
		_ = d.f.Sync()
		_ = d.f.Close()
		d.f = nil
	}
}

func pluginOf(m *pipeline.Message) string {
	s, _ := m.FieldString(DeadLetterPlugin)
	return s
}
