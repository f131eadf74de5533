package oracle

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Source posts events to tern's HTTP input, newline-separated, and retries
// each request until it gets 200: only then are its events acknowledged.
// Events of a request that never got 200 are sent but not acknowledged.
type Source struct {
	O     *Oracle
	URL   string
	Token string
	// Batch is the number of events per request, Workers the number of
	// concurrent senders.
	Batch, Workers int
	// Rate caps events per second over all workers (0: as fast as acks
	// come back).
	Rate int
	// Timeout bounds one request (tern answers after delivery).
	Timeout time.Duration

	next      atomic.Int64
	Requests  atomic.Int64 // attempts
	Failures  atomic.Int64 // attempts that did not get 200
	Status503 atomic.Int64
}

// Run sends events [start, start+n) and returns when every request got 200
// or ctx ended. It returns the number of events acknowledged.
func (s *Source) Run(ctx context.Context, start, n int) int {
	s.next.Store(int64(start))
	end := int64(start + n)
	client := &http.Client{Timeout: s.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: s.Workers, DisableCompression: true}}
	defer client.CloseIdleConnections()
	var pace <-chan time.Time
	if s.Rate > 0 {
		every := time.Second * time.Duration(s.Batch) / time.Duration(s.Rate)
		t := time.NewTicker(max(every, time.Microsecond))
		defer t.Stop()
		pace = t.C
	}
	var acked atomic.Int64
	var wg sync.WaitGroup
	for range max(s.Workers, 1) {
		wg.Go(func() {
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
					body = s.O.Gen.Event(body, int(q))
					body = append(body, '\n')
					seqs = append(seqs, int(q))
				}
				s.O.Sent(seqs...)
				if s.post(ctx, client, body) {
					s.O.Acked(seqs...)
					acked.Add(int64(len(seqs)))
				}
			}
		})
	}
	wg.Wait()
	return int(acked.Load())
}

// post sends body until it gets 200 or ctx ends.
func (s *Source) post(ctx context.Context, client *http.Client, body []byte) bool {
	delay := 20 * time.Millisecond
	for ctx.Err() == nil {
		s.Requests.Add(1)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
		if err != nil {
			return false
		}
		req.Header.Set("Content-Type", "text/plain")
		if s.Token != "" {
			req.Header.Set("Authorization", "Bearer "+s.Token)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
			if resp.StatusCode == http.StatusServiceUnavailable {
				s.Status503.Add(1)
			}
		}
		s.Failures.Add(1)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
	return false
}

// SinkMode is how a Sink answers.
type SinkMode int32

const (
	// SinkUp takes requests (subject to FailRate and Rate).
	SinkUp SinkMode = iota
	// SinkDown answers 503 to everything.
	SinkDown
	// SinkHang holds requests without answering until the mode changes.
	SinkHang
)

// Sink is an HTTP server that plays tern's downstream: it records each line
// of a 200-answered POST body in the oracle. It can refuse a share of
// requests (503, or SetFailStatus), add latency, cap its rate, go down or hang.
type Sink struct {
	O *Oracle

	mode     atomic.Int32
	mu       sync.Mutex
	failRate float64       // share of requests refused before reading
	failCode int           // their status: 503 unless SetFailStatus
	latency  time.Duration // added to each request
	rate     int           // accepted events per second; 0: no cap
	rng      *rand.Rand
	budget   float64
	last     time.Time
	srv      *http.Server
	ln       net.Listener
	Requests atomic.Int64
	Accepted atomic.Int64 // events
	Refused  atomic.Int64
	inFlight atomic.Int64 // requests being served
	modeCh   chan struct{}
}

// NewSink listens on a random loopback port.
func NewSink(o *Oracle, seed uint64) (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{O: o, rng: rand.New(rand.NewPCG(seed, 0x5171c)), ln: ln, modeCh: make(chan struct{}), failCode: http.StatusServiceUnavailable}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is where to POST.
func (s *Sink) URL() string { return "http://" + s.ln.Addr().String() + "/" }

// Addr is the listening address.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// SetFailRate makes the sink answer a share of requests with 503.
func (s *Sink) SetFailRate(f float64) {
	s.mu.Lock()
	s.failRate = f
	s.mu.Unlock()
}

// SetFailStatus sets the status of refused requests (default 503; any 5xx
// is retriable for tern's HTTP output).
func (s *Sink) SetFailStatus(code int) {
	s.mu.Lock()
	s.failCode = code
	s.mu.Unlock()
}

// SetLatency delays every answer by d.
func (s *Sink) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// SetRate caps the events the sink takes per second (0: no cap): a slow
// sink.
func (s *Sink) SetRate(n int) {
	s.mu.Lock()
	s.rate = n
	s.mu.Unlock()
}

// SetMode switches how the sink answers.
func (s *Sink) SetMode(m SinkMode) {
	s.mode.Store(int32(m))
	s.mu.Lock()
	close(s.modeCh)
	s.modeCh = make(chan struct{})
	s.mu.Unlock()
}

// Close stops the server.
func (s *Sink) Close() error {
	s.SetMode(SinkDown)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	return err
}

// Quiesce waits until the sink has served no request for quiet and none is
// being served, or limit passes: after its client died, every request the
// client got out has then been recorded.
func (s *Sink) Quiesce(quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		n := s.Requests.Load()
		time.Sleep(quiet)
		if s.inFlight.Load() == 0 && s.Requests.Load() == n {
			return
		}
	}
}

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	s.Requests.Add(1)
	for SinkMode(s.mode.Load()) == SinkHang {
		s.mu.Lock()
		ch := s.modeCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	failCode := 0
	switch {
	case SinkMode(s.mode.Load()) == SinkDown:
		failCode = http.StatusServiceUnavailable
	case s.failRate > 0 && s.rng.Float64() < s.failRate:
		failCode = s.failCode
	}
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if failCode != 0 {
		s.Refused.Add(1)
		w.Header().Set("Retry-After", "0")
		http.Error(w, "unavailable", failCode)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	n := bytes.Count(body, []byte{'\n'})
	if len(body) > 0 && body[len(body)-1] != '\n' {
		n++
	}
	s.pace(n, r.Context())
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			s.O.Received(sc.Bytes())
		}
	}
	s.Accepted.Add(int64(n))
	w.WriteHeader(http.StatusOK)
}

// pace makes the sink take no more than Rate events per second.
func (s *Sink) pace(n int, ctx context.Context) {
	s.mu.Lock()
	rate := s.rate
	if rate <= 0 {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	if s.last.IsZero() {
		s.last = now
	}
	s.budget += now.Sub(s.last).Seconds() * float64(rate)
	s.budget = min(s.budget, float64(rate)) // at most a second of burst
	s.last = now
	s.budget -= float64(n)
	wait := time.Duration(0)
	if s.budget < 0 {
		wait = time.Duration(-s.budget / float64(rate) * float64(time.Second))
	}
	s.mu.Unlock()
	if wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
}
