package oracle

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TCPSource writes newline-separated events over plain TCP connections, as
// fast as Rate allows and the connection takes them. Plain TCP has no
// acknowledgement, so an event counts as acknowledged once its Write
// returned: a promise that holds only while tern does not crash (the
// scenarios that use it stop tern with SIGTERM and check that it dropped
// nothing). A write that blocks is TCP backpressure.
type TCPSource struct {
	O     *Oracle
	Addr  string
	Conns int
	// Batch is events per write; Rate caps events per second (0: none).
	Batch, Rate int

	next    atomic.Int64
	Written atomic.Int64
	// Blocked is the total time writes spent waiting.
	Blocked atomic.Int64
}

// Run writes events [start, start+n) until done or ctx ends, and returns
// how many were written.
func (s *TCPSource) Run(ctx context.Context, start, n int) int {
	s.next.Store(int64(start))
	end := int64(start + n)
	var pace <-chan time.Time
	if s.Rate > 0 {
		t := time.NewTicker(max(time.Second*time.Duration(s.Batch)/time.Duration(s.Rate), time.Microsecond))
		defer t.Stop()
		pace = t.C
	}
	var wg sync.WaitGroup
	for range max(s.Conns, 1) {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			// A write is never cut short: half an event at the end of a
			// connection would arrive as a corrupt record. A write that
			// blocks (backpressure) finishes once tern reads again.
			var body []byte
			seqs := make([]int, 0, s.Batch)
			for {
				if pace != nil {
					select {
					case <-pace:
					case <-ctx.Done():
						return
					}
				}
				from := s.next.Add(int64(s.Batch)) - int64(s.Batch)
				if from >= end || ctx.Err() != nil {
					return
				}
				to := min(from+int64(s.Batch), end)
				body, seqs = body[:0], seqs[:0]
				for q := from; q < to; q++ {
					body = append(s.O.Gen.Event(body, int(q)), '\n')
					seqs = append(seqs, int(q))
				}
				s.O.Sent(seqs...)
				t0 := time.Now()
				if _, err := c.Write(body); err != nil {
					return // partly written events stay sent, not acknowledged
				}
				s.Blocked.Add(int64(time.Since(t0)))
				s.O.Acked(seqs...)
				s.Written.Add(int64(len(seqs)))
			}
		})
	}
	wg.Wait()
	return int(s.Written.Load())
}
