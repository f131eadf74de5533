// Package netio holds what tern's network plugins share: a listener that
// caps connections (making room by evicting the longest-idle one, or else
// closing the newcomer, counted and logged), TLS handshakes under a
// deadline, idle timeouts, framed readers and the batch loop that hands
// records to the engine, batched UDP reads, and the config keys that bound
// listeners (StreamLimits, DatagramLimits). It imports no plugin.
package netio

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/ternlog/tern/pipeline"
)

// ServeOpts configure Serve.
type ServeOpts struct {
	// MaxConnections caps concurrent connections (see LimitListener).
	MaxConnections int
	// MinIdle is how long a connection must have waited for data before a
	// new one may take its slot at the cap (DefaultMinIdle when 0).
	MinIdle time.Duration
	// TLS, when set, wraps each connection; the handshake must finish
	// within HandshakeTimeout or the connection is closed.
	TLS              *tls.Config
	HandshakeTimeout time.Duration
}

// Serve accepts connections on ln until ctx ends and runs handle for each
// on its own goroutine. When ctx ends it closes the listener and every
// open connection, and returns once every handler has returned. Failed
// TLS handshakes are counted with set.Error("tls_handshake") and logged at
// debug level. Serve returns nil after ctx ends, or the listener's error.
func Serve(ctx context.Context, ln net.Listener, opts ServeOpts, set pipeline.Settings, handle func(context.Context, net.Conn)) error {
	if opts.MaxConnections > 0 {
		ln = LimitListener(ln, LimitOpts{Max: opts.MaxConnections, MinIdle: opts.MinIdle}, set)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: wait, do not spin.
				set.Error("accept")
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					return nil
				}
				continue
			}
			_ = ln.Close()
			return err
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			_ = c.Close()
			return nil
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				_ = c.Close()
			}()
			conn := c
			if opts.TLS != nil {
				tc, err := Handshake(ctx, c, opts.TLS, opts.HandshakeTimeout)
				if err != nil {
					set.Error("tls_handshake")
					if set.Logger != nil {
						set.Logger.Debug("TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
					}
					return
				}
				conn = tc
			}
			handle(ctx, conn)
		})
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Handshake runs the server side of a TLS handshake on c within timeout
// (10s when 0). Go would otherwise run it lazily on the first Read, with
// no deadline, and a peer that never sends a ClientHello would hold the
// connection forever.
func Handshake(ctx context.Context, c net.Conn, cfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	return handshake(ctx, c, tls.Server(c, cfg), timeout)
}

// ClientHandshake runs the client side of a TLS handshake within timeout.
func ClientHandshake(ctx context.Context, c net.Conn, cfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	return handshake(ctx, c, tls.Client(c, cfg), timeout)
}

func handshake(ctx context.Context, c net.Conn, tc *tls.Conn, timeout time.Duration) (*tls.Conn, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return tc, nil
}

// IdleReader reads from c and pushes its read deadline forward before each
// read, so that only a connection that sends nothing for idle times out.
type IdleReader struct {
	C    net.Conn
	Idle time.Duration
	last time.Time
}

func (r *IdleReader) Read(p []byte) (int, error) {
	if r.Idle > 0 {
		// Setting a deadline costs a lock and a timer update: skip it when
		// the previous one is still far off (within 1/8 of the timeout).
		now := time.Now()
		if now.Sub(r.last) > r.Idle/8 {
			_ = r.C.SetReadDeadline(now.Add(r.Idle))
			r.last = now
		}
	}
	return r.C.Read(p)
}

// IsTimeout reports whether err is a deadline expiry.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
