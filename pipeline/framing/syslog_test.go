package framing

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readAll returns every message and the final error.
func readAllSyslog(r *SyslogReader) ([]string, error) {
	var out []string
	for {
		msg, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, string(msg))
	}
}

// The framing Contract of formats.md §4.4, row by row.
func TestSyslogFramingContract(t *testing.T) {
	for _, c := range []struct {
		name, in string
		mode     SyslogFraming
		max      int
		want     []string
		err      string // substring; "" means io.EOF
		oversize int
	}{
		{"octet frames", "5 hello3 a\nb11 <13>1 - - -", FramingOctetCounting, 0, []string{"hello", "a\nb", "<13>1 - - -"}, "", 0},
		{"octet LF and NUL inside", "4 a\x00\nb", FramingOctetCounting, 0, []string{"a\x00\nb"}, "", 0},
		{"octet leading zero", "3 abc05 hello", FramingOctetCounting, 0, []string{"abc"}, "leading zero", 0},
		{"octet zero length", "0 ", FramingOctetCounting, 0, nil, "leading zero", 0},
		{"octet missing SP", "3 abc3abc", FramingOctetCounting, 0, []string{"abc"}, "followed by 0x61, not SP", 0},
		{"octet beyond the data", "3 abc10 short", FramingOctetCounting, 0, []string{"abc"}, "stream ended inside a frame", 0},
		{"octet ends in MSG-LEN", "3 abc12", FramingOctetCounting, 0, []string{"abc"}, "stream ended inside a frame", 0},
		{"octet beyond the cap", "3 abc11 hello world", FramingOctetCounting, 10, []string{"abc"}, "over the limit of 10 bytes", 1},
		{"octet not a digit", "3 abc\n3 abc", FramingOctetCounting, 0, []string{"abc"}, "0x0a where MSG-LEN belongs", 0},
		{"octet huge length", "99999999999999999999999 x", FramingOctetCounting, 0, nil, "over the limit", 1},
		{"octet empty stream", "", FramingOctetCounting, 0, nil, "", 0},
		{"LF trailer", "<13>a\n<13>b\n", FramingNonTransparent, 0, []string{"<13>a", "<13>b"}, "", 0},
		{"NUL is data", "<13>a\x00<13>b\x00", FramingNonTransparent, 0, []string{"<13>a\x00<13>b\x00"}, "", 0},
		{"NUL before LF", "a\x00b\nc\r\nd", FramingNonTransparent, 0, []string{"a\x00b", "c", "d"}, "", 0},
		{"empty frames skipped", "\n\n\x00a\n\r\n\nb\n\x00", FramingNonTransparent, 0, []string{"\x00a", "b", "\x00"}, "", 0},
		{"unterminated last flushed", "a\nlast", FramingNonTransparent, 0, []string{"a", "last"}, "", 0},
		{"oversize discarded", "abc\n0123456789ABC\ndef\n", FramingNonTransparent, 10, []string{"abc", "def"}, "", 1},
		{"oversize at the end", "abc\n0123456789ABC", FramingNonTransparent, 10, []string{"abc"}, "", 1},
		{"auto octet", "5 hello5 world", FramingAuto, 0, []string{"hello", "world"}, "", 0},
		{"auto LF", "<13>hello\n<13>world", FramingAuto, 0, []string{"<13>hello", "<13>world"}, "", 0},
		{"auto other", "Nov 20 08:00:37 host sshd[1]: x\n", FramingAuto, 0, []string{"Nov 20 08:00:37 host sshd[1]: x"}, "", 0},
		{"auto NUL is data", "<13>1 - web app - - - hi\x00<8>1 - dc01 kernel - - - forged\n", FramingAuto, 0, []string{"<13>1 - web app - - - hi\x00<8>1 - dc01 kernel - - - forged"}, "", 0},
		{"auto leading zero", "05 hello", FramingAuto, 0, nil, "leading zero", 0},
		{"auto empty", "", FramingAuto, 0, nil, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, oneByte := range []bool{false, true} {
				var src io.Reader = strings.NewReader(c.in)
				if oneByte {
					src = iotest.OneByteReader(src)
				}
				r := NewSyslogReader(src, c.max, c.mode)
				got, err := readAllSyslog(r)
				if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.want) {
					t.Errorf("oneByte=%v: messages %q, want %q", oneByte, got, c.want)
				}
				switch {
				case c.err == "" && err != io.EOF:
					t.Errorf("oneByte=%v: error %v, want io.EOF", oneByte, err)
				case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrSyslogFrame)):
					t.Errorf("oneByte=%v: error %v, want one containing %q", oneByte, err, c.err)
				}
				if _, again := r.Next(); again == nil || again.Error() != err.Error() {
					t.Errorf("oneByte=%v: the error is not final: %v then %v", oneByte, err, again)
				}
				if r.Oversize() != c.oversize {
					t.Errorf("oneByte=%v: Oversize %d, want %d", oneByte, r.Oversize(), c.oversize)
				}
			}
		})
	}
}

