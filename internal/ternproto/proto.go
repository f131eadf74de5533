// Package ternproto is tern's router-to-router protocol: batches of native
// messages over a stream, acknowledged by the receiver once the engine has
// taken them under the delivery contract. The wire format is described in
// README.md. The tcp input (framing = "native") serves it with Serve; the
// tern output, the client library and `tern inject`/`tern flood` speak it
// with Conn.
package ternproto

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/framing"
)

// Version is the protocol version this package speaks.
const Version = 1

// Frame kinds of the protocol (framing.FrameMessage, 'M', carries one
// message inside a batch).
const (
	KindHello = 'H' // first frame in each direction: version, frame limit, name
	KindBatch = 'B' // sender → receiver: sequence number, then 'M' frames
	KindAck   = 'A' // receiver → sender: sequence number, status, reason
	KindError = 'E' // either side, before it closes: a reason in text
)

// Ack statuses.
const (
	// StatusOK means every message of the batch was delivered or moved to
	// the dead-letter route: the sender may forget the batch.
	StatusOK = 0
	// StatusRetry means the receiver could not take the batch (it stopped
	// first): the sender must send it again, to this or another receiver.
	StatusRetry = 1
)

// Sizes of the fixed parts.
const (
	helloLen    = 1 + 4 // version, max frame
	batchHdrLen = 8     // sequence number
	ackHdrLen   = 8 + 1 // sequence number, status
	maxName     = 64    // bytes of a hello's name that are kept
	maxReason   = 1024  // bytes of an ack's or error's text that are kept
)

// Hello is the first frame each side sends.
type Hello struct {
	Version int
	// MaxFrame is the largest frame payload the sender of the hello
	// accepts; the peer must keep its batches within it.
	MaxFrame int
	// Name identifies the peer in logs ("tern/edge-1", "client/app").
	Name string
}

// AppendHello appends a hello frame.
func AppendHello(dst []byte, h Hello) []byte {
	name := h.Name
	if len(name) > maxName {
		name = name[:maxName]
	}
	p := make([]byte, 0, helloLen+len(name))
	p = append(p, byte(h.Version))
	p = binary.BigEndian.AppendUint32(p, uint32(h.MaxFrame))
	p = append(p, name...)
	return framing.AppendFrame(dst, KindHello, p)
}

// ParseHello reads the payload of a hello frame.
func ParseHello(p []byte) (Hello, error) {
	if len(p) < helloLen {
		return Hello{}, errors.New("ternproto: hello too short")
	}
	name := p[helloLen:]
	if len(name) > maxName {
		name = name[:maxName]
	}
	return Hello{Version: int(p[0]), MaxFrame: int(binary.BigEndian.Uint32(p[1:])), Name: string(name)}, nil
}

// BatchWriter builds one batch frame in place: Begin, any number of Add
// or AddFrame, then Finish. The frame's length is set by Finish.
type BatchWriter struct {
	buf   []byte
	start int
	n     int
}

// Begin starts a batch with sequence number seq at the end of dst.
func (w *BatchWriter) Begin(dst []byte, seq uint64) {
	w.start = len(dst)
	w.n = 0
	dst = append(dst, framing.FrameMagic, KindBatch, 0, 0, 0, 0)
	w.buf = binary.BigEndian.AppendUint64(dst, seq)
}

// Add appends m in its native form.
func (w *BatchWriter) Add(m *pipeline.Message) {
	w.buf = framing.AppendMessageFrame(w.buf, m)
	w.n++
}

// AddFrame appends an 'M' frame that is already encoded (header included).
func (w *BatchWriter) AddFrame(frame []byte) {
	w.buf = append(w.buf, frame...)
	w.n++
}

// Undo removes the message added last; size is Size() from before it was
// added.
func (w *BatchWriter) Undo(size int) {
	w.buf = w.buf[:w.start+framing.FrameHeaderLen+size]
	w.n--
}

// SetBatchSeq rewrites the sequence number of a finished batch frame.
func SetBatchSeq(frame []byte, seq uint64) {
	binary.BigEndian.PutUint64(frame[framing.FrameHeaderLen:], seq)
}

// Len is the number of messages added; Size the payload bytes so far.
func (w *BatchWriter) Len() int  { return w.n }
func (w *BatchWriter) Size() int { return len(w.buf) - w.start - framing.FrameHeaderLen }

// Finish sets the frame length and returns the buffer holding the frame.
func (w *BatchWriter) Finish() []byte {
	binary.BigEndian.PutUint32(w.buf[w.start+2:], uint32(len(w.buf)-w.start-framing.FrameHeaderLen))
	return w.buf
}

// BatchOverhead is what a batch frame adds to its messages' 'M' frames.
const BatchOverhead = framing.FrameHeaderLen + batchHdrLen

// ParseBatch reads the payload of a batch frame: its sequence number and
// its messages, calling fn with the msgpack bytes of each (a slice of p).
// Inner frames of another kind, or bytes that are not a whole frame, end
// the walk: they are handed to fn as one last record (bad = true) so that
// the decoder turns them into a dead letter instead of losing them.
func ParseBatch(p []byte, fn func(msg []byte, bad bool)) (seq uint64, err error) {
	if len(p) < batchHdrLen {
		return 0, errors.New("ternproto: batch too short")
	}
	seq = binary.BigEndian.Uint64(p)
	p = p[batchHdrLen:]
	for len(p) > 0 {
		if len(p) < framing.FrameHeaderLen || p[0] != framing.FrameMagic || p[1] != framing.FrameMessage {
			fn(p, true)
			return seq, nil
		}
		n := binary.BigEndian.Uint32(p[2:])
		if uint64(n) > uint64(len(p)-framing.FrameHeaderLen) {
			fn(p, true)
			return seq, nil
		}
		end := framing.FrameHeaderLen + int(n)
		fn(p[framing.FrameHeaderLen:end:end], false)
		p = p[end:]
	}
	return seq, nil
}

// Ack is a receiver's answer to one batch.
type Ack struct {
	Seq    uint64
	Status int
	Reason string
}

// AppendAck appends an ack frame.
func AppendAck(dst []byte, a Ack) []byte {
	reason := a.Reason
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	start := len(dst)
	dst = append(dst, framing.FrameMagic, KindAck, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint64(dst, a.Seq)
	dst = append(dst, byte(a.Status))
	dst = append(dst, reason...)
	binary.BigEndian.PutUint32(dst[start+2:], uint32(len(dst)-start-framing.FrameHeaderLen))
	return dst
}

// ParseAck reads the payload of an ack frame.
func ParseAck(p []byte) (Ack, error) {
	if len(p) < ackHdrLen {
		return Ack{}, errors.New("ternproto: ack too short")
	}
	a := Ack{Seq: binary.BigEndian.Uint64(p), Status: int(p[8])}
	if len(p) > ackHdrLen {
		r := p[ackHdrLen:]
		if len(r) > maxReason {
			r = r[:maxReason]
		}
		a.Reason = string(r)
	}
	if a.Status != StatusOK && a.Status != StatusRetry {
		return a, fmt.Errorf("ternproto: ack of batch %d has unknown status %d", a.Seq, a.Status)
	}
	return a, nil
}

// AppendError appends an error frame holding msg.
func AppendError(dst []byte, msg string) []byte {
	if len(msg) > maxReason {
		msg = msg[:maxReason]
	}
	return framing.AppendFrame(dst, KindError, []byte(msg))
}

// PeerError is an error frame received from the peer.
type PeerError struct{ Msg string }

func (e *PeerError) Error() string { return "peer: " + e.Msg }
