package framing

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func readAllFrames(r *SyslogReader) ([]string, error) {
	var out []string
	for {
		f, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, string(f))
	}
}

func TestSyslogOctet(t *testing.T) {
	cases := []struct {
		name string
		in   string
		max  int
		want []string
		err  error
	}{
		{"two frames", "5 hello3 abc", 0, []string{"hello", "abc"}, io.EOF},
		{"LF inside a frame is data", "11 line1\nline2", 0, []string{"line1\nline2"}, io.EOF},
		{"empty stream", "", 0, nil, io.EOF},
		{"leading zero", "05 hello", 0, nil, ErrSyslogFrame},
		{"zero length", "0 ", 0, nil, ErrSyslogFrame},
		{"missing SP", "5hello", 0, nil, ErrSyslogFrame},
		{"non-transparent input", "<13>hello\n", 0, nil, ErrSyslogFrame},
		{"newline between frames", "1 a\n1 b", 0, []string{"a"}, ErrSyslogFrame},
		{"length beyond the data", "3 abc10 short", 0, []string{"abc"}, io.ErrUnexpectedEOF},
		{"header cut", "3 abc12", 0, []string{"abc"}, io.ErrUnexpectedEOF},
		{"declared too large", "3 abc2147483648 x", 100, []string{"abc"}, ErrSyslogTooLarge},
		{"exactly the cap", "4 abcd", 4, []string{"abcd"}, io.EOF},
		{"one over the cap", "5 abcde", 4, nil, ErrSyslogTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// One byte per Read exercises every partial-header path.
			for _, r := range []io.Reader{strings.NewReader(c.in), iotest.OneByteReader(strings.NewReader(c.in))} {
				or := NewSyslogReader(r, c.max, FramingOctetCounting)
				got, err := readAllFrames(or)
				if strings.Join(got, "|") != strings.Join(c.want, "|") {
					t.Errorf("frames %q, want %q", got, c.want)
				}
				if !errors.Is(err, c.err) {
					t.Errorf("error %v, want %v", err, c.err)
				}
				if _, err2 := or.Next(); !errors.Is(err2, c.err) {
					t.Errorf("errors must be final: then %v", err2)
				}
				if c.err == ErrSyslogTooLarge && or.Oversize() != 1 {
					t.Errorf("Oversize = %d, want 1", or.Oversize())
				}
			}
		})
	}
}

func TestSyslogOctetBufferedAndBigFrames(t *testing.T) {
	big := strings.Repeat("x", 200<<10) // larger than the initial buffer
	in := "3 one" + strconv.Itoa(len(big)) + " " + big + "3 two"
	r := NewSyslogReader(strings.NewReader(in), 1<<20, FramingOctetCounting)
	f, err := r.Next()
	if err != nil || string(f) != "one" {
		t.Fatalf("%q %v", f, err)
	}
	f, err = r.Next()
	if err != nil || len(f) != len(big) {
		t.Fatalf("big frame: %d bytes, %v", len(f), err)
	}
	f, _ = r.Next()
	if string(f) != "two" {
		t.Errorf("%q", f)
	}
	if r.Buffered() {
		t.Error("nothing is left")
	}
	small := NewSyslogReader(strings.NewReader("1 a1 b"), 0, FramingOctetCounting)
	if small.Buffered() {
		t.Error("nothing was read yet")
	}
	_, _ = small.Next()
	if !small.Buffered() {
		t.Error("the second frame came with the first one and is buffered")
	}
}

func TestSyslogOctetDoesNotTrustTheDeclaredLength(t *testing.T) {
	// A sender declaring ~1 GiB (under a 2 GiB cap) and sending a few bytes
	// must not make the reader allocate the declared size.
	r := NewSyslogReader(io.MultiReader(strings.NewReader("1000000000 abc"), iotest.ErrReader(io.EOF)), 2<<30, FramingOctetCounting)
	_, err := r.Next()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal(err)
	}
	if cap(r.buf) > 1<<20 {
		t.Errorf("buffer grew to %d bytes for 14 bytes of input", cap(r.buf))
	}
}

// FuzzSyslogOctet checks the reader against a direct reading of RFC 6587:
// the same frames, no panic, and memory bounded by the input, not by the
// declared lengths.
func FuzzSyslogOctet(f *testing.F) {
	for _, s := range []string{"5 hello3 abc", "05 x", "2147483648 x", "3 ab", "1 a\n", "<13>x\n", "99999999999 "} {
		f.Add([]byte(s), uint16(64))
	}
	f.Fuzz(func(t *testing.T, in []byte, max uint16) {
		m := int(max%4096) + 1
		r := NewSyslogReader(bytes.NewReader(in), m, FramingOctetCounting)
		var got [][]byte
		var err error
		for {
			var fr []byte
			fr, err = r.Next()
			if err != nil {
				break
			}
			got = append(got, bytes.Clone(fr))
			if len(fr) > m {
				t.Fatalf("frame of %d bytes over the cap %d", len(fr), m)
			}
		}
		want, wantErr := referenceFrames(in, m)
		if len(got) != len(want) {
			t.Fatalf("got %d frames, want %d (%v / %v)", len(got), len(want), err, wantErr)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d: %q, want %q", i, got[i], want[i])
			}
		}
		if !errors.Is(err, wantErr) {
			t.Fatalf("error %v, want %v", err, wantErr)
		}
		if cap(r.buf) > 2*len(in)+64<<10 {
			t.Fatalf("buffer %d bytes for %d bytes of input", cap(r.buf), len(in))
		}
	})
}

func referenceFrames(in []byte, max int) ([][]byte, error) {
	var out [][]byte
	for len(in) > 0 {
		sp := bytes.IndexByte(in, ' ')
		digits := in
		if sp >= 0 {
			digits = in[:sp]
		}
		for i, c := range digits {
			if c < '0' || c > '9' || (i == 0 && c == '0') {
				return out, ErrSyslogFrame
			}
			if n, _ := strconv.Atoi(string(digits[:i+1])); n > max || i > 10 {
				return out, ErrSyslogTooLarge
			}
		}
		if sp < 0 {
			return out, io.ErrUnexpectedEOF
		}
		if sp == 0 {
			return out, ErrSyslogFrame
		}
		n, _ := strconv.Atoi(string(digits))
		if len(in) < sp+1+n {
			return out, io.ErrUnexpectedEOF
		}
		out = append(out, in[sp+1:sp+1+n])
		in = in[sp+1+n:]
	}
	return out, io.EOF
}

func BenchmarkOctetReader(b *testing.B) {
	msg := []byte(`<165>1 2026-11-22T00:00:00.000Z host app 42 ID7 [ex@32473 k="v"] a syslog message of typical length, say 150 bytes or so`)
	var stream []byte
	for range 1000 {
		stream = strconv.AppendInt(stream, int64(len(msg)), 10)
		stream = append(stream, ' ')
		stream = append(stream, msg...)
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	rd := bytes.NewReader(stream)
	for b.Loop() {
		rd.Reset(stream)
		r := NewSyslogReader(rd, DefaultMaxLine, FramingOctetCounting)
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}
