package framing

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readLines(t testing.TB, r io.Reader, max int) ([]string, int) {
	t.Helper()
	l := NewLineReader(r, max)
	var out []string
	for {
		line, err := l.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("unexpected error %v", err)
			}
			return out, l.Oversize()
		}
		out = append(out, string(line))
	}
}

func TestLines(t *testing.T) {
	got, over := readLines(t, strings.NewReader("a\nbb\r\n\nccc"), 10)
	assert.Equal(t, []string{"a", "bb", "", "ccc"}, got)
	assert.Zero(t, over)
}

// An over-long line is skipped up to its newline; reading resumes after it.
func TestOversizeResyncs(t *testing.T) {
	in := "ok\n" + strings.Repeat("x", 100) + "\nafter\n" + strings.Repeat("y", 11) + "\nend"
	got, over := readLines(t, iotest.OneByteReader(strings.NewReader(in)), 10)
	assert.Equal(t, []string{"ok", "after", "end"}, got)
	assert.Equal(t, 2, over)
}

// A huge line never makes the buffer grow past the cap.
func TestOversizeBoundsMemory(t *testing.T) {
	huge := io.MultiReader(strings.NewReader("first\n"), io.LimitReader(repeatReader('z'), 50<<20), strings.NewReader("\nlast\n"))
	l := NewLineReader(huge, 1<<20)
	var got []string
	for {
		line, err := l.Next()
		if err != nil {
			break
		}
		got = append(got, string(line))
		assert.LessOrEqual(t, len(l.buf), 1<<20+1)
	}
	assert.Equal(t, []string{"first", "last"}, got)
	assert.Equal(t, 1, l.Oversize())
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestBufferedAndGrowth(t *testing.T) {
	data := strings.Repeat("0123456789abcdef\n", 100000)
	l := NewLineReader(strings.NewReader(data), DefaultMaxLine)
	n := 0
	for {
		_, err := l.Next()
		if err != nil {
			break
		}
		n++
	}
	assert.Equal(t, 100000, n)
	assert.Equal(t, streamBuf, len(l.buf), "a busy stream grows its buffer")

	l = NewLineReader(strings.NewReader("a\nb\npartial"), 100)
	_, err := l.Next()
	require.NoError(t, err)
	assert.True(t, l.Buffered())
	_, _ = l.Next()
	assert.False(t, l.Buffered(), "the partial line needs a read")
	l.FlushPartial = false
	_, err = l.Next()
	assert.ErrorIs(t, err, io.EOF)
}

// FuzzLineReader: whatever the input and the read sizes, the reader yields
// exactly the lines of a reference split (minus over-long ones).
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\r\nccc\n"), uint8(3), uint8(1))
	f.Add([]byte("\n\n\nxxxxxxxxxxxxxxxxxxxx\nz"), uint8(8), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, max uint8, chunk uint8) {
		m := int(max%64) + 1
		c := int(chunk%16) + 1
		var want []string
		parts := bytes.Split(data, []byte("\n"))
		for i, p := range parts {
			if i == len(parts)-1 && len(p) == 0 {
				break
			}
			trimmed := bytes.TrimSuffix(p, []byte("\r"))
			if len(p) <= m {
				want = append(want, string(trimmed))
			} else if i == len(parts)-1 && len(p) <= m {
				want = append(want, string(trimmed))
			}
		}
		got, _ := readLines(t, &chunkReader{data: data, n: c}, m)
		if len(want) == 0 {
			want = nil
		}
		assert.Equal(t, want, got)
	})
}

type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}
