package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer serves the metrics address: /metrics (Prometheus text
// format), /health (JSON state of every plugin), /api/stats (what the
// dashboard draws), /tap (taps as canonical JSON lines, tapserve.go) and
// the dashboard's static files at / (dashboard.go). Everything but the
// static files, which hold no data, passes the token check.
func (e *Engine) adminServer(auth *adminAuth) *http.Server {
	mux := http.NewServeMux()
	g := func(h http.Handler) http.Handler { return e.guard(auth, h) }
	mux.Handle("GET /metrics", g(promhttp.HandlerFor(e.metrics.reg, promhttp.HandlerOpts{})))
	mux.Handle("GET /health", g(http.HandlerFunc(e.health)))
	mux.Handle("GET /api/stats", g(http.HandlerFunc(e.serveStats)))
	mux.Handle("GET /tap", g(e.tapHandler(auth)))
	e.dashboardRoutes(mux)
	return &http.Server{
		Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute,
		// Failed handshakes and the like, at debug: a scanner is no news.
		ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
}

type pluginHealth struct {
	State string    `json:"state"`
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since"`
}

func (e *Engine) health(w http.ResponseWriter, _ *http.Request) {
	status := "ok"
	plugins := map[string]pluginHealth{}
	ids := make([]string, 0, len(e.states))
	for id := range e.states {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		st, msg, since := e.states[id].get()
		if st == "restarting" || st == "retrying" {
			status = "degraded"
		}
		plugins[id] = pluginHealth{State: st, Error: msg, Since: since}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "plugins": plugins})
}

// progress logs the totals every progress_interval so a long run shows it is
// moving (and how fast) without a metrics scraper.
func (e *Engine) progress(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	every := e.plan.Global.ProgressInterval.D()
	if every <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastIn, lastOut float64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tot := e.totals()
		in, out := tot["tern_input_records_total"], tot["tern_output_messages_total"]
		e.log.Info("progress",
			"records_in", int64(in), "delivered", int64(out),
			"in_per_s", int64((in-lastIn)/every.Seconds()), "out_per_s", int64((out-lastOut)/every.Seconds()),
			"dropped", int64(tot["tern_dropped_total"]), "dead_letters", int64(tot["tern_dead_letters_total"]),
			"queued_bytes", int64(tot["tern_queue_bytes"]), "unacked_batches", e.inflight.Load())
		lastIn, lastOut = in, out
	}
}

// totals sums every series of the engine's own families.
func (e *Engine) totals() map[string]float64 {
	out := map[string]float64{}
	mfs, err := e.metrics.reg.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				out[mf.GetName()] += m.Counter.GetValue()
			case m.Gauge != nil:
				out[mf.GetName()] += m.Gauge.GetValue()
			}
		}
	}
	return out
}
