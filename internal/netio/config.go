package netio

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
)

// CheckAddress returns a "key: message" error when addr is empty or not
// host:port, nil when it is fine.
func CheckAddress(key, addr string) error {
	if addr == "" {
		return fmt.Errorf("%s: required", key)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s: %v", key, err)
	}
	return nil
}

// StreamLimits are the keys that bound the connections of a stream (TCP
// or TLS) listener of an input. The tcp and syslog inputs' Configs embed
// it, so its keys sit in the input's table.
type StreamLimits struct {
	// MaxFrameBytes caps one record. An over-long line is dropped and
	// counted, and reading resumes after its newline; an over-long
	// octet-counted frame is counted and its connection closed.
	MaxFrameBytes config.Size `toml:"max_frame_bytes"`
	// MaxConnections caps concurrent connections (on each listener). At
	// the cap the longest-idle one makes room, or else the newcomer is
	// closed at once (see LimitListener); both are counted.
	MaxConnections int `toml:"max_connections"`
	// IdleTimeout closes a connection that sent nothing for this long.
	IdleTimeout config.Duration `toml:"idle_timeout"`
}

// DefaultStreamLimits returns the defaults: 1MiB frames, 1024
// connections, 5 minutes idle.
func DefaultStreamLimits() StreamLimits {
	return StreamLimits{MaxFrameBytes: framing.DefaultMaxLine, MaxConnections: 1024, IdleTimeout: config.Duration(5 * time.Minute)}
}

// Validate returns "key: message" errors.
func (l StreamLimits) Validate() error {
	var errs []error
	if l.MaxFrameBytes < 1 || l.MaxFrameBytes > 1<<30 {
		errs = append(errs, errors.New("max_frame_bytes: must be between 1 and 1GiB"))
	}
	if l.MaxConnections < 1 {
		errs = append(errs, errors.New("max_connections: must be positive"))
	}
	return errors.Join(errs...)
}

// DatagramLimits are the keys that bound a UDP listener of an input. The
// udp and syslog inputs' Configs embed it, so its keys sit in the input's
// table.
type DatagramLimits struct {
	// MaxDatagramBytes is the largest datagram kept; larger ones are
	// dropped whole and counted, never truncated.
	MaxDatagramBytes config.Size `toml:"max_datagram_bytes"`
	// ReceiveBufferBytes sets the socket's kernel receive buffer
	// (SO_RCVBUF); 0 keeps the system default.
	ReceiveBufferBytes config.Size `toml:"receive_buffer_bytes"`
}

// DefaultDatagramLimits returns the defaults: 64KiB datagrams, the
// system's receive buffer.
func DefaultDatagramLimits() DatagramLimits {
	return DatagramLimits{MaxDatagramBytes: 64 << 10}
}

// Validate returns "key: message" errors.
func (l DatagramLimits) Validate() error {
	var errs []error
	if l.MaxDatagramBytes < 1 || l.MaxDatagramBytes > 64<<10 {
		errs = append(errs, errors.New("max_datagram_bytes: must be between 1 and 64KiB"))
	}
	if l.ReceiveBufferBytes < 0 || l.ReceiveBufferBytes > 1<<30 {
		errs = append(errs, errors.New("receive_buffer_bytes: must be between 0 and 1GiB"))
	}
	return errors.Join(errs...)
}

// ConnEnded logs how reading stream connection c ended (err is what
// framing.Emit returned): at its end or at a stop, nothing; after the idle
// timeout, at debug level; on broken framing, a warning through logs
// (shared by the input's connections; nil: every one), counted with
// set.Error("framing"); on anything else, at debug level.
func ConnEnded(c net.Conn, err error, set pipeline.Settings, logs *ratelog.Keyed) {
	switch {
	case err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
	case IsTimeout(err):
		set.Logger.Debug("idle connection closed", "remote", c.RemoteAddr().String())
	case errors.Is(err, framing.ErrSyslogFrame), errors.Is(err, io.ErrUnexpectedEOF):
		set.Error("framing")
		logs.For("framing").Warn(set.Logger, "connection closed: broken framing", "remote", c.RemoteAddr().String(), "err", err)
	default:
		set.Logger.Debug("connection ended", "remote", c.RemoteAddr().String(), "err", err)
	}
}
