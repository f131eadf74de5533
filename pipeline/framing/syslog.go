package framing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// SyslogFraming is how syslog messages are delimited on a stream (RFC 6587).
type SyslogFraming uint8

const (
	// FramingAuto picks per connection from the first byte: a digit means
	// octet counting, anything else non-transparent framing.
	FramingAuto SyslogFraming = iota
	// FramingOctetCounting is "MSG-LEN SP SYSLOG-MSG", transparent to any
	// byte in the message (RFC 6587 §3.4.1, RFC 5425).
	FramingOctetCounting
	// FramingNonTransparent ends each message with LF (a CR before it is
	// dropped too), or with NUL as well when SyslogReader.NULTrailer is set;
	// messages cannot contain the trailers.
	FramingNonTransparent
)

var framingNames = [...]string{"auto", "octet-counting", "non-transparent"}

func (f SyslogFraming) String() string {
	if int(f) < len(framingNames) {
		return framingNames[f]
	}
	return fmt.Sprintf("SyslogFraming(%d)", f)
}

// ParseSyslogFraming reads "auto", "octet-counting" or "non-transparent"
// (or the same with underscores, as config keys spell them).
func ParseSyslogFraming(s string) (SyslogFraming, error) {
	for i, n := range framingNames {
		if n == s || strings.ReplaceAll(n, "-", "_") == s {
			return SyslogFraming(i), nil
		}
	}
	return 0, fmt.Errorf("unknown syslog framing %q (auto, octet-counting, non-transparent)", s)
}

// ErrSyslogFrame is wrapped by the errors of a stream that breaks the
// octet-counting framing. They are final: the stream cannot be
// resynchronised, so the connection should be closed.
var ErrSyslogFrame = errors.New("syslog framing")

// ErrSyslogTooLarge is the framing error of an octet-counted frame whose
// MSG-LEN exceeds the cap; it is refused before any of the frame is read,
// and counted in Oversize. errors.Is matches it and ErrSyslogFrame.
var ErrSyslogTooLarge = fmt.Errorf("%w: octet counting: frame larger than the limit", ErrSyslogFrame)

// maxLenDigits bounds MSG-LEN's digits before the cap check can overflow.
const maxLenDigits = 18

// SyslogReader reads syslog messages framed as RFC 6587 describes. Like
// LineReader it reads in large chunks and returns messages as slices of its
// buffer, valid until the next call that may read (see Buffered), and it
// never holds more than its cap of one message:
//
//   - octet counting fails on a MSG-LEN with a leading zero, one not
//     followed by SP, one larger than the cap (at once, before any of the
//     message is read), or a stream that ends inside a frame; messages
//     before the bad frame have been returned by then;
//   - non-transparent framing ends messages at LF (and at NUL with
//     NULTrailer; otherwise NUL is data, RFC 6587 §3.4.2), skips empty
//     messages, discards (and counts in Oversize) messages over the cap up
//     to their trailer, and returns an unterminated last message at the
//     end of the stream.
type SyslogReader struct {
	r io.Reader
	window
	max        int
	mode       SyslogFraming
	discarding bool
	err        error // from r, io.EOF at the end
	ferr       error // a framing error, final

	oversize int // see Oversize
	// KeepCR keeps a '\r' before an LF trailer (it is dropped by default).
	KeepCR bool
	// NULTrailer makes NUL end a non-transparent message too, for senders
	// that use it. Off by default: a NUL inside a message would split it,
	// and the bytes after it would pass for a second message whose header
	// (host, severity) the sender chose.
	NULTrailer bool
}

// NewSyslogReader returns a reader of messages of at most max bytes
// (DefaultMaxLine when max <= 0) in the given framing.
func NewSyslogReader(r io.Reader, max int, mode SyslogFraming) *SyslogReader {
	if max <= 0 {
		max = DefaultMaxLine
	}
	// 16 KiB holds a burst of typical messages; the buffer doubles, up to
	// the cap, only when one message needs more.
	return &SyslogReader{r: r, window: window{buf: make([]byte, min(16<<10, max+maxLenDigits+2))}, max: max, mode: mode}
}

// Framing is the framing in use: FramingAuto until the first byte decided.
func (s *SyslogReader) Framing() SyslogFraming { return s.mode }

// Oversize counts the messages refused so far for exceeding the cap:
// non-transparent ones are skipped, an octet-counted one ends the stream.
func (s *SyslogReader) Oversize() int { return s.oversize }

// Unread is the number of bytes read but not yet returned by Next.
func (s *SyslogReader) Unread() int { return s.end - s.start }

// Buffered reports whether a complete message can be returned without
// reading, i.e. whether Next will not invalidate messages returned earlier.
func (s *SyslogReader) Buffered() bool {
	if s.ferr != nil {
		return false
	}
	switch s.mode {
	case FramingOctetCounting:
		_, _, ok, _ := s.octetFrame()
		return ok
	case FramingNonTransparent:
		return !s.discarding && s.bufferedNonTransparent()
	}
	return false
}

// bufferedNonTransparent looks for a message Next would return: empty and
// over-long ones are skipped by Next, which may then read and overwrite
// messages a caller still holds, so they do not count.
func (s *SyslogReader) bufferedNonTransparent() bool {
	for b := s.buf[s.start:s.end]; ; {
		i := s.trailer(b)
		if i < 0 {
			return false
		}
		n := i
		if b[i] == '\n' && !s.KeepCR && n > 0 && b[n-1] == '\r' {
			n--
		}
		if n > 0 && n <= s.max {
			return true
		}
		b = b[i+1:]
	}
}

