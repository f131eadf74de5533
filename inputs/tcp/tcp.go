// Package tcp is the input that accepts TCP (optionally TLS) connections
// and reads framed records from them.
package tcp

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ternlog/tern/internal/netio"
	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/internal/ternproto"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
)

//go:embed sample.toml
var sample string

// Type selects this input.
const Type = "tcp"

// FramingNative is tern's router protocol: batches of native messages, each
// acknowledged once the engine has delivered it (pair it with the msgpack
// decoder).
const FramingNative = "native"

// Config is the [inputs.<name>] table with type = "tcp".
type Config struct {
	// Address to listen on, host:port.
	Address string `toml:"address"`
	// Framing of records on a connection: newline, octet_counting (RFC
	// 6587), non_transparent, auto (decided per connection by its first
	// byte), or native: tern's router protocol (internal/ternproto), whose
	// batches are acknowledged to the sender once delivered.
	Framing string `toml:"framing"`
	// NULTrailer makes NUL end a record too, as well as LF, with the auto
	// and non_transparent framings. Off by default: NUL is then data, and a
	// NUL inside a message cannot split it into a second, forged one.
	NULTrailer bool `toml:"nul_trailer"`
	// StreamLimits are max_frame_bytes (with native framing: the largest
	// batch frame), max_connections and idle_timeout.
	netio.StreamLimits
	// BatchMaxCount caps the records handed on at once (framing.Emit may
	// add the small rest of a read, up to twice as many).
	BatchMaxCount int `toml:"batch_max_count"`
	// TLS turns the listener into a TLS one; with ca_file, clients must
	// present a certificate signed by it (mutual TLS).
	TLS config.TLS `toml:"tls"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Framing: netio.FramingNewline, StreamLimits: netio.DefaultStreamLimits(),
		BatchMaxCount: 1024, TLS: config.DefaultTLS(),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	errs := []error{netio.CheckAddress("address", c.Address)}
	if c.Framing != FramingNative {
		if err := netio.CheckFraming(c.Framing); err != nil {
			errs = append(errs, fmt.Errorf("framing: %v or native", err))
		}
	}
	errs = append(errs, netio.CheckNULTrailer(c.Framing, c.NULTrailer))
	errs = append(errs, c.StreamLimits.Validate())
	if c.BatchMaxCount < 1 {
		errs = append(errs, errors.New("batch_max_count: must be positive"))
	}
	if err := c.TLS.ValidateServer("tls"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Input serves TCP connections.
type Input struct {
	cfg Config
	set pipeline.Settings

	// logs rate-limits warnings a peer can repeat at will, one limiter
	// per kind shared by every connection.
	logs *ratelog.Keyed

	mu   sync.Mutex
	addr net.Addr // bound address, once listening
}

var _ pipeline.Input = (*Input)(nil)

// New returns a TCP input; it listens only when run.
func New(set pipeline.Settings, cfg Config) (*Input, error) {
	netio.DeclareServe(set, cfg.MaxConnections, cfg.TLS.On())
	if cfg.Framing == FramingNative {
		ternproto.DeclareServe(set)
		set.DeclareErrors("protocol")
	} else {
		netio.DeclareFrames(set)
	}
	return &Input{cfg: cfg, set: set, logs: ratelog.EveryKeyed(10 * time.Second)}, nil
}

// Factory registers the input.
func Factory() pipeline.Factory[pipeline.Input] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Input, error) {
		return New(s, c)
	}).WithSummary("TCP (+TLS) with newline, RFC 6587 or native framing")
}

// Addr is the bound address once Run listens (useful with port 0).
func (in *Input) Addr() net.Addr {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.addr
}

func (in *Input) Run(ctx context.Context, out pipeline.Emitter) error {
	var tlsCfg *tls.Config
	if in.cfg.TLS.On() {
		var err error
		if tlsCfg, err = in.cfg.TLS.ServerConfig(in.set); err != nil {
			return err
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", in.cfg.Address)
	if err != nil {
		return err
	}
	in.mu.Lock()
	in.addr = ln.Addr()
	in.mu.Unlock()
	in.set.Logger.Info("listening", "address", ln.Addr().String(), "tls", tlsCfg != nil, "framing", in.cfg.Framing)
	opts := netio.ServeOpts{MaxConnections: in.cfg.MaxConnections, TLS: tlsCfg, HandshakeTimeout: in.cfg.TLS.Timeout()}
	if in.cfg.Framing == FramingNative {
		return in.runNative(ctx, ln, opts, out)
	}
	return netio.Serve(ctx, ln, opts, in.set, func(ctx context.Context, c net.Conn) { in.serve(ctx, c, out) })
}

// runNative serves the router protocol. Its connections outlive ctx for a
// moment: when ctx ends the listener closes and each connection stops
// reading, but still sends the acknowledgements of batches it took
// (ternproto.Serve's drain) before it closes itself.
func (in *Input) runNative(ctx context.Context, ln net.Listener, opts netio.ServeOpts, out pipeline.Emitter) error {
	connCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	name := "tern/" + in.set.Hostname
	err := netio.Serve(connCtx, ln, opts, in.set, func(_ context.Context, c net.Conn) {
		err := ternproto.Serve(ctx, c, out, in.set, ternproto.ServeOptions{
			MaxFrame: in.cfg.MaxFrameBytes.N(), IdleTimeout: in.cfg.IdleTimeout.D(),
			Name: name, Source: "tern://" + c.RemoteAddr().String(),
		})
		if err != nil {
			// Counted always, logged at most every 10s: a hostile peer
			// must not flood the log.
			in.set.Error("protocol")
			in.logs.For("protocol").Warn(in.set.Logger, "native connection closed", "remote", c.RemoteAddr().String(), "err", err)
		}
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// serve reads one connection. Framings that answer the sender (tern's
// native protocol with acknowledgements) get their own serve function
// here; the stream framings share the batch loop.
func (in *Input) serve(ctx context.Context, c net.Conn, out pipeline.Emitter) {
	src := "tcp://" + c.RemoteAddr().String()
	r := &netio.IdleReader{C: c, Idle: in.cfg.IdleTimeout.D()}
	rd := netio.NewReader(in.cfg.Framing, r, netio.FrameOpts{Max: in.cfg.MaxFrameBytes.N(), NULTrailer: in.cfg.NULTrailer})
	err := framing.Emit(ctx, rd, pipeline.Record{Source: src}, in.cfg.BatchMaxCount, out, in.set, in.logs)
	netio.ConnEnded(c, err, in.set, in.logs)
}
