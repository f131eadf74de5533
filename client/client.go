// Package client sends messages from a Go application to a tern router over
// tern's router protocol, at least once: every message stays in the
// client's bounded buffer (and, optionally, in a disk spool) until the
// router acknowledges that it delivered it, and is sent again after a
// reconnect when that acknowledgement did not come.
//
//	c, err := client.Dial("127.0.0.1:5150", client.WithTLS(cfg))
//	...
//	err = c.SendCEF(ctx, client.NewEvent(client.AuthFailure, "Login failed", 5).FromRequest(r))
//	...
//	err = c.Close(ctx) // waits until the router acknowledged everything
//
// The router side is a tcp input with framing = "native" and the msgpack
// decoder. Errors are returned, never swallowed: Send fails when the
// message cannot be taken, Flush and Close when not everything was
// acknowledged in time (with the last connection error), and WithErrorHandler
// sees every connection failure as it happens.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternlog/tern/internal/ternproto"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/framing"
)

// Errors of the client.
var (
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("client: closed")
	// ErrTooLarge is returned by Send for a message larger than the
	// client's MaxMessageBytes or than the router accepts.
	ErrTooLarge = errors.New("client: message too large")
)

type options struct {
	tls         *tls.Config
	name        string
	dialTimeout time.Duration
	ackTimeout  time.Duration
	batchBytes  int
	batchCount  int
	linger      time.Duration
	bufferBytes int
	maxMessage  int
	inFlight    int
	backoffMin  time.Duration
	backoffMax  time.Duration
	spoolDir    string
	spoolSync   bool
	lazy        bool
	onError     func(error)
	logger      *slog.Logger
	cef         CEFConfig
	hostname    string
}

// Option configures a Client.
type Option func(*options)

// WithTLS connects with TLS (set RootCAs for a private CA, Certificates for
// mutual TLS; ServerName defaults to the address's host).
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithName sets the name sent to the router in the hello (for its logs).
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithDialTimeout bounds connecting, the TLS handshake and the hello
// (default 10s).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// WithAckTimeout is how long the oldest batch sent may wait for its
// acknowledgement before the connection is dropped and the batch sent
// again over a new one (default 60s).
func WithAckTimeout(d time.Duration) Option { return func(o *options) { o.ackTimeout = d } }

// WithBatch sets how messages are grouped: a batch is sent when it holds
// maxBytes (default 256KiB) or maxCount messages (default 4096), or linger
// (default 10ms) after its first message.
func WithBatch(maxBytes, maxCount int, linger time.Duration) Option {
	return func(o *options) { o.batchBytes, o.batchCount, o.linger = maxBytes, maxCount, linger }
}

// WithBuffer caps the bytes of messages held until acknowledged (default
// 16MiB). Send blocks while the buffer is full.
func WithBuffer(maxBytes int) Option { return func(o *options) { o.bufferBytes = maxBytes } }

// WithMaxMessage caps one encoded message (default 1MiB minus the batch
// overhead, what a router accepts by default).
func WithMaxMessage(maxBytes int) Option { return func(o *options) { o.maxMessage = maxBytes } }

// WithInFlight caps the batches sent and not yet acknowledged (default 8).
func WithInFlight(n int) Option { return func(o *options) { o.inFlight = n } }

// WithBackoff sets the reconnect backoff: doubling from min to max, with
// jitter (default 100ms to 10s).
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) { o.backoffMin, o.backoffMax = min, max }
}

// WithSpool keeps every batch in dir until it is acknowledged, so messages
// survive a crash of the application: Dial sends what a previous run left
// there first. With sync, each batch is fsynced before it is sent.
func WithSpool(dir string, sync bool) Option {
	return func(o *options) { o.spoolDir, o.spoolSync = dir, sync }
}

// WithLazyConnect makes Dial return at once and connect in the background
// (messages wait in the buffer); by default Dial fails when the first
// connection fails.
func WithLazyConnect() Option { return func(o *options) { o.lazy = true } }

