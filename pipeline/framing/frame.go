package framing

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
)

// Native frames carry tern's binary data over streams (router to router,
// client to router, native files):
//
//	frame = 0x1E (FrameMagic) | kind byte | payload length (uint32, big-endian) | payload
//
// Kind FrameMessage ('M') holds one message in the native msgpack form
// (AppendMsgpack). Every other kind is carried as it is: kinds for batches,
// acknowledgements and the handshake belong to the router protocol.
const (
	FrameMagic      = 0x1E
	FrameHeaderLen  = 6
	FrameMessage    = 'M'
	DefaultMaxFrame = 4 << 20 // largest payload a reader accepts unless told otherwise
)

// Errors of FrameReader and SplitFrames.
var (
	ErrFrameTooLarge = errors.New("frame: payload larger than the limit")
	ErrBadMagic      = errors.New("frame: bad magic byte")
)

// AppendFrame appends a frame of the given kind holding payload.
func AppendFrame(dst []byte, kind byte, payload []byte) []byte {
	dst = append(dst, FrameMagic, kind)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// AppendMessageFrame appends a FrameMessage frame holding m, encoding m in
// place after the header.
func AppendMessageFrame(dst []byte, m *pipeline.Message) []byte {
	start := len(dst)
	dst = append(dst, FrameMagic, FrameMessage, 0, 0, 0, 0)
	dst = codec.AppendMsgpack(dst, m)
	binary.BigEndian.PutUint32(dst[start+2:], uint32(len(dst)-start-FrameHeaderLen))
	return dst
}

// FrameReader reads frames from a stream.
type FrameReader struct {
	br      *bufio.Reader
	max     int
	discard int    // bytes of the last frame still in br
	buf     []byte // payloads larger than br's buffer
	err     error
}

// NewFrameReader reads frames from r, refusing payloads larger than max
// bytes (DefaultMaxFrame when max <= 0). It buffers r unless r is a
// *bufio.Reader already.
func NewFrameReader(r io.Reader, max int) *FrameReader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &FrameReader{br: br, max: max}
}

// Next returns the next frame. payload is valid until the next call. At a
// clean end of the stream the error is io.EOF; when the stream ends inside
// a frame it is io.ErrUnexpectedEOF. A header declaring more than the
// limit gives ErrFrameTooLarge before any of the payload is read, and a
// wrong first byte ErrBadMagic. Errors are final: later calls return the
// same error, since the stream cannot be resynchronised.
func (fr *FrameReader) Next() (kind byte, payload []byte, err error) {
	if fr.err != nil {
		return 0, nil, fr.err
	}
	if fr.discard > 0 {
		_, _ = fr.br.Discard(fr.discard) // the bytes are buffered
		fr.discard = 0
	}
	kind, payload, err = fr.next()
	if err != nil {
		fr.err = err
	}
	return kind, payload, err
}

func (fr *FrameReader) next() (byte, []byte, error) {
	hdr, err := fr.br.Peek(FrameHeaderLen)
	if len(hdr) > 0 && hdr[0] != FrameMagic {
		return 0, nil, fmt.Errorf("%w 0x%02x", ErrBadMagic, hdr[0])
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(hdr) > 0 {
			return 0, nil, io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	if hdr[0] != FrameMagic {
		return 0, nil, fmt.Errorf("%w 0x%02x", ErrBadMagic, hdr[0])
	}
	kind := hdr[1]
	n := binary.BigEndian.Uint32(hdr[2:])
	if uint64(n) > uint64(fr.max) {
		return 0, nil, fmt.Errorf("%w: %d bytes > %d", ErrFrameTooLarge, n, fr.max)
	}
	total := FrameHeaderLen + int(n)
	if total <= fr.br.Size() {
		p, err := fr.br.Peek(total)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		fr.discard = total
		return kind, p[FrameHeaderLen:total:total], nil
	}
	_, _ = fr.br.Discard(FrameHeaderLen)
	// Grow with the data that actually arrives, not with the declared size.
	fr.buf = fr.buf[:0]
	for len(fr.buf) < int(n) {
		chunk := min(int(n)-len(fr.buf), 1<<20)
		if cap(fr.buf)-len(fr.buf) < chunk {
			fr.buf = append(fr.buf[:cap(fr.buf)], make([]byte, chunk)...)[:len(fr.buf)]
		}
		k, err := io.ReadFull(fr.br, fr.buf[len(fr.buf):len(fr.buf)+chunk])
		fr.buf = fr.buf[:len(fr.buf)+k]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
	}
	return kind, fr.buf, nil
}

// SplitFrames is a bufio.SplitFunc that splits a stream into frames of at
// most DefaultMaxFrame payload bytes; see FrameSplitter.
func SplitFrames(data []byte, atEOF bool) (advance int, token []byte, err error) {
	return splitFrames(data, atEOF, DefaultMaxFrame)
}

// FrameSplitter returns a bufio.SplitFunc whose tokens are whole frames,
// header included (the kind is token[1], the payload token[FrameHeaderLen:]).
// The Scanner's buffer must hold max+FrameHeaderLen bytes (Scanner.Buffer).
// Errors are those of FrameReader.
func FrameSplitter(max int) bufio.SplitFunc {
	return func(data []byte, atEOF bool) (int, []byte, error) { return splitFrames(data, atEOF, max) }
}

func splitFrames(data []byte, atEOF bool, max int) (int, []byte, error) {
	if len(data) == 0 {
		return 0, nil, nil
	}
	if data[0] != FrameMagic {
		return 0, nil, fmt.Errorf("%w 0x%02x", ErrBadMagic, data[0])
	}
	if len(data) < FrameHeaderLen {
		if atEOF {
			return 0, nil, io.ErrUnexpectedEOF
		}
		return 0, nil, nil
	}
	n := binary.BigEndian.Uint32(data[2:])
	if uint64(n) > uint64(max) {
		return 0, nil, fmt.Errorf("%w: %d bytes > %d", ErrFrameTooLarge, n, max)
	}
	total := FrameHeaderLen + int(n)
	if len(data) < total {
		if atEOF {
			return 0, nil, io.ErrUnexpectedEOF
		}
		return 0, nil, nil
	}
	return total, data[:total:total], nil
}