// With NULTrailer, NUL ends a non-transparent message as LF does; octet
// counting still carries it as data.
func TestSyslogNULTrailer(t *testing.T) {
	for _, c := range []struct {
		name, in string
		mode     SyslogFraming
		want     []string
	}{
		{"NUL trailer", "<13>a\x00<13>b\x00", FramingNonTransparent, []string{"<13>a", "<13>b"}},
		{"mixed trailers", "a\x00b\nc\r\nd", FramingNonTransparent, []string{"a", "b", "c", "d"}},
		{"CR kept before NUL", "a\r\x00b", FramingNonTransparent, []string{"a\r", "b"}},
		{"empty frames skipped", "\n\n\x00a\n\r\n\nb\n\x00", FramingNonTransparent, []string{"a", "b"}},
		{"auto", "<13>a\x00<14>b\n", FramingAuto, []string{"<13>a", "<14>b"}},
		{"octet counting carries NUL", "4 a\x00\nb", FramingAuto, []string{"a\x00\nb"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, oneByte := range []bool{false, true} {
				var src io.Reader = strings.NewReader(c.in)
				if oneByte {
					src = iotest.OneByteReader(src)
				}
				r := NewSyslogReader(src, 0, c.mode)
				r.NULTrailer = true
				got, err := readAllSyslog(r)
				if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.want) || err != io.EOF {
					t.Errorf("oneByte=%v: messages %q (%v), want %q", oneByte, got, err, c.want)
				}
			}
		})
	}
}

// countingReader serves a fixed prefix, then endless data, and counts.
type countingReader struct {
	prefix []byte
	n      int
}

func (c *countingReader) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		k := copy(p, c.prefix)
		c.prefix = c.prefix[k:]
		c.n += k
		return k, nil
	}
	for i := range p {
		p[i] = 'x'
	}
	c.n += len(p)
	return len(p), nil
}

// A MSG-LEN over the cap is refused when its digits arrive, before any of
// the message is read.
func TestSyslogCapWithoutBuffering(t *testing.T) {
	src := &countingReader{prefix: []byte("2000000000 ")}
	r := NewSyslogReader(iotest.OneByteReader(src), 1<<20, FramingOctetCounting)
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("err = %v", err)
	}
	if src.n > 8 {
		t.Errorf("read %d bytes before refusing", src.n)
	}
	// Non-transparent: an endless line is discarded in pieces, never held.
	src = &countingReader{prefix: []byte("ok\n")}
	r = NewSyslogReader(io.LimitReader(src, 50<<20), 1<<20, FramingNonTransparent)
	msg, err := r.Next()
	if err != nil || string(msg) != "ok" {
		t.Fatalf("first message %q, %v", msg, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("err = %v", err)
	}
	if r.Oversize() != 1 || len(r.buf) > 1<<20+64 {
		t.Errorf("Oversize %d, buffer %d bytes", r.Oversize(), len(r.buf))
	}
}

// Frames larger than the first buffer grow it, up to the cap.
func TestSyslogLargeFrames(t *testing.T) {
	big := strings.Repeat("0123456789", 30_000) // 300 kB
	in := strconv.Itoa(len(big)) + " " + big + "2 ok"
	r := NewSyslogReader(iotest.HalfReader(strings.NewReader(in)), 1<<20, FramingAuto)
	got, err := readAllSyslog(r)
	if err != io.EOF || len(got) != 2 || got[0] != big || got[1] != "ok" {
		t.Fatalf("%d messages, %v", len(got), err)
	}
	r = NewSyslogReader(strings.NewReader(big+"\nok\n"), 1<<20, FramingNonTransparent)
	got, err = readAllSyslog(r)
	if err != io.EOF || len(got) != 2 || got[0] != big {
		t.Fatalf("non-transparent: %d messages, %v", len(got), err)
	}
}

