package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/matcher"
)

// GET /tap streams a tap as lines of JSON (application/x-ndjson), what
// `tern tap` and the dashboard's alert feed read. Query parameters:
//
//	match   a message_matcher expression, compiled here (default: every message)
//	plugin  a filter or output, by id or name: what it receives (default: what the router routes)
//	rate    messages per second at most, 0 < rate <= 100000 (default 1000); the rest are skipped
//	n       end the stream after n messages (default 0: no end)
//	buffer  messages waiting for a slow reader, 1 to 65536 (default 1024); 8 MiB at most
//
// Each message is one line of canonical JSON (pipeline/codec), which starts
// with {"uuid":. The other lines start with {"tap": and carry the tap's
// state: the first says what was subscribed ({"tap":{"plugin":…,"match":…,
// "rate":…,"n":…,"buffer":…}}), then, at most once a second when they changed and
// every 15 s regardless, the counts ({"tap":{"matched":…,"skipped":…,
// "dropped":…,"sent":…}}: dropped counts what did not fit while the reader
// was too slow), and a last one adds "end": "n" (n messages sent) or
// "stopped" (the engine stopped or reloaded).
//
// Bounds: at most Options.MaxTaps taps at once (429 beyond), buffer
// messages or 8 MiB waiting per tap, a matcher of 4 KiB at most, and a write that
// makes no progress for 10 s ends the stream.
const (
	tapDefaultRate  = 1000
	tapMaxBuffer    = 1 << 16
	tapMaxRate      = 100000
	tapMaxExpr      = 4 << 10
	tapStatusEvery  = time.Second
	tapHeartbeat    = 15 * time.Second
	tapWriteTimeout = 10 * time.Second
	tapFlushBytes   = 64 << 10
)

// tapLine is the {"tap":…} line.
type tapLine struct {
	Tap tapState `json:"tap"`
}

type tapState struct {
	Plugin  *string `json:"plugin,omitempty"`
	Match   *string `json:"match,omitempty"`
	Rate    float64 `json:"rate,omitempty"`
	N       *int    `json:"n,omitempty"`
	Buffer  int     `json:"buffer,omitempty"`
	Matched *uint64 `json:"matched,omitempty"`
	Skipped *uint64 `json:"skipped,omitempty"`
	Dropped *uint64 `json:"dropped,omitempty"`
	Sent    *int    `json:"sent,omitempty"`
	End     string  `json:"end,omitempty"`
}

func appendTapLine(dst []byte, s tapState) []byte {
	b, _ := json.Marshal(tapLine{s})
	return append(append(dst, b...), '\n')
}

func (e *Engine) tapHandler(auth *adminAuth) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth.open() && !auth.loopback {
			http.Error(w, "taps show message contents: on a non-loopback metrics_address they need metrics_tokens, metrics_token_file or mutual TLS ([tern.metrics_tls] ca_file)", http.StatusForbidden)
			return
		}
		q := r.URL.Query()
		opt := TapOptions{Plugin: q.Get("plugin"), Rate: tapDefaultRate, Buffer: 1024}
		expr := q.Get("match")
		if len(expr) > tapMaxExpr {
			http.Error(w, fmt.Sprintf("match: longer than %d bytes", tapMaxExpr), http.StatusBadRequest)
			return
		}
		if expr != "" {
			m, err := matcher.Compile(expr)
			if err != nil {
				http.Error(w, "match: "+err.Error(), http.StatusBadRequest)
				return
			}
			opt.Match = m
		}
		if s := q.Get("rate"); s != "" {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || !(f > 0 && f <= tapMaxRate) {
				http.Error(w, fmt.Sprintf("rate: want a number of messages per second above 0 and at most %d", tapMaxRate), http.StatusBadRequest)
				return
			}
			opt.Rate = f
		}
		limit := 0
		if s := q.Get("n"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				http.Error(w, "n: want a count of messages, 0 for no end", http.StatusBadRequest)
				return
			}
			limit = n
		}
		if s := q.Get("buffer"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > tapMaxBuffer {
				http.Error(w, fmt.Sprintf("buffer: want a count of messages from 1 to %d", tapMaxBuffer), http.StatusBadRequest)
				return
			}
			opt.Buffer = n
		}
		tap, err := e.Tap(opt)
		switch {
		case errors.Is(err, ErrTooManyTaps):
			w.Header().Set("Retry-After", "5")
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		case errors.Is(err, ErrTapStopped):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		defer tap.Close()
		e.streamTap(w, r, tap, expr, opt.Rate, limit, opt.Buffer)
	})
}

func (e *Engine) streamTap(w http.ResponseWriter, r *http.Request, tap *Tap, expr string, rate float64, limit, buffer int) {
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	plugin := tap.Plugin()
	buf := appendTapLine(make([]byte, 0, tapFlushBytes+4<<10), tapState{Plugin: &plugin, Match: &expr, Rate: rate, N: &limit, Buffer: buffer})
	lastWrite := time.Now()
	flush := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(tapWriteTimeout))
		if _, err := w.Write(buf); err != nil {
			return false
		}
		if err := rc.Flush(); err != nil {
			return false
		}
		buf, lastWrite = buf[:0], time.Now()
		return true
	}
	sent := 0
	var last TapStats
	status := func(end string) {
		st := tap.Stats()
		last = st
		buf = appendTapLine(buf, tapState{Matched: &st.Matched, Skipped: &st.Skipped, Dropped: &st.Dropped, Sent: &sent, End: end})
	}
	if !flush() {
		return
	}
	tick := time.NewTicker(tapStatusEvery)
	defer tick.Stop()
	for {
		select {
		case x := <-tap.ch:
			// Take what is waiting, up to a write's worth, without waiting.
		more:
			for {
				buf = append(codec.AppendJSON(buf, tap.took(x)), '\n')
				sent++
				if sent == limit {
					status("n")
					flush()
					return
				}
				if len(buf) >= tapFlushBytes {
					break
				}
				select {
				case x = <-tap.ch:
				default:
					break more
				}
			}
			if !flush() {
				return
			}
		case <-tick.C:
			if tap.Stats() != last || time.Since(lastWrite) >= tapHeartbeat {
				status("")
				if !flush() {
					return
				}
			}
		case <-tap.done:
			for len(tap.ch) > 0 && (limit == 0 || sent < limit) {
				buf = append(codec.AppendJSON(buf, tap.took(<-tap.ch)), '\n')
				sent++
			}
			status("stopped")
			flush()
			return
		case <-r.Context().Done():
			return
		}
	}
}
