package netio

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/framing"
)

// Framing names, as written in plugins.toml.
const (
	FramingNewline        = "newline"         // records end at LF (a CR before it is dropped)
	FramingOctet          = "octet_counting"  // RFC 6587 "MSG-LEN SP MSG"
	FramingNonTransparent = "non_transparent" // RFC 6587 §3.4.2: LF ends a message (NUL too with FrameOpts.NULTrailer)
	FramingAuto           = "auto"            // per connection: a digit first means octet counting, else non-transparent
)

// FrameOpts configure NewReader.
type FrameOpts struct {
	// Max caps one record, in bytes (framing.DefaultMaxLine when <= 0).
	Max int
	// NULTrailer makes NUL end a record too, as well as LF, with the auto
	// and non_transparent framings. Off, NUL is data: a NUL inside a
	// message cannot split it into a second, sender-forged one.
	NULTrailer bool
}

// Reader reads bounded records from a stream. Next returns a record valid
// until the next call that may read; Buffered tells whether Next can return
// one without reading; Oversize counts records refused for their size.
type Reader interface {
	Next() ([]byte, error)
	Buffered() bool
	Oversize() int
}

type lineReader struct{ *framing.LineReader }

func (r lineReader) Oversize() int { return r.LineReader.Oversize }

type syslogReader struct{ *framing.SyslogReader }

func (r syslogReader) Oversize() int { return r.SyslogReader.Oversize }

func newSyslog(mode framing.SyslogFraming) func(io.Reader, FrameOpts) Reader {
	return func(r io.Reader, o FrameOpts) Reader {
		sr := framing.NewSyslogReader(r, o.Max, mode)
		sr.NULTrailer = o.NULTrailer
		return syslogReader{sr}
	}
}

// framings maps a framing name to its reader. New framings are one line.
var framings = map[string]func(r io.Reader, o FrameOpts) Reader{
	FramingNewline:        func(r io.Reader, o FrameOpts) Reader { return lineReader{framing.NewLineReader(r, o.Max)} },
	FramingOctet:          newSyslog(framing.FramingOctetCounting),
	FramingNonTransparent: newSyslog(framing.FramingNonTransparent),
	FramingAuto:           newSyslog(framing.FramingAuto),
}

// Framings lists the framing names NewReader knows, sorted.
func Framings() []string {
	out := make([]string, 0, len(framings))
	for k := range framings {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CheckFraming returns an error naming the known framings when name is not one.
func CheckFraming(name string) error {
	if _, ok := framings[name]; !ok {
		return fmt.Errorf("must be one of %s, not %q", strings.Join(Framings(), ", "), name)
	}
	return nil
}

// CheckNULTrailer returns a "nul_trailer: …" error when on is set with a
// framing that has no trailer to extend.
func CheckNULTrailer(name string, on bool) error {
	if on && name != FramingAuto && name != FramingNonTransparent {
		return fmt.Errorf("nul_trailer: only with framing %s or %s", FramingAuto, FramingNonTransparent)
	}
	return nil
}

// NewReader returns a reader of the named framing. It panics on an unknown
// name (configs are validated first).
func NewReader(name string, r io.Reader, o FrameOpts) Reader {
	f, ok := framings[name]
	if !ok {
		panic("netio: unknown framing " + name)
	}
	return f(r, o)
}

// EmitFrames reads records and emits them in batches until the reader
// fails: a batch goes out when no further record is buffered (so a slow
// sender sees no delay) or when it holds maxBatch records. Each record is
// a copy of proto with Data set. Oversize records are counted as drops
// with reason "oversize" and logged through logs (shared by the input's
// connections; nil: at most every 10 seconds per connection). It returns
// the reader's error (io.EOF at the end), or nil once ctx is done.
func EmitFrames(ctx context.Context, rd Reader, proto pipeline.Record, maxBatch int, out pipeline.Emitter, set pipeline.Settings, logs *ratelog.Keyed) error {
	if maxBatch < 1 {
		maxBatch = 1024
	}
	skip := false
	if se, ok := rd.(skipEmpty); ok {
		rd, skip = se.Reader, true
	}
	recs := make([]pipeline.Record, 0, maxBatch)
	oversize := 0
	warn := logs.For("oversize")
	if warn == nil {
		warn = ratelog.Every(10 * time.Second)
	}
	for {
		if len(recs) > 0 && (len(recs) >= maxBatch || !rd.Buffered()) {
			if err := out.Emit(ctx, recs, nil); err != nil {
				return nil // stopping
			}
			recs = recs[:0]
		}
		data, err := rd.Next()
		if n := rd.Oversize(); n > oversize {
			set.Drop("oversize", n-oversize)
			oversize = n
			warn.Warn(set.Logger, "records over the size cap dropped", "source", proto.Source, "on_connection", oversize)
		}
		if err != nil {
			if len(recs) > 0 && out.Emit(ctx, recs, nil) != nil {
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
	}
}

// SkipEmpty marks r so that EmitFrames drops its empty records (RFC 6587
// senders that end messages with CR LF LF, keep-alive blank lines). The
// records are dropped there, not in Next: a Next that skipped would read
// past what Buffered promised, overwriting records the batch still holds.
func SkipEmpty(r Reader) Reader { return skipEmpty{r} }

type skipEmpty struct{ Reader }