// Buffered is true exactly when Next can answer without reading.
func TestSyslogBuffered(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	r := NewSyslogReader(pr, 0, FramingAuto)
	go func() {
		pw.Write([]byte("3 abc4 de"))
		pw.Write([]byte("fg"))
		pw.Close()
	}()
	if r.Buffered() {
		t.Error("Buffered before the first read")
	}
	if msg, err := r.Next(); err != nil || string(msg) != "abc" {
		t.Fatalf("Next = %q, %v", msg, err)
	}
	if r.Framing() != FramingOctetCounting {
		t.Errorf("framing %v", r.Framing())
	}
	if r.Buffered() {
		t.Error("Buffered with half a frame")
	}
	if msg, err := r.Next(); err != nil || string(msg) != "defg" {
		t.Fatalf("Next = %q, %v", msg, err)
	}
	nt := NewSyslogReader(strings.NewReader("a\nb\nc"), 0, FramingNonTransparent)
	nt.Next()
	if !nt.Buffered() {
		t.Error("non-transparent: b is buffered")
	}
}

func TestParseSyslogFraming(t *testing.T) {
	for _, s := range []string{"auto", "octet-counting", "non-transparent"} {
		f, err := ParseSyslogFraming(s)
		if err != nil || f.String() != s {
			t.Errorf("%s: %v %v", s, f, err)
		}
	}
	if _, err := ParseSyslogFraming("newline"); err == nil {
		t.Error("newline accepted")
	}
}

// Emit hands on every message before a broken frame, then returns the
// framing error; oversize messages are counted as drops.
func TestEmitSyslog(t *testing.T) {
	set := pipelinetest.Settings(t, "inputs.test")
	tel := set.Telemetry.(*pipelinetest.Telemetry)
	var em pipelinetest.Emitter
	r := NewSyslogReader(strings.NewReader("3 abc3 def05 x"), 0, FramingAuto)
	err := Emit(context.Background(), r, pipeline.Record{Source: "tcp://test"}, 1, &em, set, nil)
	if !errors.Is(err, ErrSyslogFrame) {
		t.Fatalf("err = %v", err)
	}
	if got := em.Lines(); fmt.Sprint(got) != "[abc def]" || em.Batches != 2 {
		t.Errorf("emitted %q in %d batches", got, em.Batches)
	}
	em = pipelinetest.Emitter{}
	r = NewSyslogReader(strings.NewReader("a\n0123456789ABC\nb\n"), 10, FramingNonTransparent)
	if err := Emit(context.Background(), r, pipeline.Record{}, 0, &em, set, nil); err != io.EOF {
		t.Fatalf("err = %v", err)
	}
	if got := em.Lines(); fmt.Sprint(got) != "[a b]" || em.Batches != 1 || tel.Dropped("oversize") != 1 {
		t.Errorf("emitted %q in %d batches, %d dropped", got, em.Batches, tel.Dropped("oversize"))
	}
}

// serveOne accepts one connection on a random loopback port and returns
// what Emit handed on, once the peer closed.
func serveOne(t *testing.T) (addr string, result func() ([]string, SyslogFraming, error)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		msgs []string
		err  error
		mode SyslogFraming
	}
	done := make(chan res, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			done <- res{err: err}
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		var em pipelinetest.Emitter
		r := NewSyslogReader(c, 0, FramingAuto)
		err = Emit(context.Background(), r, pipeline.Record{}, 0, &em, pipelinetest.Settings(t, "inputs.test"), nil)
		done <- res{em.Lines(), err, r.Framing()}
	}()
	return ln.Addr().String(), func() ([]string, SyslogFraming, error) {
		r := <-done
		return r.msgs, r.mode, r.err
	}
}

