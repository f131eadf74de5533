// Package faultproxy is a TCP proxy for fault tests: it forwards between
// clients and a target and, on command, pauses, blackholes, resets or slows
// the traffic (docs/reliability.md §5.1).
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is what the proxy does with traffic.
type Mode int32

const (
	// Pass forwards everything.
	Pass Mode = iota
	// Pause stops forwarding in both directions, connections stay open.
	Pause
	// Blackhole accepts connections and never reads from them nor
	// connects upstream; open connections stop being read.
	Blackhole
	// Reset closes every connection with a RST, and each new one at once.
	Reset
)

// Proxy forwards 127.0.0.1 connections to a target.
type Proxy struct {
	target  string
	ln      net.Listener
	mode    atomic.Int32
	latency atomic.Int64

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	change  chan struct{}
	closed  bool
	wg      sync.WaitGroup
	Accepts atomic.Int64
}

// New listens on a random loopback port and forwards to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}, change: make(chan struct{})}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is where clients connect.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetMode switches the mode; Reset takes effect on open connections at once.
func (p *Proxy) SetMode(m Mode) {
	p.mode.Store(int32(m))
	p.mu.Lock()
	close(p.change)
	p.change = make(chan struct{})
	if m == Reset {
		for c := range p.conns {
			rst(c)
		}
	}
	p.mu.Unlock()
}

// SetLatency delays every forwarded chunk by d.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

func rst(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	close(p.change)
	p.change = make(chan struct{})
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// wait blocks while the mode is m (or the proxy closes); it reports
// whether to go on.
func (p *Proxy) waitWhile(m Mode) bool {
	for Mode(p.mode.Load()) == m {
		p.mu.Lock()
		ch, closed := p.change, p.closed
		p.mu.Unlock()
		if closed {
			return false
		}
		<-ch
	}
	return true
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.Accepts.Add(1)
		if !p.track(c) {
			continue
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer p.untrack(c)
	switch Mode(p.mode.Load()) {
	case Reset:
		rst(c)
		return
	case Blackhole:
		if !p.waitWhile(Blackhole) {
			return
		}
	}
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		rst(c)
		return
	}
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	var wg sync.WaitGroup
	wg.Go(func() { p.pump(up, c); closeWrite(up) })
	p.pump(c, up)
	closeWrite(c)
	wg.Wait()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// pump copies src to dst chunk by chunk, obeying the mode before reading
// and again before forwarding what it read (so a pause holds data that
// arrives during it).
func (p *Proxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		if !p.gate(src, dst) {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate(src, dst) {
				return
			}
			if d := time.Duration(p.latency.Load()); d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rst(dst)
			}
			return
		}
	}
}

// gate waits while traffic is held; false means stop (reset or closed).
func (p *Proxy) gate(src, dst net.Conn) bool {
	for {
		m := Mode(p.mode.Load())
		switch m {
		case Pass:
			return true
		case Reset:
			rst(src)
			rst(dst)
			return false
		}
		if !p.waitWhile(m) {
			return false
		}
	}
}
