package ternproto

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ternlog/tern/pipeline/framing"
)

// DialOptions configure the sending side.
type DialOptions struct {
	// TLS, when set, wraps the connection (the server name defaults to the
	// host of the address).
	TLS *tls.Config
	// Timeout bounds the dial, the TLS handshake and the hello exchange.
	// Default 10s.
	Timeout time.Duration
	// Name is sent in the hello.
	Name string
}

// Conn is the sending side of one connection: it writes batch frames and
// reads acknowledgements. Writes and reads may run on two goroutines.
type Conn struct {
	c    net.Conn
	fr   *framing.FrameReader
	bw   *bufio.Writer
	peer Hello
}

// maxAckFrame caps what a sender reads from the receiver: acks, hellos and
// error texts are small.
const maxAckFrame = 64 << 10

// Dial connects to a receiver and exchanges hellos.
func Dial(ctx context.Context, addr string, opt DialOptions) (*Conn, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := raw
	if opt.TLS != nil {
		cfg := opt.TLS.Clone()
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			host, _, _ := net.SplitHostPort(addr)
			cfg.ServerName = host
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		c = tc
	}
	conn := &Conn{c: c, fr: framing.NewFrameReader(bufio.NewReaderSize(c, 4<<10), maxAckFrame), bw: bufio.NewWriterSize(c, 64<<10)}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	err = conn.hello(opt.Name)
	if !stop() || err != nil {
		c.Close()
		if err == nil || ctx.Err() != nil {
			err = fmt.Errorf("ternproto: hello: %w", context.Cause(ctx))
		}
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return conn, nil
}

func (c *Conn) hello(name string) error {
	if _, err := c.bw.Write(AppendHello(nil, Hello{Version: Version, MaxFrame: maxAckFrame, Name: name})); err != nil {
		return err
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	kind, p, err := c.fr.Next()
	if err != nil {
		return fmt.Errorf("ternproto: hello: %w", err)
	}
	switch kind {
	case KindHello:
		h, err := ParseHello(p)
		if err != nil {
			return err
		}
		if h.Version != Version {
			return fmt.Errorf("%w %d", ErrVersion, h.Version)
		}
		if h.MaxFrame < 1<<10 {
			return fmt.Errorf("ternproto: receiver accepts only %d-byte frames", h.MaxFrame)
		}
		c.peer = h
		return nil
	case KindError:
		return &PeerError{Msg: string(p)}
	}
	return fmt.Errorf("%w %q instead of a hello", ErrUnknown, kind)
}

// Peer is the receiver's hello.
func (c *Conn) Peer() Hello { return c.peer }

// MaxBatch is the largest batch frame payload the receiver takes.
func (c *Conn) MaxBatch() int { return c.peer.MaxFrame }

// Write queues frame bytes (whole frames); Flush sends them.
func (c *Conn) Write(frames []byte) error {
	_, err := c.bw.Write(frames)
	return err
}

// Flush sends what Write queued.
func (c *Conn) Flush() error { return c.bw.Flush() }

// ReadAck returns the next acknowledgement. An error frame from the
// receiver is returned as a *PeerError.
func (c *Conn) ReadAck() (Ack, error) {
	kind, p, err := c.fr.Next()
	if err != nil {
		return Ack{}, err
	}
	switch kind {
	case KindAck:
		return ParseAck(p)
	case KindError:
		return Ack{}, &PeerError{Msg: string(p)}
	}
	return Ack{}, fmt.Errorf("%w %q from the receiver", ErrUnknown, kind)
}

// SetDeadline sets the deadline of the underlying connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the underlying connection.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// IsPeerError reports whether err came from the receiver's error frame.
func IsPeerError(err error) bool {
	var pe *PeerError
	return errors.As(err, &pe)
}