// WithErrorHandler is called with every connection failure and every
// refusal by the router. Calls come one at a time from a goroutine of the
// client, never after Close returns; a handler that falls more than 64
// errors behind misses some (they are still counted in Stats.Errors).
func WithErrorHandler(fn func(error)) Option { return func(o *options) { o.onError = fn } }

// WithLogger logs connects and reconnects (default: none).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithHostname sets the Hostname of messages that have none (default
// os.Hostname).
func WithHostname(h string) Option { return func(o *options) { o.hostname = h } }

// Stats are the client's counters.
type Stats struct {
	Sent     int64 // messages taken by Send
	Acked    int64 // messages the router acknowledged
	Resent   int64 // batches sent again after a lost connection or a refusal
	Buffered int64 // messages held, not yet acknowledged
	Errors   int64 // connection failures and refusals
}

// Client sends messages to one router. It is safe for concurrent use.
type Client struct {
	addr string
	o    options

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every change waiters care about
	cur        ternproto.BatchWriter
	curOpen    bool
	curMsgs    int
	curAt      time.Time
	queue      []*batch // sealed, in order
	held       int      // bytes of messages in queue and cur
	nextOrder  uint64
	nextSeq    uint64
	lost       int // messages the router can never take, not yet reported
	closed     bool
	lastErr    error
	errq       chan error    // to the error handler goroutine; nil without one
	errDone    chan struct{} // closed when that goroutine has returned
	errqClosed bool          // under mu: errq is closed
	peerMax    int           // the router's frame limit, once known

	sent, acked, resent, errs atomic.Int64
	buffered                  atomic.Int64

	stop chan struct{}
	done chan struct{}
}

type batch struct {
	order uint64 // sealing order (Flush waits by it); pieces of a split batch share it
	seq   uint64 // on the wire, unique
	frame []byte // the whole B frame
	msgs  int
	sent  bool // on the current connection
	at    time.Time
	file  *spoolFile
}

