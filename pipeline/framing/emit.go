package framing

import (
	"context"
	"time"

	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/pipeline"
)

// Reader reads bounded records from a stream: LineReader and SyslogReader.
// Next returns a record valid until the next call that may read; Buffered
// tells whether Next can return one without reading; Oversize counts the
// records refused so far for their size.
type Reader interface {
	Next() ([]byte, error)
	Buffered() bool
	Oversize() int
}

// SkipEmpty marks r so that Emit drops its empty records (RFC 6587 senders
// that end messages with CR LF LF, keep-alive blank lines). They are dropped
// in Emit, not in Next: a Next that skipped would read past what Buffered
// promised, overwriting records the batch still holds.
func SkipEmpty(r Reader) Reader { return skipEmpty{r} }

type skipEmpty struct{ Reader }

// Declare declares, for the plugin of set, what Emit counts (records over
// the size cap), so the series exist at zero. Call it from the plugin's
// constructor.
func Declare(set pipeline.Settings) {
	set.DeclareDrops("oversize")
}

// Emit is the one batch loop of the stream inputs: it reads records and
// emits them in batches until the reader fails. A batch goes out when no
// further record is buffered (so a slow sender sees no delay) or when it
// holds maxBatch records (or the whole read buffer's worth, up to twice that,
// when its rest is small: joinRest); each record is a copy of proto with
// Data set.
// Oversize records are counted as drops ("oversize") and logged through
// logs (shared by a listener's connections; nil: at most every 10 seconds
// for this stream). It returns the reader's error (io.EOF at the end), or
// nil once ctx is done.
func Emit(ctx context.Context, rd Reader, proto pipeline.Record, maxBatch int, out pipeline.Emitter, set pipeline.Settings, logs *ratelog.Keyed) error {
	if maxBatch < 1 {
		maxBatch = 1024
	}
	skip := false
	if se, ok := rd.(skipEmpty); ok {
		rd, skip = se.Reader, true
	}
	recs := make([]pipeline.Record, 0, maxBatch)
	oversize := rd.Oversize()
	warn := logs.For("oversize")
	if warn == nil {
		warn = ratelog.Every(10 * time.Second)
	}
	unread, _ := rd.(interface{ Unread() int })
	// A batch that fills most of the read buffer takes the buffer with it:
	// its messages' strings are then views into the bytes as read.
	bout, _ := out.(pipeline.BufferEmitter)
	lender, _ := rd.(interface {
		Lend(size int) *pipeline.ReadBuffer
	})
	emit := func(recs []pipeline.Record, size int) error {
		if bout != nil && lender != nil {
			if rb := lender.Lend(size); rb != nil {
				return bout.EmitBuffer(ctx, recs, nil, rb)
			}
		}
		return out.Emit(ctx, recs, nil)
	}
	size := 0 // bytes in recs
	for {
		if len(recs) > 0 && (len(recs) >= maxBatch && !joinRest(rd, unread, recs, size, maxBatch) || !rd.Buffered()) {
			if err := emit(recs, size); err != nil {
				return nil // stopping
			}
			recs, size = recs[:0], 0
		}
		data, err := rd.Next()
		if n := rd.Oversize(); n > oversize {
			set.Drop("oversize", n-oversize)
			oversize = n
			warn.Warn(set.Logger, "records over the size cap dropped", "source", proto.Source, "on_stream", oversize)
		}
		if err != nil {
			if len(recs) > 0 && emit(recs, size) != nil {
				return nil
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if skip && len(data) == 0 {
			continue
		}
		rec := proto
		rec.Data = data
		recs = append(recs, rec)
		size += len(data)
	}
}

// joinRest reports whether a full batch should go on taking the complete
// records left in the read buffer: when what is left is under a quarter of
// the batch's bytes, it would otherwise follow as a batch of a few records
// (a 256 KiB read of 250-byte lines is 1,048 of them: 1,024 and 24), and
// every batch costs its routing, queueing and delivery whatever its size.
// A batch stops at twice maxBatch all the same.
func joinRest(rd Reader, unread interface{ Unread() int }, recs []pipeline.Record, size, maxBatch int) bool {
	return unread != nil && len(recs) < 2*maxBatch && unread.Unread()*4 <= size && rd.Buffered()
}
