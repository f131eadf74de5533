// Package udp is the input that reads one record per UDP datagram.
package udp

import (
	"context"
	_ "embed"
	"errors"
	"net"
	"sync"

	"github.com/ternlog/tern/internal/netio"
	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this input.
const Type = "udp"

// Config is the [inputs.<name>] table with type = "udp".
type Config struct {
	// Address to listen on, host:port.
	Address string `toml:"address"`
	// DatagramLimits are max_datagram_bytes and receive_buffer_bytes.
	netio.DatagramLimits
	// BatchMaxCount is how many datagrams one read may return and one
	// batch may carry.
	BatchMaxCount int `toml:"batch_max_count"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{DatagramLimits: netio.DefaultDatagramLimits(), BatchMaxCount: 64}
}

// Validate checks the config.
func (c Config) Validate() error {
	errs := []error{netio.CheckAddress("address", c.Address)}
	errs = append(errs, c.DatagramLimits.Validate())
	if c.BatchMaxCount < 1 || c.BatchMaxCount > 1024 {
		errs = append(errs, errors.New("batch_max_count: must be between 1 and 1024"))
	}
	return errors.Join(errs...)
}

// Input reads datagrams.
type Input struct {
	cfg Config
	set pipeline.Settings

	mu   sync.Mutex
	addr net.Addr
}

var _ pipeline.Input = (*Input)(nil)

// New returns a UDP input; it binds only when run.
func New(set pipeline.Settings, cfg Config) (*Input, error) {
	netio.DeclareDatagrams(set)
	return &Input{cfg: cfg, set: set}, nil
}

// Factory registers the input.
func Factory() pipeline.Factory[pipeline.Input] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Input, error) {
		return New(s, c)
	}).WithSummary("one datagram per record")
}

// Addr is the bound address once Run listens.
func (in *Input) Addr() net.Addr {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.addr
}

func (in *Input) Run(ctx context.Context, out pipeline.Emitter) error {
	pc, err := netio.ListenUDP(ctx, in.cfg.Address, in.cfg.ReceiveBufferBytes.N(), in.set)
	if err != nil {
		return err
	}
	defer pc.Close()
	in.mu.Lock()
	in.addr = pc.LocalAddr()
	in.mu.Unlock()
	in.set.Logger.Info("listening", "address", pc.LocalAddr().String())
	return netio.ReadDatagrams(ctx, pc, netio.DatagramOpts{
		MaxSize: in.cfg.MaxDatagramBytes.N(), Batch: in.cfg.BatchMaxCount, Scheme: "udp",
	}, out, in.set)
}
