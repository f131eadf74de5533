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
	"github.com/ternlog/tern/pipeline/framing"
)

// ServeOptions configure the receiving side of one connection.
type ServeOptions struct {
	// MaxFrame caps a frame's payload (a whole batch); a larger frame ends
	// the connection. Default framing.DefaultMaxFrame.
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
		o.MaxFrame = framing.DefaultMaxFrame
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
	s := &server{c: c, set: set, opt: opt, acks: make(chan Ack, opt.MaxInFlight)}
	s.slots = make(chan struct{}, opt.MaxInFlight)
	s.rd = &readDeadline{c: c, idle: opt.IdleTimeout}
	s.bw = bufio.NewWriterSize(c, 4<<10)

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop()
	}()
	// ctx ending unblocks the reader; the writer keeps sending acks.
	stop := context.AfterFunc(ctx, s.rd.stop)
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
	rd    *readDeadline
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

// readDeadline owns the connection's read deadline: none while batches
// are in flight, the idle timeout from the moment the last one is settled,
// and a deadline in the past once stopped. One mutex orders the reader's
// and the writer's updates, so none overwrites a later one.
type readDeadline struct {
	mu      sync.Mutex
	c       net.Conn
	idle    time.Duration
	busy    int
	stopped bool
}

func (d *readDeadline) set() {
	switch {
	case d.stopped:
		_ = d.c.SetReadDeadline(time.Now())
	case d.idle <= 0 || d.busy > 0:
		_ = d.c.SetReadDeadline(time.Time{})
	default:
		_ = d.c.SetReadDeadline(time.Now().Add(d.idle))
	}
}

// take and release count batches in flight.
func (d *readDeadline) take() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.busy++
	d.set()
}

func (d *readDeadline) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.busy--
	if d.busy == 0 {
		d.set()
	}
}

// reading is called before each read: a read that starts idle gets the
// whole idle timeout.
func (d *readDeadline) reading() {
	if d.idle <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.set()
}

func (d *readDeadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	d.set()
}

// deadlineReader calls reading before every read of the connection.
type deadlineReader struct {
	c  net.Conn
	rd *readDeadline
}

func (r deadlineReader) Read(p []byte) (int, error) {
	r.rd.reading()
	return r.c.Read(p)
}

func (s *server) readLoop(ctx context.Context, out pipeline.Emitter) error {
	fr := framing.NewFrameReader(bufio.NewReaderSize(deadlineReader{s.c, s.rd}, 64<<10), s.opt.MaxFrame)
	var recs []pipeline.Record
	proto := pipeline.Record{Source: s.opt.Source}
	for {
		kind, p, err := fr.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil // idle: a plain close, nothing to report
			}
			if errors.Is(err, framing.ErrFrameTooLarge) {
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
				s.rd.take()
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
		s.rd.release()
		buf = AppendAck(buf[:0], a)
		for more := true; more; {
			select {
			case a, ok := <-s.acks:
				if !ok {
					more = false
					break
				}
				<-s.slots
				s.rd.release()
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