// Dial returns a client for the router at addr (host:port) and, unless
// WithLazyConnect is given, waits for the first connection.
func Dial(addr string, opts ...Option) (*Client, error) {
	o := options{
		dialTimeout: 10 * time.Second, ackTimeout: 60 * time.Second,
		batchBytes: 256 << 10, batchCount: 4096, linger: 10 * time.Millisecond,
		bufferBytes: 16 << 20, maxMessage: 1<<20 - ternproto.BatchOverhead - framing.FrameHeaderLen,
		inFlight: 8, backoffMin: 100 * time.Millisecond, backoffMax: 10 * time.Second,
		name: "client/" + progName(), cef: DefaultCEFConfig(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.hostname == "" {
		o.hostname, _ = os.Hostname()
	}
	if o.cef.Hostname == "" {
		o.cef.Hostname = o.hostname
	}
	if o.batchBytes < 1<<10 || o.batchCount < 1 || o.inFlight < 1 || o.bufferBytes < o.batchBytes || o.maxMessage < 64 {
		return nil, errors.New("client: batch bytes >= 1KiB, counts >= 1, buffer >= batch bytes, max message >= 64 bytes")
	}
	c := &Client{addr: addr, o: o, changed: make(chan struct{}), nextOrder: 1, nextSeq: 1, stop: make(chan struct{}), done: make(chan struct{})}
	if o.spoolDir != "" {
		if err := c.loadSpool(); err != nil {
			return nil, err
		}
	}
	if o.onError != nil {
		c.errq, c.errDone = make(chan error, 64), make(chan struct{})
		go func() {
			defer close(c.errDone)
			for err := range c.errq {
				o.onError(err)
			}
		}()
	}
	var first chan error
	if !o.lazy {
		first = make(chan error, 1)
	}
	go c.run(first)
	if first != nil {
		if err := <-first; err != nil {
			close(c.stop)
			<-c.done
			c.stopErrorHandler()
			return nil, err
		}
	}
	return c, nil
}

// pid is this process's id, which every message carries (the mozilla cef
// library's messages always did).
var pid = int32(os.Getpid())

func progName() string {
	if len(os.Args) > 0 {
		name := os.Args[0]
		for i := len(name) - 1; i >= 0; i-- {
			if name[i] == '/' {
				return name[i+1:]
			}
		}
		return name
	}
	return "go"
}

// notify wakes everything waiting on c.changed. Call with c.mu held.
func (c *Client) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Send hands m to the client. It returns once m is in the buffer (encoded:
// m may be reused at once), blocking while the buffer is full; delivery is
// confirmed by Flush or Close. The client fills a zero UUID, a zero
// Timestamp, an empty Hostname and a zero Pid (with its own process id; m
// itself is not changed), so duplicates after a resend carry the same UUID.
func (c *Client) Send(ctx context.Context, m *pipeline.Message) error {
	cp := *m
	if cp.UUID == ([16]byte{}) {
		cp.UUID = pipeline.NewUUID()
	}
	if cp.Timestamp == 0 {
		cp.Timestamp = time.Now().UnixNano()
	}
	if cp.Hostname == "" {
		cp.Hostname = c.o.hostname
	}
	if cp.Pid == 0 {
		cp.Pid = pid
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.closed {
			return ErrClosed
		}
		// Encode in place at the end of the open batch; undo when it
		// does not fit.
		if !c.curOpen {
			// Small at first: a quiet application sends small batches;
			// a busy one grows this by doubling.
			c.cur.Begin(make([]byte, 0, min(c.o.batchBytes, 16<<10)), 0)
			c.curOpen, c.curMsgs, c.curAt = true, 0, time.Now()
		}
		before := c.cur.Size()
		c.cur.Add(&cp)
		size := c.cur.Size() - before
		limit := c.o.maxMessage
		if c.peerMax > 0 {
			limit = min(limit, c.peerMax-ternproto.BatchOverhead)
		}
		if size > limit {
			c.cur.Undo(before)
			return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, size, limit)
		}
		batchLimit := c.o.batchBytes
		if c.peerMax > 0 {
			batchLimit = min(batchLimit, c.peerMax)
		}
		if c.held+size <= c.o.bufferBytes || c.held == 0 {
			if c.curMsgs > 0 && c.cur.Size() > batchLimit {
				// Too big for this batch: seal it without m, retry.
				c.cur.Undo(before)
				c.seal()
				continue
			}
			c.held += size
			c.curMsgs++
			c.sent.Add(1)
			c.buffered.Add(1)
			if c.curMsgs >= c.o.batchCount || c.cur.Size() >= batchLimit {
				c.seal()
			} else if c.curMsgs == 1 {
				c.notify() // the sender starts the linger timer
			}
			return nil
		}
		c.cur.Undo(before)
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
			c.mu.Lock()
		case <-ctx.Done():
			c.mu.Lock()
			return ctx.Err()
		}
	}
}

// seal closes the open batch and queues it. Call with c.mu held.
func (c *Client) seal() {
	if !c.curOpen || c.curMsgs == 0 {
		return
	}
	frame := c.cur.Finish()
	b := &batch{order: c.nextOrder, seq: c.nextSeq, frame: frame, msgs: c.curMsgs}
	c.nextOrder++
	c.nextSeq++
	ternproto.SetBatchSeq(b.frame, b.seq)
	c.curOpen = false
	c.cur = ternproto.BatchWriter{}
	if c.o.spoolDir != "" {
		if err := c.spool(b); err != nil {
			c.fail(fmt.Errorf("client: spool: %w", err))
		}
	}
	c.queue = append(c.queue, b)
	c.notify()
}

// Flush sends what is buffered and waits until the router acknowledged
// every message sent before the call, or ctx ends. Its error then says how
// many are still unacknowledged and the last connection error.
func (c *Client) Flush(ctx context.Context) error {
	target, err := c.sealForFlush()
	if err != nil {
		return err
	}
	return c.waitAcked(ctx, target)
}

// sealForFlush seals the batch being filled and returns the order of the last
// message sent, or ErrClosed.
func (c *Client) sealForFlush() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, ErrClosed
	}
	c.seal()
	return c.nextOrder - 1, nil
}