// TestIntegrationLogger reads what util-linux logger(1), a real sender,
// writes over TCP in both RFC 6587 framings, auto-detected.
func TestIntegrationLogger(t *testing.T) {
	if testing.Short() {
		t.Skip("runs logger(1)")
	}
	bin, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("logger(1) not installed")
	}
	for _, c := range []struct {
		name string
		args []string
		mode SyslogFraming
	}{
		{"octet-counting", []string{"--octet-count"}, FramingOctetCounting},
		{"non-transparent", nil, FramingNonTransparent},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, result := serveOne(t)
			host, port, _ := net.SplitHostPort(addr)
			args := append([]string{"-n", host, "-P", port, "-T", "--rfc5424", "-t", "terntest", "--msgid", "ID1",
				"--sd-id", "x@32473", "--sd-param", `a="b \"c\""`}, c.args...)
			cmd := exec.Command(bin, args...)
			cmd.Stdin = strings.NewReader("first message\nsecond message\nthird, with = and ] and é\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("logger: %v: %s", err, out)
			}
			msgs, mode, err := result()
			if err != io.EOF {
				t.Fatalf("err = %v", err)
			}
			if mode != c.mode {
				t.Errorf("detected %v, want %v", mode, c.mode)
			}
			if len(msgs) != 3 {
				t.Fatalf("%d messages: %q", len(msgs), msgs)
			}
			for i, want := range []string{"first message", "second message", "third, with = and ] and é"} {
				// logger adds its own [timeQuality ...] element first.
				if !strings.HasPrefix(msgs[i], "<13>1 ") || !strings.Contains(msgs[i], " terntest - ID1 [timeQuality ") ||
					!strings.HasSuffix(msgs[i], `][x@32473 a="b \"c\""] `+want) {
					t.Errorf("message %d: %q", i, msgs[i])
				}
			}
		})
	}
}

func FuzzSyslogReader(f *testing.F) {
	for _, s := range []string{
		"5 hello3 a\nb11 <13>1 - - -", "3 abc05 hello", "3 abc10 short", "99999999999999999999999 x",
		"a\x00b\nc\r\nd", "\n\n\x00a\n\r\n\nb\n\x00", "abc\n0123456789ABC\ndef\n", "<13>1 - - - - - - x\n",
	} {
		f.Add([]byte(s), uint8(0), uint16(0))
		f.Add([]byte(s), uint8(1), uint16(10))
		f.Add([]byte(s), uint8(2), uint16(4))
	}
	f.Add([]byte("a\x00b\nc"), uint8(6), uint16(0)) // NULTrailer (bit 2), auto
	calls := 0
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, max uint16) {
		nul := mode&4 != 0
		// First pass: what reading costs (R26: 4 × input + 64 KiB, plus
		// the reader itself).
		// ReadMemStats stops the world: every 16th input is measured.
		calls++
		measure := calls%16 == 1 || !fuzzing()
		var ms runtime.MemStats
		if measure {
			runtime.ReadMemStats(&ms)
		}
		before := ms.TotalAlloc
		r := NewSyslogReader(bytes.NewReader(data), int(max), SyslogFraming(mode%3))
		r.NULTrailer = nul
		for {
			msg, err := r.Next()
			if err != nil {
				break
			}
			if len(msg) > r.max {
				t.Fatalf("message of %d bytes, cap %d", len(msg), r.max)
			}
		}
		if measure {
			runtime.ReadMemStats(&ms)
			if got, limit := ms.TotalAlloc-before, uint64(4*len(data)+64<<10+1<<10); got > limit {
				t.Errorf("%d bytes allocated for %d bytes of input (limit %d)", got, len(data), limit)
			}
		}
		// Second pass: what the messages are (copied: a message is only
		// valid until the next call).
		r = NewSyslogReader(bytes.NewReader(data), int(max), SyslogFraming(mode%3))
		r.NULTrailer = nul
		var frames [][]byte
		var err error
		for {
			var msg []byte
			if msg, err = r.Next(); err != nil {
				break
			}
			frames = append(frames, bytes.Clone(msg))
		}
		if err != io.EOF && !errors.Is(err, ErrSyslogFrame) {
			t.Fatalf("err = %v", err)
		}
		switch r.Framing() {
		case FramingOctetCounting:
			// The frames, re-framed, are the start of the input.
			var re []byte
			for _, m := range frames {
				re = append(strconv.AppendInt(re, int64(len(m)), 10), ' ')
				re = append(re, m...)
			}
			if !bytes.HasPrefix(data, re) || (err == io.EOF && len(re) != len(data)) {
				t.Fatalf("frames %q do not re-frame to the input %q", frames, data)
			}
		case FramingNonTransparent:
			for _, m := range frames {
				if len(m) == 0 || bytes.IndexByte(m, '\n') >= 0 || (nul && bytes.IndexByte(m, 0) >= 0) {
					t.Fatalf("message %q", m)
				}
			}
		}
	})
}

// fuzzing reports whether the test runs with -fuzz (not just the seeds),
// when exact allocation checks are sampled for speed.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}
