package ternproto

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/ternlog/tern/pipeline"
)

// ServeOptions configure the receiving side of one connection.
type ServeOptions struct {
	// MaxFrame caps a frame's payload (a whole batch); a larger frame ends
	// the connection. Default pipeline.DefaultMaxFrame.
	MaxFrame int
	// MaxInFlight caps the batches of a connection that are emitted but not
	// yet acknowledged; reading pauses at the cap. Default 64.
	MaxInFlight int
	// IdleTimeout closes a connection that sends nothing for this long while
	// nothing of it is in flight; 0 never does.
	IdleTimeout time.Duration
	// DrainTimeout is how long, once ctx ends, the connection stays open so
	// that acknowledgements of batches already taken still reach the sender
	// (what does not arrive in time is sent again by it). Default 5s.
	DrainTimeout time.Duration
	// WriteTimeout bounds writing one acknowledgement. Default 10s.
	WriteTimeout time.Duration
	// Name is sent in the hello ("tern/<host>").
	Name string
	// Source is the Record.Source of every record ("tern://<remote>").
	Source string
}

func (o *ServeOptions) defaults() {
	if o.MaxFrame <= 0 {
		o.MaxFrame = pipeline.DefaultMaxFrame
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 64
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 5 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
}

// Errors that end a served connection.
var (
	ErrVersion = errors.New("ternproto: unsupported protocol version")
	ErrUnknown = errors.New("ternproto: unexpected frame kind")
)

// Serve reads batches from c and emits each as one batch of records (the
// msgpack bytes of its messages) until the sender closes, a protocol error
// occurs, or ctx ends. Each batch is acknowledged once its AckFunc is called:
// StatusOK on nil, StatusRetry on an error. Serve closes c before it
// returns; it returns nil on a clean end (EOF or ctx) and the error
// otherwise. Protocol errors are also sent to the peer in an error frame.
func Serve(ctx context.Context, c net.Conn, out pipeline.Emitter, set pipeline.Settings, opt ServeOptions) error {
	opt.defaults()
	s := &server{c: c, set: set, opt: opt, acks: make(chan Ack, opt.MaxInFlight+1)}
	s.slots = make(chan struct{}, opt.MaxInFlight)
	s.bw = bufio.NewWriterSize(c, 4<<10)

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop()
	}()
	// ctx ending unblocks the reader; the writer keeps sending acks.
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	err := s.readLoop(ctx, out)
	stop()
	if ctx.Err() != nil {
		// Acks of batches already taken still go out, for a while.
		err = nil
		s.waitInFlight(opt.DrainTimeout)
	}
	if err != nil && !isEnd(err) {
		s.sendError(err)
	}
	s.mu.Lock()
	s.closed = true
	close(s.acks)
	s.mu.Unlock()
	<-writerDone
	_ = c.Close()
	if isEnd(err) {
		return nil
	}
	return err
}

type server struct {
	c     net.Conn
	set   pipeline.Settings
	opt   ServeOptions
	slots chan struct{} // one per batch taken and not yet acknowledged

	mu     sync.Mutex // closed, sending on acks
	acks   chan Ack   // never fuller than slots: the writer frees a slot per ack
	closed bool

	wmu  sync.Mutex // bw, werr
	bw   *bufio.Writer
	werr error
}

// push queues an acknowledgement. It never blocks: every ack holds a slot
// until the writer takes it, and acks has room for every slot. Acks given
// after Serve returned are dropped; their batches are sent again.
func (s *server) push(a Ack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.acks <- a
	}
}

func isEnd(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

// idleConn extends the read deadline before every read while idle is set.
type idleConn struct {
	net.Conn
	idle time.Duration
	busy func() bool
}

func (c idleConn) Read(p []byte) (int, error) {
	if c.idle > 0 {
		if c.busy() {
			_ = c.Conn.SetReadDeadline(time.Time{})
		} else {
			_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
		}
	}
	return c.Conn.Read(p)
}

func (s *server) readLoop(ctx context.Context, out pipeline.Emitter) error {
	var r io.Reader = s.c
	if s.opt.IdleTimeout > 0 {
		r = idleConn{Conn: s.c, idle: s.opt.IdleTimeout, busy: func() bool { return len(s.slots) > 0 }}
	}
	fr := pipeline.NewFrameReader(bufio.NewReaderSize(r, 64<<10), s.opt.MaxFrame)
	var recs []pipeline.Record
	proto := pipeline.Record{Source: s.opt.Source}
	for {
		kind, p, err := fr.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, pipeline.ErrFrameTooLarge) {
				s.set.Drop("oversize", 1)
				s.set.Error("frame_too_large")
			}
			return err
		}
		switch kind {
		case KindHello:
			h, err := ParseHello(p)
			if err != nil {
				return err
			}
			if h.Version != Version {
				return fmt.Errorf("%w %d (this receiver speaks %d)", ErrVersion, h.Version, Version)
			}
			s.send(func(b []byte) []byte {
				return AppendHello(b, Hello{Version: Version, MaxFrame: s.opt.MaxFrame, Name: s.opt.Name})
			})
		case KindBatch:
			recs = recs[:0]
			seq, err := ParseBatch(p, func(msg []byte, bad bool) {
				rec := proto
				rec.Data = msg
				recs = append(recs, rec)
				if bad {
					s.set.Error("bad_batch")
				}
			})
			if err != nil {
				return err
			}
			select {
			case s.slots <- struct{}{}:
			case <-ctx.Done():
				return nil // not taken: the sender sends it again
			}
			if len(recs) == 0 {
				s.push(Ack{Seq: seq}) // a ping: nothing to deliver
				continue
			}
			var once sync.Once
			ack := func(err error) {
				once.Do(func() {
					a := Ack{Seq: seq}
					if err != nil {
						a.Status, a.Reason = StatusRetry, err.Error()
					}
					s.push(a)
				})
			}
			// Data points into the frame reader's buffer, which stays put
			// until the next Next: Emit has copied what it keeps by then.
			if err := out.Emit(ctx, recs, ack); err != nil {
				return nil // stopping; the ack reports the batch's fate
			}
		case KindError:
			return &PeerError{Msg: string(p)}
		default:
			return fmt.Errorf("%w %q", ErrUnknown, kind)
		}
	}
}

// waitInFlight waits until every emitted batch is acknowledged, or d passes.
func (s *server) waitInFlight(d time.Duration) {
	deadline := time.Now().Add(d)
	for len(s.slots) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// writeLoop sends acks, batching those that are ready into one write.
func (s *server) writeLoop() {
	var buf []byte
	for a := range s.acks {
		<-s.slots
		buf = AppendAck(buf[:0], a)
		for more := true; more; {
			select {
			case a, ok := <-s.acks:
				if !ok {
					more = false
					break
				}
				<-s.slots
				buf = AppendAck(buf, a)
			default:
				more = false
			}
		}
		s.write(buf)
	}
}

// send writes a frame built by fn (used by the reader for the hello).
func (s *server) send(fn func([]byte) []byte) { s.write(fn(nil)) }

func (s *server) write(b []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.werr != nil {
		return
	}
	_ = s.c.SetWriteDeadline(time.Now().Add(s.opt.WriteTimeout))
	if _, err := s.bw.Write(b); err == nil {
		err = s.bw.Flush()
		s.werr = err
	} else {
		s.werr = err
	}
}

func (s *server) sendError(err error) {
	s.write(AppendError(nil, err.Error()))
}
