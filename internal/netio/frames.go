package netio

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/framing"
)

// Framing names, as written in plugins.toml.
const (
	FramingNewline = "newline"        // records end at LF (a CR before it is dropped)
	FramingOctet   = "octet_counting" // RFC 6587 "MSG-LEN SP MSG"
	FramingAuto    = "auto"           // per connection: a digit first means octet counting, else newline
)

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

type octetReader struct{ *framing.OctetReader }

func (r octetReader) Oversize() int { return r.OctetReader.Oversize }

// framings maps a framing name to its reader. New framings are one line.
var framings = map[string]func(r io.Reader, max int) Reader{
	FramingNewline: func(r io.Reader, max int) Reader { return lineReader{framing.NewLineReader(r, max)} },
	FramingOctet:   func(r io.Reader, max int) Reader { return octetReader{framing.NewOctetReader(r, max)} },
	FramingAuto:    newAuto,
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

// NewReader returns a reader of the named framing with records of at most
// max bytes. It panics on an unknown name (configs are validated first).
func NewReader(name string, r io.Reader, max int) Reader {
	f, ok := framings[name]
	if !ok {
		panic("netio: unknown framing " + name)
	}
	return f(r, max)
}

// autoReader decides on the first byte of the stream (RFC 6587 §3.4: a
// syslog message starts with '<', a frame length with a digit).
type autoReader struct {
	r    io.Reader
	max  int
	impl Reader
}

func newAuto(r io.Reader, max int) Reader { return &autoReader{r: r, max: max} }

func (a *autoReader) decide() error {
	var first [1]byte
	for {
		n, err := a.r.Read(first[:])
		if n == 1 {
			break
		}
		if err != nil {
			return err
		}
	}
	rest := io.MultiReader(strings.NewReader(string(first[:])), a.r)
	if first[0] >= '1' && first[0] <= '9' {
		a.impl = octetReader{framing.NewOctetReader(rest, a.max)}
	} else {
		a.impl = lineReader{framing.NewLineReader(rest, a.max)}
	}
	return nil
}

func (a *autoReader) Next() ([]byte, error) {
	if a.impl == nil {
		if err := a.decide(); err != nil {
			return nil, err
		}
	}
	return a.impl.Next()
}

func (a *autoReader) Buffered() bool { return a.impl != nil && a.impl.Buffered() }

func (a *autoReader) Oversize() int {
	if a.impl == nil {
		return 0
	}
	return a.impl.Oversize()
}

// EmitFrames reads records and emits them in batches until the reader
// fails: a batch goes out when no further record is buffered (so a slow
// sender sees no delay) or when it holds maxBatch records. Each record is
// a copy of proto with Data set. Oversize records are counted as drops
// with reason "oversize" and logged at most every 10 seconds. It returns
// the reader's error (io.EOF at the end), or nil once ctx is done.
func EmitFrames(ctx context.Context, rd Reader, proto pipeline.Record, maxBatch int, out pipeline.Emitter, set pipeline.Settings) error {
	if maxBatch < 1 {
		maxBatch = 1024
	}
	skip := false
	if se, ok := rd.(skipEmpty); ok {
		rd, skip = se.Reader, true
	}
	recs := make([]pipeline.Record, 0, maxBatch)
	oversize := 0
	var lastWarn time.Time
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
			if set.Logger != nil && time.Since(lastWarn) > 10*time.Second {
				lastWarn = time.Now()
				set.Logger.Warn("records over the size cap dropped", "source", proto.Source, "total", oversize)
			}
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
