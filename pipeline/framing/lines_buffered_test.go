package framing

import (
	"io"
	"strings"
	"testing"
)

// chunks returns one chunk per Read.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	(*c)[0] = (*c)[0][n:]
	if (*c)[0] == "" {
		*c = (*c)[1:]
	}
	return n, nil
}

// A caller that holds lines while Buffered is true (Emit batches them)
// must never see them overwritten: an over-long line in the buffer is not
// a line Next can return without reading.
func TestBufferedIgnoresOverlongLines(t *testing.T) {
	// The first chunk fills the initial buffer (max+1 bytes) so it grows;
	// the second holds two lines, an over-long one and a partial one.
	r := &chunks{strings.Repeat("p", 24) + "\n", "one\ntwo\n" + strings.Repeat("x", 30) + "\ntail", " end\n"}
	l := NewLineReader(r, 24)
	var held [][]byte
	var got []string
	for {
		if len(held) > 0 && !l.Buffered() {
			for _, h := range held {
				got = append(got, string(h))
			}
			held = held[:0]
		}
		line, err := l.Next()
		if err != nil {
			break
		}
		held = append(held, line)
	}
	for _, h := range held {
		got = append(got, string(h))
	}
	want := []string{strings.Repeat("p", 24), "one", "two", "tail end"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
	if l.Oversize() != 1 {
		t.Errorf("Oversize = %d", l.Oversize())
	}
}

// The same promise for non-transparent syslog framing, where empty
// messages (CR LF LF) are skipped as well as over-long ones.
func TestSyslogBufferedIgnoresSkippedMessages(t *testing.T) {
	r := &chunks{strings.Repeat("p", 24) + "\n", "<34>one\r\n\n" + strings.Repeat("x", 30) + "\x00<13>tail", " end\n"}
	s := NewSyslogReader(r, 24, FramingNonTransparent)
	s.NULTrailer = true
	var held [][]byte
	var got []string
	for {
		if len(held) > 0 && !s.Buffered() {
			for _, h := range held {
				got = append(got, string(h))
			}
			held = held[:0]
		}
		m, err := s.Next()
		if err != nil {
			break
		}
		held = append(held, m)
	}
	for _, h := range held {
		got = append(got, string(h))
	}
	want := []string{strings.Repeat("p", 24), "<34>one", "<13>tail end"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("messages %q, want %q", got, want)
	}
}
