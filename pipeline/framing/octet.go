package framing

import (
	"errors"
	"fmt"
	"io"
)

// Errors of OctetReader. Both are final: a byte stream whose framing is
// broken cannot be resynchronised, so the connection should be closed.
var (
	// ErrOctetFraming is a malformed MSG-LEN: a leading zero, a non-digit,
	// or no space after the digits.
	ErrOctetFraming = errors.New("octet counting: malformed frame length")
	// ErrOctetTooLarge is a declared length above the reader's cap; it is
	// returned as soon as the digits show it, before any payload is read.
	ErrOctetTooLarge = errors.New("octet counting: frame larger than the limit")
)

// OctetReader reads RFC 6587 octet-counted frames ("MSG-LEN SP MSG", the
// framing RFC 5425 mandates for syslog over TLS) from r. Like LineReader it
// returns frames as slices of its buffer, valid until the next call that may
// read (see Buffered), and never holds more than the cap plus the header.
type OctetReader struct {
	r          io.Reader
	buf        []byte
	start, end int
	max        int
	rerr       error // the reader's error, once seen
	err        error // final error

	// Oversize counts frames refused for declaring more than the cap (at
	// most one per stream, since the stream ends there).
	Oversize int
}

// NewOctetReader returns a reader of frames of at most max bytes.
func NewOctetReader(r io.Reader, max int) *OctetReader {
	if max <= 0 {
		max = DefaultMaxLine
	}
	return &OctetReader{r: r, buf: make([]byte, min(64<<10, max+maxOctetHeader)), max: max}
}

// maxOctetHeader bounds MSG-LEN and its space: ten digits cover any length
// an int32 cap allows.
const maxOctetHeader = 11

type hdrState int

const (
	hdrMore hdrState = iota
	hdrOK
	hdrBad
	hdrTooLarge
)

// header parses MSG-LEN SP at the start of p.
func (o *OctetReader) header(p []byte) (n, hdrLen int, st hdrState) {
	for i, c := range p {
		switch {
		case c >= '0' && c <= '9':
			if i == 0 && c == '0' {
				return 0, 0, hdrBad
			}
			n = n*10 + int(c-'0')
			if n > o.max {
				return n, 0, hdrTooLarge
			}
		case c == ' ' && i > 0:
			return n, i + 1, hdrOK
		default:
			return 0, 0, hdrBad
		}
	}
	return n, 0, hdrMore
}

// Buffered reports whether a complete frame can be returned without reading.
func (o *OctetReader) Buffered() bool {
	if o.err != nil {
		return false
	}
	p := o.buf[o.start:o.end]
	n, h, st := o.header(p)
	return st == hdrOK && len(p) >= h+n
}

// Next returns the next frame. At a clean end of the stream it returns the
// reader's error (io.EOF); a stream that ends inside a frame gives
// io.ErrUnexpectedEOF after every complete frame before it.
func (o *OctetReader) Next() ([]byte, error) {
	if o.err != nil {
		return nil, o.err
	}
	for {
		p := o.buf[o.start:o.end]
		n, h, st := o.header(p)
		switch st {
		case hdrOK:
			if len(p) >= h+n {
				o.start += h + n
				return p[h : h+n : h+n], nil
			}
		case hdrBad:
			bad := p[:min(len(p), 12)]
			return nil, o.fail(fmt.Errorf("%w: %q", ErrOctetFraming, bad))
		case hdrTooLarge:
			o.Oversize++
			return nil, o.fail(fmt.Errorf("%w: declared %d+ bytes, cap %d", ErrOctetTooLarge, n, o.max))
		}
		if o.rerr != nil {
			if o.end > o.start && errors.Is(o.rerr, io.EOF) {
				return nil, o.fail(io.ErrUnexpectedEOF)
			}
			return nil, o.fail(o.rerr)
		}
		need := maxOctetHeader
		if st == hdrOK {
			need = h + n
		}
		o.fill(need)
	}
}

func (o *OctetReader) fail(err error) error {
	o.err = err
	return err
}

// fill compacts the buffer, grows it to hold need bytes (at most the cap
// plus the header) and reads once.
func (o *OctetReader) fill(need int) {
	if o.start > 0 {
		k := copy(o.buf, o.buf[o.start:o.end])
		o.start, o.end = 0, k
	}
	if need > len(o.buf) {
		// Grow with the data, not with the declared length: a sender that
		// declares 1 MiB and sends 10 bytes costs a doubling, not 1 MiB.
		nb := make([]byte, min(max(2*len(o.buf), o.end+4096), need))
		copy(nb, o.buf[:o.end])
		o.buf = nb
	}
	k, err := o.r.Read(o.buf[o.end:])
	o.end += k
	if err != nil {
		o.rerr = err
	}
}