func (c *Client) waitAcked(ctx context.Context, target uint64) error {
	for {
		c.mu.Lock()
		pending := 0
		for _, b := range c.queue {
			if b.order <= target {
				pending += b.msgs
			}
		}
		ch, last, lost := c.changed, c.lastErr, c.lost
		if pending == 0 {
			c.lost = 0
		}
		c.mu.Unlock()
		if pending == 0 {
			if lost > 0 {
				return fmt.Errorf("%w: %d messages larger than the router accepts were dropped", ErrTooLarge, lost)
			}
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			err := fmt.Errorf("client: %d messages not acknowledged: %w", pending, ctx.Err())
			if last != nil {
				err = fmt.Errorf("%w (last error: %v)", err, last)
			}
			return err
		}
	}
}

// Close flushes (see Flush), then stops the client and closes its
// connection. Messages still unacknowledged are lost unless a spool keeps
// them for the next Dial; the error says how many.
func (c *Client) Close(ctx context.Context) error {
	target, err := c.sealForFlush()
	if err != nil {
		return err
	}
	err = c.waitAcked(ctx, target)
	c.mu.Lock()
	c.closed = true
	c.notify()
	c.mu.Unlock()
	close(c.stop)
	<-c.done
	c.stopErrorHandler()
	return err
}

// stopErrorHandler waits for the error handler to finish its queue, so no
// call outlives Close (the app may own what the handler writes to).
func (c *Client) stopErrorHandler() {
	if c.errq == nil {
		return
	}
	c.mu.Lock()
	close(c.errq)
	c.errqClosed = true
	c.mu.Unlock()
	<-c.errDone
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{
		Sent: c.sent.Load(), Acked: c.acked.Load(), Resent: c.resent.Load(),
		Buffered: c.buffered.Load(), Errors: c.errs.Load(),
	}
}

// Err returns the last connection error (nil while none happened).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// fail records a connection error. Call with c.mu held.
func (c *Client) fail(err error) {
	c.lastErr = err
	c.errs.Add(1)
	if c.errq != nil && !c.errqClosed {
		select {
		case c.errq <- err:
		default: // the handler lags: counted above, dropped here
		}
	}
	if c.o.logger != nil {
		c.o.logger.Warn("tern client", "router", c.addr, "err", err)
	}
}

