// Package framing splits byte streams into records: newline-delimited lines
// here, and the syslog and native framings beside it. Every reader is bounded:
// a record longer than its cap is discarded (counted), never buffered whole.
package framing

import (
	"bytes"
	"errors"
	"io"
)

// DefaultMaxLine is the default cap on one line or frame (1 MiB).
const DefaultMaxLine = 1 << 20

// LineReader reads newline-delimited records from r. It reads in large
// chunks and returns lines as slices of its buffer, so a batch of lines costs
// no copy. Lines are valid until the next call that may read (see Buffered).
type LineReader struct {
	r io.Reader
	window
	max        int
	discarding bool // inside an over-long line, skipping to its newline
	err        error

	oversize int // lines dropped for exceeding the cap
	// KeepCR keeps a '\r' before the '\n' (it is stripped by default).
	KeepCR bool
	// FlushPartial makes the last line count even without a newline at EOF.
	FlushPartial bool
}

// NewLineReader returns a reader whose lines are at most max bytes (without
// the terminator).
func NewLineReader(r io.Reader, max int) *LineReader {
	if max <= 0 {
		max = DefaultMaxLine
	}
	// Start small so idle connections cost little; fill grows the buffer
	// while reads keep filling it (busy streams then need fewer syscalls).
	return &LineReader{r: r, window: window{buf: make([]byte, min(16<<10, max+1))}, max: max, FlushPartial: true}
}

// ErrLineTooLong is never returned; over-long lines are skipped and counted
// in Oversize. It documents the behaviour for callers that log it.
var ErrLineTooLong = errors.New("line exceeds the maximum size")

// Oversize counts the lines dropped so far for exceeding the cap.
func (l *LineReader) Oversize() int { return l.oversize }

// Unread is the number of bytes read but not yet returned by Next.
func (l *LineReader) Unread() int { return l.end - l.start }

// Buffered reports whether a complete line can be returned without reading,
// i.e. whether Next will not invalidate lines returned earlier.
func (l *LineReader) Buffered() bool {
	if l.discarding {
		return false
	}
	// Over-long lines do not count: Next skips them and may then have to
	// read, which would overwrite the lines a caller still holds.
	for p := l.buf[l.start:l.end]; ; {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return false
		}
		if i <= l.max {
			return true
		}
		p = p[i+1:]
	}
}

// Next returns the next line. It returns io.EOF (or the reader's error) when
// no more lines will come. Lines returned before a call that had to read are
// invalidated by it; callers hand them on first (see Buffered).
func (l *LineReader) Next() ([]byte, error) {
	for {
		if l.discarding {
			if i := bytes.IndexByte(l.buf[l.start:l.end], '\n'); i >= 0 {
				l.start += i + 1
				l.discarding = false
			} else {
				l.start, l.end = 0, 0
			}
		}
		if !l.discarding {
			if i := bytes.IndexByte(l.buf[l.start:l.end], '\n'); i >= 0 {
				line := l.buf[l.start : l.start+i]
				l.start += i + 1
				if len(line) > l.max {
					l.oversize++
					continue
				}
				return l.trim(line), nil
			}
			if l.end-l.start > l.max {
				// No newline within the cap: drop what we have and skip
				// to the next newline.
				l.oversize++
				l.discarding = true
				l.start, l.end = 0, 0
				continue
			}
		}
		if l.err != nil {
			if !l.discarding && l.end > l.start && l.FlushPartial {
				line := l.buf[l.start:l.end]
				l.start = l.end
				return l.trim(line), nil
			}
			return nil, l.err
		}
		l.fill()
	}
}

func (l *LineReader) grow(size int) {
	if size <= len(l.buf) {
		return
	}
	l.buf, l.rb = growBuf(l.buf[:l.end], size)
}

func (l *LineReader) trim(line []byte) []byte {
	if !l.KeepCR && len(line) > 0 && line[len(line)-1] == '\r' {
		return line[:len(line)-1]
	}
	return line
}

// fill compacts the buffer and reads once.
func (l *LineReader) fill() {
	if l.start > 0 {
		n := copy(l.buf, l.buf[l.start:l.end])
		l.start, l.end = 0, n
	}
	if l.end == len(l.buf) && len(l.buf) < l.max+1 {
		// A partial line fills the buffer: grow up to the cap.
		l.grow(min(2*len(l.buf), l.max+1))
	}
	free := len(l.buf) - l.end
	n, err := l.r.Read(l.buf[l.end:])
	l.end += n
	if n == free && len(l.buf) < streamBuf {
		// The read filled every free byte: more is waiting.
		l.grow(min(2*len(l.buf), streamBuf))
	}
	if err != nil {
		l.err = err
	}
}
