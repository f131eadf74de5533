// Package tern is the output that forwards messages to another tern over
// the router protocol (internal/ternproto): a batch counts as delivered only
// once the receiving tern acknowledges it.
package tern

import (
	"context"
	"crypto/tls"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/ternlog/tern/internal/netio"
	"github.com/ternlog/tern/internal/ternproto"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
)

//go:embed sample.toml
var sample string

// Type selects this output.
const Type = "tern"

// Config is the [outputs.<name>] table with type = "tern".
type Config struct {
	// Address of the receiving tern: a tcp input with framing = "native".
	Address string `toml:"address"`
	// DialTimeout bounds connecting, the TLS handshake and the hello.
	DialTimeout config.Duration `toml:"dial_timeout"`
	// AckTimeout is how long a Write waits for the receiver to acknowledge
	// its batches; then the connection is dropped and the engine sends the
	// batch again (the receiver may deliver it twice, never zero times).
	AckTimeout config.Duration `toml:"ack_timeout"`
	// TLS to the receiver.
	TLS config.TLS `toml:"tls"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		DialTimeout: config.Duration(10 * time.Second), AckTimeout: config.Duration(60 * time.Second),
		TLS: config.DefaultTLS(),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	errs := []error{netio.CheckAddress("address", c.Address)}
	if c.DialTimeout <= 0 {
		errs = append(errs, errors.New("dial_timeout: must be positive"))
	}
	if c.AckTimeout <= 0 {
		errs = append(errs, errors.New("ack_timeout: must be positive"))
	}
	if err := c.TLS.ValidateClient("tls"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Output forwards batches to a receiving tern.
type Output struct {
	cfg Config
	set pipeline.Settings

	mu   sync.Mutex // conn, across Write and Close
	conn *ternproto.Conn
	seq  uint64
	buf  []byte
	wait map[uint64]bool
}

var _ pipeline.Output = (*Output)(nil)

// New returns a tern output; it connects on the first Write.
func New(set pipeline.Settings, cfg Config) (*Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set.DeclareErrors("connect")
	return &Output{cfg: cfg, set: set, wait: map[uint64]bool{}}, nil
}

// Factory registers the output.
func Factory() pipeline.Factory[pipeline.Output] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Output, error) {
		return New(s, c)
	}).WithDefaultEncoder("msgpack").WithSummary("another tern, over the native protocol with acks")
}

// Check reads the TLS files the config names.
func (o *Output) Check() error {
	_, err := o.tlsConfig()
	return err
}

func (o *Output) tlsConfig() (*tls.Config, error) {
	if !o.cfg.TLS.On() {
		return nil, nil
	}
	host, _, _ := net.SplitHostPort(o.cfg.Address)
	return o.cfg.TLS.ClientConfig(o.set, host)
}

func (o *Output) connect(ctx context.Context) (*ternproto.Conn, error) {
	if o.conn != nil {
		return o.conn, nil
	}
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	c, err := ternproto.Dial(ctx, o.cfg.Address, ternproto.DialOptions{
		TLS: tlsCfg, Timeout: o.cfg.DialTimeout.D(), Name: "tern/" + o.set.Hostname,
	})
	if err != nil {
		o.set.Error("connect")
		return nil, err
	}
	o.set.Logger.Info("connected", "receiver", o.cfg.Address, "peer", c.Peer().Name, "max_batch", c.MaxBatch())
	o.conn = c
	return c, nil
}

func (o *Output) drop() {
	if o.conn != nil {
		_ = o.conn.Close()
		o.conn = nil
	}
}

func (o *Output) Write(ctx context.Context, batch []pipeline.Encoded) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	reused := o.conn != nil
	c, err := o.connect(ctx)
	if err != nil {
		return err
	}
	limit := c.MaxBatch() - ternproto.BatchOverhead
	var refused []error
	var w ternproto.BatchWriter
	o.buf = o.buf[:0]
	clear(o.wait)
	open := false
	finish := func() {
		if open && w.Len() > 0 {
			o.buf = w.Finish()
			o.wait[o.seq] = true
		}
		open = false
	}
	for i, e := range batch {
		size := len(e.Data)
		framed := isMessageFrame(e.Data)
		if !framed {
			size += framing.FrameHeaderLen
		}
		if size > limit {
			if refused == nil {
				refused = make([]error, len(batch))
			}
			refused[i] = pipeline.Permanent(fmt.Errorf("message of %d bytes does not fit the receiver's %d-byte batches", size, limit))
			continue
		}
		if open && w.Size()+size > limit {
			finish()
		}
		if !open {
			o.seq++
			w.Begin(o.buf, o.seq)
			open = true
		}
		if framed {
			w.AddFrame(e.Data)
		} else {
			w.AddFrame(framing.AppendFrame(nil, framing.FrameMessage, e.Data))
		}
	}
	finish()
	if len(o.wait) > 0 {
		err := o.send(ctx, c)
		if err != nil && reused && errors.Is(err, io.EOF) && ctx.Err() == nil {
			// The receiver had closed the connection while it was idle,
			// before reading this batch: send it once more on a new one.
			o.drop()
			if c, err = o.connect(ctx); err == nil && c.MaxBatch()-ternproto.BatchOverhead >= limit {
				err = o.send(ctx, c)
			} else if err == nil {
				err = errors.New("the receiver's frame limit shrank; sending again")
			}
		}
		if err != nil {
			o.drop()
			if refused == nil {
				return err
			}
			for i := range refused {
				if refused[i] == nil {
					refused[i] = err
				}
			}
		}
	}
	if refused != nil {
		return &pipeline.PartialError{Errs: refused}
	}
	return nil
}

// send writes the frames in o.buf and waits for an ack of each.
func (o *Output) send(ctx context.Context, c *ternproto.Conn) error {
	deadline := time.Now().Add(o.cfg.AckTimeout.D())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	if err := c.Write(o.buf); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return err
	}
	var retry error
	for len(o.wait) > 0 {
		a, err := c.ReadAck()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("waiting for the receiver's ack: %w", err)
		}
		if !o.wait[a.Seq] {
			continue
		}
		delete(o.wait, a.Seq)
		if a.Status != ternproto.StatusOK && retry == nil {
			retry = fmt.Errorf("receiver did not take the batch: %s", a.Reason)
		}
	}
	_ = c.SetDeadline(time.Time{})
	return retry
}

// isMessageFrame reports whether b is exactly one 'M' frame (what the
// msgpack encoder writes with framed = true).
func isMessageFrame(b []byte) bool {
	return len(b) >= framing.FrameHeaderLen && b[0] == framing.FrameMagic && b[1] == framing.FrameMessage &&
		uint64(binary.BigEndian.Uint32(b[2:])) == uint64(len(b)-framing.FrameHeaderLen)
}

func (o *Output) Close(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.drop()
	return nil
}