// run keeps a connection and sends batches until Close.
func (c *Client) run(first chan error) {
	defer close(c.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	backoff := c.o.backoffMin
	for {
		conn, err := ternproto.Dial(ctx, c.addr, ternproto.DialOptions{TLS: c.o.tls, Timeout: c.o.dialTimeout, Name: c.o.name})
		if err == nil {
			c.mu.Lock()
			c.peerMax = conn.MaxBatch()
			c.mu.Unlock()
		}
		if first != nil {
			first <- err
			if err != nil {
				return
			}
			first = nil
		}
		if err != nil {
			c.mu.Lock()
			c.fail(fmt.Errorf("client: connecting to %s: %w", c.addr, err))
			c.mu.Unlock()
			jitter := time.Duration(rand.Int64N(int64(backoff)/2 + 1))
			select {
			case <-c.stop:
				return
			case <-time.After(backoff/2 + jitter):
			}
			backoff = min(2*backoff, c.o.backoffMax)
			continue
		}
		backoff = c.o.backoffMin
		if c.o.logger != nil {
			c.o.logger.Info("tern client connected", "router", c.addr, "peer", conn.Peer().Name)
		}
		err = c.serve(conn)
		_ = conn.Close()
		select {
		case <-c.stop:
			return
		default:
		}
		if errors.Is(err, errIdleClose) {
			// The router closed a connection with nothing in flight (its
			// idle timeout): not a failure. Reconnect when there is work.
			if !c.waitForWork() {
				return
			}
			continue
		}
		c.mu.Lock()
		c.fail(err)
		c.mu.Unlock()
	}
}

// errIdleClose is serve's result when the router closed the connection
// while no batch was in flight.
var errIdleClose = errors.New("client: router closed an idle connection")

// waitForWork waits until something is buffered; false once stopped.
func (c *Client) waitForWork() bool {
	for {
		c.mu.Lock()
		work := len(c.queue) > 0 || (c.curOpen && c.curMsgs > 0)
		ch := c.changed
		c.mu.Unlock()
		if work {
			return true
		}
		select {
		case <-c.stop:
			return false
		case <-ch:
		}
	}
}

// serve sends batches on conn and takes its acks until the connection
// fails or the client stops. Every batch it sent and that is not acked is
// marked to be sent again.
func (c *Client) serve(conn *ternproto.Conn) error {
	c.mu.Lock()
	c.peerMax = conn.MaxBatch()
	for _, b := range c.queue {
		b.sent = false
	}
	c.resplit()
	c.mu.Unlock()
	acks := make(chan error, 1)
	go func() { acks <- c.readAcks(conn) }()
	defer func() {
		_ = conn.Close()
		<-acks
		c.mu.Lock()
		for _, b := range c.queue {
			if b.sent {
				b.sent = false
				c.resent.Add(1)
			}
		}
		c.mu.Unlock()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		now := time.Now()
		if c.curOpen && c.curMsgs > 0 && now.Sub(c.curAt) >= c.o.linger {
			c.seal()
		}
		var toSend []*batch
		inFlight := 0
		var oldest time.Time
		for _, b := range c.queue {
			if b.sent {
				inFlight++
				if oldest.IsZero() {
					oldest = b.at
				}
			}
		}
		for _, b := range c.queue {
			if inFlight >= c.o.inFlight {
				break
			}
			if !b.sent {
				b.sent, b.at = true, now
				toSend = append(toSend, b)
				inFlight++
			}
		}
		wake := time.Hour
		if c.curOpen && c.curMsgs > 0 {
			wake = c.o.linger - now.Sub(c.curAt)
		}
		if !oldest.IsZero() {
			if now.Sub(oldest) > c.o.ackTimeout {
				c.mu.Unlock()
				return fmt.Errorf("client: no acknowledgement from %s for %v", c.addr, c.o.ackTimeout)
			}
			wake = min(wake, c.o.ackTimeout-now.Sub(oldest))
		}
		ch := c.changed
		c.mu.Unlock()
		for _, b := range toSend {
			if err := conn.Write(b.frame); err != nil {
				return fmt.Errorf("client: sending: %w", err)
			}
		}
		if len(toSend) > 0 {
			_ = conn.SetDeadline(time.Now().Add(c.o.ackTimeout))
			if err := conn.Flush(); err != nil {
				return fmt.Errorf("client: sending: %w", err)
			}
			_ = conn.SetDeadline(time.Time{})
		}
		timer.Reset(max(wake, time.Millisecond))
		select {
		case <-c.stop:
			return nil
		case err := <-acks:
			acks <- err // for the deferred wait
			if errors.Is(err, io.EOF) {
				c.mu.Lock()
				idle := true
				for _, b := range c.queue {
					idle = idle && !b.sent
				}
				c.mu.Unlock()
				if idle {
					return errIdleClose
				}
			}
			return err
		case <-ch:
		case <-timer.C:
		}
	}
}

// readAcks settles batches as their acks arrive.
func (c *Client) readAcks(conn *ternproto.Conn) error {
	for {
		a, err := conn.ReadAck()
		if err != nil {
			return fmt.Errorf("client: reading acks: %w", err)
		}
		c.mu.Lock()
		for i, b := range c.queue {
			if b.seq != a.Seq || !b.sent {
				continue
			}
			if a.Status != ternproto.StatusOK {
				// The router could not take it (it is stopping): drop the
				// connection; the batch goes again after the reconnect.
				c.mu.Unlock()
				return fmt.Errorf("client: router did not take a batch: %s", a.Reason)
			}
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			c.held -= len(b.frame) - ternproto.BatchOverhead
			c.acked.Add(int64(b.msgs))
			c.buffered.Add(-int64(b.msgs))
			b.file.release()
			c.notify()
			break
		}
		c.mu.Unlock()
	}
}
