// Package syslog is the syslog front door: UDP, TCP and TLS listeners in one
// input, with syslog framing, made to feed the syslog decoder.
package syslog

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/ternlog/tern/internal/netio"
	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
)

//go:embed sample.toml
var sample string

// Type selects this input.
const Type = "syslog"

// Config is the [inputs.<name>] table with type = "syslog".
type Config struct {
	// UDPAddress is the UDP listener (RFC 5426); "" for none.
	UDPAddress string `toml:"udp_address"`
	// TCPAddress is the plain TCP listener (RFC 6587); "" for none.
	TCPAddress string `toml:"tcp_address"`
	// TLSAddress is the TLS listener (RFC 5425); "" for none. It needs the
	// tls table.
	TLSAddress string `toml:"tls_address"`
	// Framing on TCP and TLS: auto, octet_counting, non_transparent or
	// newline.
	Framing string `toml:"framing"`
	// NULTrailer makes NUL end a message too, as well as LF, with the auto
	// and non_transparent framings. Off by default: NUL is then data, and a
	// NUL inside a message cannot split it into a second, forged one.
	NULTrailer bool `toml:"nul_trailer"`
	// StreamLimits are max_frame_bytes, max_connections (on each
	// listener) and idle_timeout, on TCP and TLS.
	netio.StreamLimits
	// DatagramLimits are max_datagram_bytes and receive_buffer_bytes, on
	// UDP.
	netio.DatagramLimits
	// BatchMaxCount caps the records handed on at once (framing.Emit may
	// add the small rest of a read, up to twice as many).
	BatchMaxCount int `toml:"batch_max_count"`
	// RemoteAddrField names the field that gets the sender's IP address
	// ("" for none).
	RemoteAddrField string `toml:"remote_addr_field"`
	// TLS configures tls_address; with ca_file, client certificates are
	// required.
	TLS config.TLS `toml:"tls"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Framing: netio.FramingAuto, StreamLimits: netio.DefaultStreamLimits(),
		DatagramLimits: netio.DefaultDatagramLimits(), BatchMaxCount: 1024,
		RemoteAddrField: "remote_addr", TLS: config.DefaultTLS(),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.UDPAddress == "" && c.TCPAddress == "" && c.TLSAddress == "" {
		errs = append(errs, errors.New("udp_address: set at least one of udp_address, tcp_address and tls_address"))
	}
	for _, a := range []struct{ key, v string }{{"udp_address", c.UDPAddress}, {"tcp_address", c.TCPAddress}, {"tls_address", c.TLSAddress}} {
		if a.v != "" {
			errs = append(errs, netio.CheckAddress(a.key, a.v))
		}
	}
	if c.TLSAddress != "" && !c.TLS.On() {
		errs = append(errs, errors.New("tls_address: needs the tls table (cert_file and key_file)"))
	}
	if c.TLSAddress == "" && c.TLS.On() {
		errs = append(errs, errors.New("tls: set tls_address to use it"))
	}
	if err := netio.CheckFraming(c.Framing); err != nil {
		errs = append(errs, fmt.Errorf("framing: %v", err))
	}
	errs = append(errs, netio.CheckNULTrailer(c.Framing, c.NULTrailer))
	errs = append(errs, c.StreamLimits.Validate(), c.DatagramLimits.Validate())
	if c.BatchMaxCount < 1 {
		errs = append(errs, errors.New("batch_max_count: must be positive"))
	}
	if err := c.TLS.ValidateServer("tls"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Input runs the configured syslog listeners.
type Input struct {
	cfg  Config
	set  pipeline.Settings
	logs *ratelog.Keyed // warnings a peer can repeat, shared by connections

	mu                sync.Mutex
	udp, tcp, tlsAddr net.Addr
}

var _ pipeline.Input = (*Input)(nil)

// New returns a syslog input; it listens only when run.
func New(set pipeline.Settings, cfg Config) (*Input, error) {
	if cfg.UDPAddress != "" {
		netio.DeclareDatagrams(set)
	}
	if cfg.TCPAddress != "" || cfg.TLSAddress != "" {
		netio.DeclareServe(set, cfg.MaxConnections, cfg.TLSAddress != "")
		netio.DeclareFrames(set)
	}
	return &Input{cfg: cfg, set: set, logs: ratelog.EveryKeyed(10 * time.Second)}, nil
}

// Factory registers the input.
func Factory() pipeline.Factory[pipeline.Input] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Input, error) {
		return New(s, c)
	}).WithSummary("syslog over UDP, TCP and TLS (RFC 5425)")
}

// UDPAddr, TCPAddr and TLSAddr are the bound addresses once Run listens.
func (in *Input) UDPAddr() net.Addr { return in.get(&in.udp) }
func (in *Input) TCPAddr() net.Addr { return in.get(&in.tcp) }
func (in *Input) TLSAddr() net.Addr { return in.get(&in.tlsAddr) }

func (in *Input) get(p *net.Addr) net.Addr {
	in.mu.Lock()
	defer in.mu.Unlock()
	return *p
}

func (in *Input) setAddr(p *net.Addr, a net.Addr) {
	in.mu.Lock()
	*p = a
	in.mu.Unlock()
}

// Run binds every listener first (so a port in use fails the whole input
// at once), then serves them until ctx ends or one fails.
func (in *Input) Run(ctx context.Context, out pipeline.Emitter) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		serves  []func() error
		closers []io.Closer
	)
	closeAll := func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}
	if a := in.cfg.UDPAddress; a != "" {
		pc, err := netio.ListenUDP(ctx, a, in.cfg.ReceiveBufferBytes.N(), in.set)
		if err != nil {
			return err
		}
		closers = append(closers, pc)
		serves = append(serves, func() error {
			in.setAddr(&in.udp, pc.LocalAddr())
			in.set.Logger.Info("listening", "udp", pc.LocalAddr().String())
			return netio.ReadDatagrams(ctx, pc, netio.DatagramOpts{
				MaxSize: in.cfg.MaxDatagramBytes.N(), Batch: min(in.cfg.BatchMaxCount, 64),
				Scheme: "udp", AddrField: in.cfg.RemoteAddrField,
			}, out, in.set)
		})
	}
	for _, l := range []struct {
		addr string
		tls  bool
		dst  *net.Addr
	}{{in.cfg.TCPAddress, false, &in.tcp}, {in.cfg.TLSAddress, true, &in.tlsAddr}} {
		if l.addr == "" {
			continue
		}
		opts := netio.ServeOpts{MaxConnections: in.cfg.MaxConnections, HandshakeTimeout: in.cfg.TLS.Timeout()}
		if l.tls {
			cfg, err := in.cfg.TLS.ServerConfig(in.set)
			if err != nil {
				closeAll()
				return err
			}
			opts.TLS = cfg
		}
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", l.addr)
		if err != nil {
			closeAll()
			return err
		}
		closers = append(closers, ln)
		serves = append(serves, func() error {
			in.setAddr(l.dst, ln.Addr())
			in.set.Logger.Info("listening", "tcp", ln.Addr().String(), "tls", l.tls, "framing", in.cfg.Framing)
			return netio.Serve(ctx, ln, opts, in.set, func(ctx context.Context, c net.Conn) { in.serve(ctx, c, out) })
		})
	}
	errs := make(chan error, len(serves))
	var wg sync.WaitGroup
	for _, s := range serves {
		wg.Go(func() {
			err := s()
			if err != nil {
				cancel() // one listener failing restarts the whole input
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	var first error
	for err := range errs {
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (in *Input) serve(ctx context.Context, c net.Conn, out pipeline.Emitter) {
	proto := pipeline.Record{Source: "tcp://" + c.RemoteAddr().String(), Fields: netio.AddrFields(in.cfg.RemoteAddrField, c.RemoteAddr())}
	r := &netio.IdleReader{C: c, Idle: in.cfg.IdleTimeout.D()}
	// Empty frames carry no message (RFC 6587 senders sometimes end with
	// CR LF LF): they are skipped, not decoded into errors.
	rd := framing.SkipEmpty(netio.NewReader(in.cfg.Framing, r, netio.FrameOpts{Max: in.cfg.MaxFrameBytes.N(), NULTrailer: in.cfg.NULTrailer}))
	err := framing.Emit(ctx, rd, proto, in.cfg.BatchMaxCount, out, in.set, in.logs)
	netio.ConnEnded(c, err, in.set, in.logs)
}
