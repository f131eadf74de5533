// Package syslog is the output that sends encoded messages to a syslog
// receiver over UDP, TCP or TLS.
package syslog

import (
	"bytes"
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternlog/tern/internal/netio"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

//go:embed sample.toml
var sample string

// Type selects this output.
const Type = "syslog"

// Framings on TCP.
const (
	FramingOctet   = "octet_counting"
	FramingNewline = "newline"
)

// Config is the [outputs.<name>] table with type = "syslog".
type Config struct {
	// Address of the receiver, host:port.
	Address string `toml:"address"`
	// Network is tcp (TLS with the tls table) or udp.
	Network string `toml:"network"`
	// Framing on TCP: octet_counting or newline.
	Framing string `toml:"framing"`
	// DialTimeout bounds connecting, TLS handshake included.
	DialTimeout config.Duration `toml:"dial_timeout"`
	// WriteTimeout bounds writing one batch; a receiver that stops reading
	// makes the write fail, and the engine retries it.
	WriteTimeout config.Duration `toml:"write_timeout"`
	// MaxDatagramBytes is the largest record sent over UDP.
	MaxDatagramBytes config.Size `toml:"max_datagram_bytes"`
	// TLS secures TCP (RFC 5425).
	TLS config.TLS `toml:"tls"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Network: "tcp", Framing: FramingOctet, DialTimeout: config.Duration(10 * time.Second),
		WriteTimeout: config.Duration(30 * time.Second), MaxDatagramBytes: 65507, TLS: config.DefaultTLS(),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	errs := []error{netio.CheckAddress("address", c.Address)}
	switch c.Network {
	case "tcp":
	case "udp":
		if c.TLS.On() {
			errs = append(errs, errors.New("tls: only with network = \"tcp\""))
		}
	default:
		errs = append(errs, fmt.Errorf("network: must be tcp or udp, not %q", c.Network))
	}
	if c.Framing != FramingOctet && c.Framing != FramingNewline {
		errs = append(errs, fmt.Errorf("framing: must be octet_counting or newline, not %q", c.Framing))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, errors.New("dial_timeout: must be positive"))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("write_timeout: must be positive"))
	}
	if c.MaxDatagramBytes < 1 || c.MaxDatagramBytes > 65507 {
		errs = append(errs, errors.New("max_datagram_bytes: must be between 1 and 65507"))
	}
	if err := c.TLS.ValidateClient("tls"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Output sends to one syslog receiver. Its connection is opened on the
// first Write and again after any failure; the engine's retries with
// backoff pace the reconnections.
type Output struct {
	cfg  Config
	set  pipeline.Settings
	host string

	conn net.Conn
	dead atomic.Bool    // the receiver closed the connection
	wg   sync.WaitGroup // the connection's watcher
	buf  []byte
}

var (
	_ pipeline.Output = (*Output)(nil)
	_ pipeline.Closer = (*Output)(nil)
)

// New returns a syslog output; it connects on the first Write.
func New(set pipeline.Settings, cfg Config) (*Output, error) {
	host, _, _ := net.SplitHostPort(cfg.Address)
	set.DeclareErrors("connect", "write")
	if cfg.Network == "tcp" && cfg.TLS.On() {
		set.DeclareErrors("tls_handshake")
	}
	return &Output{cfg: cfg, set: set, host: host}, nil
}

// Factory registers the output.
func Factory() pipeline.Factory[pipeline.Output] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Output, error) {
		return New(s, c)
	}).WithDefaultEncoder("syslog").WithSummary("syslog over UDP, TCP (octet counting) and TLS")
}

func (o *Output) connect(ctx context.Context) error {
	if o.conn != nil && !o.dead.Load() {
		return nil
	}
	o.disconnect()
	d := net.Dialer{Timeout: o.cfg.DialTimeout.D()}
	c, err := d.DialContext(ctx, o.cfg.Network, o.cfg.Address)
	if err != nil {
		return err
	}
	if o.cfg.TLS.On() {
		cfg, err := o.cfg.TLS.ClientConfig(o.set, o.host)
		if err != nil {
			c.Close()
			return err
		}
		t0 := time.Now()
		tc, err := netio.ClientHandshake(ctx, c, cfg, min(o.cfg.TLS.Timeout(), o.cfg.DialTimeout.D()))
		if err == nil {
			err = awaitRefusal(tc, time.Since(t0))
		}
		if err != nil {
			c.Close()
			o.set.Error("tls_handshake")
			return fmt.Errorf("TLS handshake with %s: %w", o.cfg.Address, err)
		}
		c = tc
	}
	o.conn = c
	o.dead.Store(false)
	if o.cfg.Network == "tcp" {
		// Receivers never send: a read that returns means the connection
		// is gone, so the next batch goes to a new one instead of into a
		// socket the peer already closed.
		o.wg.Go(func() {
			_, _ = io.Copy(io.Discard, c)
			o.dead.Store(true)
		})
	}
	o.set.Logger.Debug("connected", "address", o.cfg.Address, "network", o.cfg.Network, "tls", o.cfg.TLS.On())
	return nil
}

// awaitRefusal catches a server that refuses our client certificate. With
// TLS 1.3 the client's handshake is over before the server has checked
// the certificate; its refusal arrives as an alert about one round trip
// later. A first batch written before that would be reported written and
// lost, so wait for the alert about as long as the handshake took.
func awaitRefusal(tc *tls.Conn, handshake time.Duration) error {
	if tc.ConnectionState().Version < tls.VersionTLS13 {
		return nil // TLS 1.2 checks the certificate inside the handshake
	}
	wait := min(max(2*handshake, 20*time.Millisecond), time.Second)
	_ = tc.SetReadDeadline(time.Now().Add(wait))
	var one [1]byte
	_, err := tc.Read(one[:]) // session tickets are handled inside Read
	_ = tc.SetReadDeadline(time.Time{})
	if err == nil || netio.IsTimeout(err) {
		return nil // a timeout leaves a tls.Conn usable
	}
	return err
}

func (o *Output) disconnect() {
	if o.conn != nil {
		_ = o.conn.Close()
		o.conn = nil
	}
	o.wg.Wait()
}

func (o *Output) Write(ctx context.Context, batch []pipeline.Encoded) error {
	if o.cfg.Network == "udp" {
		return o.writeUDP(ctx, batch)
	}
	if err := o.connect(ctx); err != nil {
		o.set.Error("connect")
		return err
	}
	o.buf = o.buf[:0]
	for _, e := range batch {
		o.buf = o.frame(o.buf, e.Data)
	}
	_ = o.conn.SetWriteDeadline(time.Now().Add(o.cfg.WriteTimeout.D()))
	stop := context.AfterFunc(ctx, func() { _ = o.conn.SetWriteDeadline(time.Now()) })
	_, err := o.conn.Write(o.buf)
	stop()
	if err != nil {
		// Part of the batch may have gone out: the retry sends it again
		// (duplicates, never losses). Start the retry on a new connection.
		o.set.Error("write")
		o.disconnect()
		return fmt.Errorf("writing to %s: %w", o.cfg.Address, err)
	}
	return nil
}

// frame appends one record in the configured framing.
func (o *Output) frame(dst, rec []byte) []byte {
	if o.cfg.Framing == FramingOctet {
		dst = strconv.AppendInt(dst, int64(len(rec)), 10)
		dst = append(dst, ' ')
		return append(dst, rec...)
	}
	// Newline framing cannot carry LF, and NUL ends a message for some
	// receivers: write them the way rsyslog escapes control characters.
	for len(rec) > 0 {
		i := bytes.IndexAny(rec, "\n\x00")
		if i < 0 {
			dst = append(dst, rec...)
			break
		}
		dst = append(dst, rec[:i]...)
		if rec[i] == '\n' {
			dst = append(dst, "#012"...)
		} else {
			dst = append(dst, "#000"...)
		}
		rec = rec[i+1:]
	}
	return append(dst, '\n')
}

// writeUDP sends one datagram per record. Oversize records are refused
// for good; a send failure leaves that record and the rest for the retry.
func (o *Output) writeUDP(ctx context.Context, batch []pipeline.Encoded) error {
	if err := o.connect(ctx); err != nil {
		o.set.Error("connect")
		return err
	}
	var errs []error
	fail := func(i int, err error) {
		if errs == nil {
			errs = make([]error, len(batch))
		}
		errs[i] = err
	}
	for i, e := range batch {
		if len(e.Data) > o.cfg.MaxDatagramBytes.N() {
			fail(i, pipeline.Permanent(fmt.Errorf("record of %d bytes over max_datagram_bytes %d", len(e.Data), o.cfg.MaxDatagramBytes.N())))
			continue
		}
		_ = o.conn.SetWriteDeadline(time.Now().Add(o.cfg.WriteTimeout.D()))
		if _, err := o.conn.Write(e.Data); err != nil {
			// An ICMP error from an earlier datagram (port unreachable)
			// surfaces here: retry this record and the rest on a new socket.
			o.set.Error("write")
			o.disconnect()
			for j := i; j < len(batch); j++ {
				fail(j, fmt.Errorf("sending to %s: %w", o.cfg.Address, err))
			}
			break
		}
	}
	if errs == nil {
		return nil
	}
	return &pipeline.PartialError{Errs: errs}
}

func (o *Output) Close(context.Context) error {
	o.disconnect()
	return nil
}
