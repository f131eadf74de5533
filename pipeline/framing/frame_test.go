package framing_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/framing"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestFrameLayout(t *testing.T) {
	got := framing.AppendFrame([]byte("x"), 'A', []byte("hello"))
	if want := "x\x1eA\x00\x00\x00\x05hello"; string(got) != want {
		t.Fatalf("AppendFrame = %q", got)
	}
	m := pipelinetest.GoldenMessage()
	frame := framing.AppendMessageFrame(nil, m)
	if want := framing.AppendFrame(nil, framing.FrameMessage, codec.AppendMsgpack(nil, m)); !bytes.Equal(frame, want) {
		t.Fatalf("AppendMessageFrame = %x, want %x", frame, want)
	}
}

func TestFrameReader(t *testing.T) {
	var stream []byte
	big := bytes.Repeat([]byte("B"), 200<<10) // larger than the reader's buffer
	msgs := []*pipeline.Message{pipelinetest.GoldenMessage(), pipelinetest.W2Message()}
	for _, m := range msgs {
		stream = framing.AppendMessageFrame(stream, m)
	}
	stream = framing.AppendFrame(stream, 'K', nil)
	stream = framing.AppendFrame(stream, 'B', big)
	stream = framing.AppendFrame(stream, 'z', []byte("tail"))
	for name, r := range map[string]io.Reader{
		"plain":    bytes.NewReader(stream),
		"one byte": iotest.OneByteReader(bytes.NewReader(stream)),
		"bufio":    bufio.NewReaderSize(bytes.NewReader(stream), 16),
	} {
		fr := framing.NewFrameReader(r, 0)
		for i, want := range msgs {
			kind, p, err := fr.Next()
			if err != nil || kind != framing.FrameMessage {
				t.Fatalf("%s: frame %d: %c %v", name, i, kind, err)
			}
			var m pipeline.Message
			if err := codec.DecodeMsgpackBytes(p, &m, nil); err != nil || !m.Equal(want) {
				t.Fatalf("%s: frame %d: %v", name, i, err)
			}
		}
		for _, want := range []struct {
			kind byte
			p    []byte
		}{{'K', nil}, {'B', big}, {'z', []byte("tail")}} {
			kind, p, err := fr.Next()
			if err != nil || kind != want.kind || !bytes.Equal(p, want.p) {
				t.Fatalf("%s: got %c %d bytes %v, want %c", name, kind, len(p), err, want.kind)
			}
		}
		if _, _, err := fr.Next(); err != io.EOF {
			t.Fatalf("%s: at end: %v", name, err)
		}
		if _, _, err := fr.Next(); err != io.EOF {
			t.Fatalf("%s: after end: %v", name, err)
		}
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestFrameReaderErrors(t *testing.T) {
	frame := framing.AppendFrame(nil, 'M', []byte("0123456789"))
	cases := []struct {
		name  string
		in    []byte
		max   int
		want  error
		after int // complete frames before the error
	}{
		{"empty", nil, 0, io.EOF, 0},
		{"bad magic", []byte("{\"json\":1}"), 0, framing.ErrBadMagic, 0},
		{"bad magic later", append(append([]byte{}, frame...), 'x'), 0, framing.ErrBadMagic, 1},
		{"too large", frame, 9, framing.ErrFrameTooLarge, 0},
		{"header cut", frame[:3], 0, io.ErrUnexpectedEOF, 0},
		{"payload cut", frame[:10], 0, io.ErrUnexpectedEOF, 0},
		{"second cut", append(append([]byte{}, frame...), frame[:7]...), 0, io.ErrUnexpectedEOF, 1},
		{"exact max", frame, 10, io.EOF, 1},
	}
	for _, c := range cases {
		fr := framing.NewFrameReader(bytes.NewReader(c.in), c.max)
		for i := range c.after {
			if _, _, err := fr.Next(); err != nil {
				t.Fatalf("%s: frame %d: %v", c.name, i, err)
			}
		}
		_, _, err := fr.Next()
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
		if _, _, err2 := fr.Next(); !errors.Is(err2, c.want) {
			t.Errorf("%s: error not sticky: %v", c.name, err2)
		}
	}
	// A huge declared length fails at once, before the payload is read.
	hdr := []byte{framing.FrameMagic, 'M', 0xff, 0xff, 0xff, 0xff}
	cr := &countingReader{r: io.MultiReader(bytes.NewReader(hdr), strings.NewReader(strings.Repeat("x", 1<<20)))}
	fr := framing.NewFrameReader(iotest.OneByteReader(cr), 0)
	if _, _, err := fr.Next(); !errors.Is(err, framing.ErrFrameTooLarge) {
		t.Fatalf("huge header: %v", err)
	}
	if cr.n > 16 {
		t.Fatalf("read %d bytes of a refused frame", cr.n)
	}
	// A large declared length on a stream that then ends allocates little.
	hdr = []byte{framing.FrameMagic, 'M', 0x00, 0x3f, 0xff, 0xff}
	fr = framing.NewFrameReader(bytes.NewReader(append(hdr, make([]byte, 100<<10)...)), 0)
	if _, _, err := fr.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut large frame: %v", err)
	}
}

func TestSplitFrames(t *testing.T) {
	var stream []byte
	stream = framing.AppendMessageFrame(stream, pipelinetest.GoldenMessage())
	stream = framing.AppendFrame(stream, 'A', []byte("ack"))
	sc := bufio.NewScanner(iotest.HalfReader(bytes.NewReader(stream)))
	sc.Split(framing.SplitFrames)
	var kinds []byte
	for sc.Scan() {
		tok := sc.Bytes()
		kinds = append(kinds, tok[1])
		if tok[1] == 'A' && string(tok[framing.FrameHeaderLen:]) != "ack" {
			t.Fatalf("payload %q", tok)
		}
	}
	if sc.Err() != nil || string(kinds) != "MA" {
		t.Fatalf("kinds %q, err %v", kinds, sc.Err())
	}
	sc = bufio.NewScanner(bytes.NewReader(stream[:len(stream)-1]))
	sc.Split(framing.FrameSplitter(1 << 10))
	for sc.Scan() {
	}
	if !errors.Is(sc.Err(), io.ErrUnexpectedEOF) {
		t.Fatalf("cut stream: %v", sc.Err())
	}
	sc = bufio.NewScanner(bytes.NewReader(stream))
	sc.Split(framing.FrameSplitter(10))
	if sc.Scan() || !errors.Is(sc.Err(), framing.ErrFrameTooLarge) {
		t.Fatalf("small max: %v", sc.Err())
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add(framing.AppendMessageFrame(nil, pipelinetest.GoldenMessage()), uint16(0))
	f.Add(framing.AppendFrame(framing.AppendFrame(nil, 'A', []byte("x")), 'M', nil), uint16(3))
	f.Add([]byte{0x1e, 'M', 0xff, 0xff, 0xff, 0xff}, uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		fr := framing.NewFrameReader(bytes.NewReader(data), int(max))
		sc := bufio.NewScanner(bytes.NewReader(data))
		limit := int(max)
		if limit == 0 {
			limit = framing.DefaultMaxFrame
		}
		sc.Buffer(nil, limit+framing.FrameHeaderLen)
		sc.Split(framing.FrameSplitter(limit))
		consumed := 0
		for {
			kind, p, err := fr.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, framing.ErrBadMagic) && !errors.Is(err, framing.ErrFrameTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				if err == io.EOF && consumed != len(data) {
					t.Fatalf("EOF after %d of %d bytes", consumed, len(data))
				}
				if sc.Scan() {
					t.Fatal("splitter found a frame the reader did not")
				}
				return
			}
			if len(p) > limit {
				t.Fatalf("payload of %d bytes over the limit %d", len(p), limit)
			}
			if !bytes.Equal(framing.AppendFrame(nil, kind, p), data[consumed:consumed+framing.FrameHeaderLen+len(p)]) {
				t.Fatal("frame does not re-encode to its bytes")
			}
			consumed += framing.FrameHeaderLen + len(p)
			if !sc.Scan() || !bytes.Equal(sc.Bytes(), data[consumed-framing.FrameHeaderLen-len(p):consumed]) {
				t.Fatalf("splitter disagrees: %v", sc.Err())
			}
			if kind == framing.FrameMessage {
				var m pipeline.Message
				_ = codec.DecodeMsgpackBytes(p, &m, nil)
			}
		}
	})
}
