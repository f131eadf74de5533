package nettest

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternlog/tern/internal/ternproto"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// Router stands in for a receiving tern: ternproto.Serve on a loopback
// listener, handing what it takes to an Emitter.
type Router struct {
	// Addr is the bound address.
	Addr string
	// Open counts the connections being served.
	Open atomic.Int32
	stop func()
}

// StartRouter serves on addr ("" for a free loopback port; a given one is
// tried for up to 2.5s, so a test can start a router again where it
// stopped one), over TLS when tlsCfg is set. The router stops at the end
// of the test, if Stop did not stop it before.
func StartRouter(t testing.TB, addr string, em pipeline.Emitter, opt ternproto.ServeOptions, tlsCfg *tls.Config) *Router {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	r := &Router{Addr: ln.Addr().String()}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			r.Open.Add(1)
			wg.Go(func() {
				defer r.Open.Add(-1)
				_ = ternproto.Serve(ctx, c, em, pipelinetest.Settings(t, "inputs.router"), opt)
			})
		}
	})
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			ln.Close()
			mu.Lock()
			for c := range conns {
				c.Close() // a crash: no drain
			}
			mu.Unlock()
			wg.Wait()
		})
	}
	t.Cleanup(r.stop)
	return r
}

// Stop closes the listener and every connection at once, as a crash
// would (no drain), and waits for the connections' goroutines.
func (r *Router) Stop() { r.stop() }
