// Package tcp is the input that accepts TCP connections and reads framed
// records from them.
package tcp

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
)

//go:embed sample.toml
var sample string

// Type selects this input.
const Type = "tcp"

// Config is the [inputs.<name>] table with type = "tcp".
type Config struct {
	// Address to listen on, host:port.
	Address string `toml:"address"`
	// Framing of records on a connection: newline.
	Framing string `toml:"framing"`
	// MaxLineBytes caps one record; longer ones are dropped and counted.
	MaxLineBytes config.Size `toml:"max_line_bytes"`
	// MaxConnections caps concurrent connections; more are accepted and
	// closed at once, and counted.
	MaxConnections int `toml:"max_connections"`
	// IdleTimeout closes a connection that sent nothing for this long.
	IdleTimeout config.Duration `toml:"idle_timeout"`
	// BatchMaxCount caps the records handed on at once.
	BatchMaxCount int `toml:"batch_max_count"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Framing: "newline", MaxLineBytes: framing.DefaultMaxLine, MaxConnections: 1024,
		IdleTimeout: config.Duration(5 * time.Minute), BatchMaxCount: 1024,
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("address: required"))
	} else if _, _, err := net.SplitHostPort(c.Address); err != nil {
		errs = append(errs, fmt.Errorf("address: %v", err))
	}
	if c.Framing != "newline" {
		errs = append(errs, fmt.Errorf("framing: must be newline, not %q", c.Framing))
	}
	if c.MaxLineBytes < 1 {
		errs = append(errs, errors.New("max_line_bytes: must be positive"))
	}
	if c.MaxConnections < 1 {
		errs = append(errs, errors.New("max_connections: must be positive"))
	}
	if c.BatchMaxCount < 1 {
		errs = append(errs, errors.New("batch_max_count: must be positive"))
	}
	return errors.Join(errs...)
}

// Input serves TCP connections.
type Input struct {
	cfg Config
	set pipeline.Settings

	mu   sync.Mutex
	addr net.Addr // bound address, once listening
}

var _ pipeline.Input = (*Input)(nil)

// New returns a TCP input; it listens only when run.
func New(set pipeline.Settings, cfg Config) (*Input, error) {
	return &Input{cfg: cfg, set: set}, nil
}

// Factory registers the input.
func Factory() pipeline.Factory[pipeline.Input] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Input, error) {
		return New(s, c)
	})
}

// Addr is the bound address once Run listens (useful with port 0).
func (in *Input) Addr() net.Addr {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.addr
}

func (in *Input) Run(ctx context.Context, out pipeline.Emitter) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", in.cfg.Address)
	if err != nil {
		return err
	}
	in.mu.Lock()
	in.addr = ln.Addr()
	in.mu.Unlock()
	in.set.Logger.Info("listening", "address", ln.Addr().String())

	var wg sync.WaitGroup
	conns := make(map[net.Conn]struct{})
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()

	sem := make(chan struct{}, in.cfg.MaxConnections)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return err
		}
		select {
		case sem <- struct{}{}:
		default:
			in.set.Error("connection_limit")
			c.Close()
			continue
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
				<-sem
			}()
			in.serve(ctx, c, out)
		})
	}
}

// idleConn pushes the read deadline forward on every read, so only a quiet
// connection times out.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c idleConn) Read(p []byte) (int, error) {
	if c.idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	}
	return c.Conn.Read(p)
}

func (in *Input) serve(ctx context.Context, c net.Conn, out pipeline.Emitter) {
	src := "tcp://" + c.RemoteAddr().String()
	lines := framing.NewLineReader(idleConn{c, in.cfg.IdleTimeout.D()}, in.cfg.MaxLineBytes.N())
	err := framing.EmitLines(ctx, lines, pipeline.Record{Source: src}, in.cfg.BatchMaxCount, out, in.set)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		in.set.Logger.Debug("idle connection closed", "remote", c.RemoteAddr().String())
	}
}