// Next returns the next message. At a clean end of the stream it returns
// io.EOF (or the reader's error); a broken octet-counting stream gives an
// error wrapping ErrSyslogFrame, then the same error on every call.
func (s *SyslogReader) Next() ([]byte, error) {
	if s.ferr != nil {
		return nil, s.ferr
	}
	if s.mode == FramingAuto {
		for s.start == s.end {
			if s.err != nil {
				return nil, s.err
			}
			s.fill()
		}
		if c := s.buf[s.start]; '0' <= c && c <= '9' {
			s.mode = FramingOctetCounting
		} else {
			s.mode = FramingNonTransparent
		}
	}
	if s.mode == FramingOctetCounting {
		return s.nextOctet()
	}
	return s.nextNonTransparent()
}

// octetFrame looks for a whole frame at the start of the buffer. It
// returns the message bounds and ok, or an error the buffered bytes already
// prove (which needs no more data).
func (s *SyslogReader) octetFrame() (lo, hi int, ok bool, err error) {
	b := s.buf[s.start:s.end]
	if len(b) == 0 {
		return 0, 0, false, nil
	}
	if b[0] < '1' || b[0] > '9' {
		if b[0] == '0' {
			return 0, 0, false, fmt.Errorf("%w: octet counting: MSG-LEN has a leading zero", ErrSyslogFrame)
		}
		return 0, 0, false, fmt.Errorf("%w: octet counting: 0x%02x where MSG-LEN belongs", ErrSyslogFrame, b[0])
	}
	n, i := 0, 0
	for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		n = n*10 + int(b[i]-'0')
		if n > s.max || i >= maxLenDigits {
			return 0, 0, false, fmt.Errorf("%w: MSG-LEN over the limit of %d bytes", ErrSyslogTooLarge, s.max)
		}
	}
	if i == len(b) {
		return 0, 0, false, nil
	}
	if b[i] != ' ' {
		return 0, 0, false, fmt.Errorf("%w: octet counting: MSG-LEN %d followed by 0x%02x, not SP", ErrSyslogFrame, n, b[i])
	}
	i++
	if len(b)-i < n {
		return 0, 0, false, nil
	}
	return s.start + i, s.start + i + n, true, nil
}

func (s *SyslogReader) nextOctet() ([]byte, error) {
	for {
		lo, hi, ok, err := s.octetFrame()
		if err != nil {
			if errors.Is(err, ErrSyslogTooLarge) {
				s.oversize++
			}
			s.ferr = err
			return nil, err
		}
		if ok {
			s.start = hi
			return s.buf[lo:hi:hi], nil
		}
		if s.err != nil {
			if s.start == s.end {
				return nil, s.err
			}
			s.ferr = fmt.Errorf("%w: octet counting: stream ended inside a frame (%d bytes pending): %w", ErrSyslogFrame, s.end-s.start, io.ErrUnexpectedEOF)
			return nil, s.ferr
		}
		s.fill()
	}
}

// trailer finds the first LF, or NUL with NULTrailer.
func (s *SyslogReader) trailer(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if !s.NULTrailer {
		return i
	}
	if i < 0 {
		return bytes.IndexByte(b, 0)
	}
	if j := bytes.IndexByte(b[:i], 0); j >= 0 {
		return j
	}
	return i
}

func (s *SyslogReader) nextNonTransparent() ([]byte, error) {
	for {
		if s.discarding {
			if i := s.trailer(s.buf[s.start:s.end]); i >= 0 {
				s.start += i + 1
				s.discarding = false
			} else {
				s.start, s.end = 0, 0
			}
		}
		if !s.discarding {
			b := s.buf[s.start:s.end]
			if i := s.trailer(b); i >= 0 {
				msg := b[:i:i]
				s.start += i + 1
				if b[i] == '\n' && !s.KeepCR && len(msg) > 0 && msg[len(msg)-1] == '\r' {
					msg = msg[:len(msg)-1]
				}
				if len(msg) == 0 {
					continue
				}
				if len(msg) > s.max {
					s.oversize++
					continue
				}
				return msg, nil
			}
			if len(b) > s.max {
				s.oversize++
				s.discarding = true
				s.start, s.end = 0, 0
				continue
			}
		}
		if s.err != nil {
			if !s.discarding && s.end > s.start {
				msg := s.buf[s.start:s.end:s.end]
				s.start = s.end
				return msg, nil
			}
			return nil, s.err
		}
		s.fill()
	}
}

// fill compacts the buffer, grows it (up to the cap) when a message
// fills it, and reads once.
func (s *SyslogReader) fill() {
	if s.start > 0 {
		n := copy(s.buf, s.buf[s.start:s.end])
		s.start, s.end = 0, n
	}
	if s.end == len(s.buf) && len(s.buf) < s.max+maxLenDigits+2 {
		// Grown with the data that arrives, never to a declared size.
		s.buf, s.rb = growBuf(s.buf[:s.end], min(2*len(s.buf), s.max+maxLenDigits+2))
	}
	free := len(s.buf) - s.end
	n, err := s.r.Read(s.buf[s.end:])
	s.end += n
	if n == free && len(s.buf) < streamBuf {
		// The read filled every free byte: more is waiting, and a busy
		// stream is read in large pieces.
		s.buf, s.rb = growBuf(s.buf[:s.end], min(2*len(s.buf), streamBuf))
	}
	if err != nil {
		s.err = err
	}
}
