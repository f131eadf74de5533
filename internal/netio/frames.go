package netio

import (
	"fmt"
	"io"
	"sort"
	"strings"

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

// Reader is framing.Reader: the readers NewReader returns.
type Reader = framing.Reader

func newSyslog(mode framing.SyslogFraming) func(io.Reader, FrameOpts) Reader {
	return func(r io.Reader, o FrameOpts) Reader {
		sr := framing.NewSyslogReader(r, o.Max, mode)
		sr.NULTrailer = o.NULTrailer
		return sr
	}
}

// framings maps a framing name to its reader. New framings are one line.
var framings = map[string]func(r io.Reader, o FrameOpts) Reader{
	FramingNewline:        func(r io.Reader, o FrameOpts) Reader { return framing.NewLineReader(r, o.Max) },
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
