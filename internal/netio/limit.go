package netio

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/pipeline"
)

// DefaultMinIdle is how long a connection must have waited for data before
// a new one may take its slot (LimitOpts.MinIdle).
const DefaultMinIdle = time.Second

// LimitOpts configure LimitListener.
type LimitOpts struct {
	// Max is the most connections open at once.
	Max int
	// MinIdle is how long a connection must have waited for data to be
	// evicted for a new one (DefaultMinIdle when 0).
	MinIdle time.Duration
}

// LimitListener returns a listener that holds at most opts.Max connections
// open at once. When one arrives at the cap, the open connection that has
// waited longest for data (in a Read, and not marked busy with SetBusy)
// makes room if it waited at least MinIdle: it is closed, counted in
// tern_connections_evicted_total and logged, so idle connections cannot
// lock new clients out until the idle timeout. Otherwise the new connection
// is accepted and closed at once (a refused slot costs the server nothing
// and tells the peer quickly), counted in tern_connections_refused_total
// and logged. Each of the two logs its first event of a minute, with the
// number held back since. A slot frees when the returned connection is
// closed.
//
// Finding the longest-idle connection scans the open ones, only at the
// cap; a Read costs two clock readings more.
func LimitListener(ln net.Listener, opts LimitOpts, set pipeline.Settings) net.Listener {
	if opts.MinIdle <= 0 {
		opts.MinIdle = DefaultMinIdle
	}
	return &limitListener{
		Listener: ln, opts: opts, set: set,
		refusedLog: ratelog.Every(time.Minute), evictedLog: ratelog.Every(time.Minute),
		refused: counter(set, "connections_refused_total", "Connections closed at once: max_connections were open and none idle."),
		evicted: counter(set, "connections_evicted_total", "Idle connections closed to make room for a new one at max_connections."),
	}
}

// counter returns an adder to a plugin counter that has no label besides
// plugin, so that it is exported (at zero) from the start.
func counter(set pipeline.Settings, name, help string) func() {
	if set.Telemetry == nil {
		return func() {}
	}
	add := set.Telemetry.Counter(name, help)
	return func() { add(1) }
}

type limitListener struct {
	net.Listener
	opts                   LimitOpts
	set                    pipeline.Settings
	refused, evicted       func()
	refusedLog, evictedLog *ratelog.Limiter

	mu    sync.Mutex
	conns []*limitConn // the open ones, each at its idx
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitConn{Conn: c, l: l}
		l.mu.Lock()
		var victim *limitConn
		if len(l.conns) >= l.opts.Max {
			if victim = l.longestIdle(); victim != nil {
				l.remove(victim)
			}
		}
		if len(l.conns) < l.opts.Max {
			lc.idx = len(l.conns)
			l.conns = append(l.conns, lc)
			l.mu.Unlock()
			if victim != nil {
				l.evict(victim, c)
			}
			return lc, nil
		}
		l.mu.Unlock()
		_ = c.Close()
		l.refused()
		if l.set.Logger != nil {
			l.refusedLog.Warn(l.set.Logger, "connection refused: max_connections reached and none idle",
				"remote", c.RemoteAddr().String(), "max_connections", l.opts.Max, "min_idle", l.opts.MinIdle)
		}
	}
}

// evict closes victim, whose slot c took. Its handler sees its reads fail
// and ends as for any closed connection.
func (l *limitListener) evict(victim *limitConn, c net.Conn) {
	idle := time.Duration(0)
	if w := victim.waiting.Load(); w != 0 {
		idle = time.Duration(time.Now().UnixNano() - w)
	}
	_ = victim.Conn.Close()
	l.evicted()
	if l.set.Logger != nil {
		l.evictedLog.Warn(l.set.Logger, "max_connections reached: evicted the longest-idle connection",
			"remote", victim.RemoteAddr().String(), "idle", idle.Round(time.Millisecond),
			"for", c.RemoteAddr().String(), "max_connections", l.opts.Max)
	}
}

// longestIdle returns the open connection that has waited longest for
// data, if it waited at least MinIdle, or nil. l.mu is held.
func (l *limitListener) longestIdle() *limitConn {
	var best *limitConn
	since := time.Now().UnixNano() - int64(l.opts.MinIdle)
	for _, c := range l.conns {
		if w := c.waiting.Load(); w != 0 && w <= since && !c.busy.Load() {
			best, since = c, w
		}
	}
	return best
}

// remove takes c out of the open connections. l.mu is held.
func (l *limitListener) remove(c *limitConn) {
	if c.idx < 0 {
		return
	}
	last := l.conns[len(l.conns)-1]
	l.conns[c.idx], last.idx = last, c.idx
	l.conns[len(l.conns)-1] = nil
	l.conns = l.conns[:len(l.conns)-1]
	c.idx = -1
}

// limitConn holds a slot of a limitListener until it is closed or evicted.
type limitConn struct {
	net.Conn
	l       *limitListener
	idx     int          // in l.conns, -1 once out; under l.mu
	waiting atomic.Int64 // unix ns since a Read waits; 0 outside Read
	busy    atomic.Bool  // see SetBusy
}

func (c *limitConn) Read(p []byte) (int, error) {
	c.waiting.Store(time.Now().UnixNano())
	n, err := c.Conn.Read(p)
	c.waiting.Store(0)
	return n, err
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.l.mu.Lock()
	c.l.remove(c)
	c.l.mu.Unlock()
	return err
}

// SetBusy marks a connection of a LimitListener (or a TLS connection over
// one) busy or not: a busy connection is never evicted, even while a Read
// waits. net/http reads in the background while a handler runs; the HTTP
// input marks its connections busy from StateActive to StateIdle.
func SetBusy(c net.Conn, busy bool) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitConn); ok {
		lc.busy.Store(busy)
	}
}
