package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	luafilter "github.com/ternlog/tern/filters/lua"
	"github.com/ternlog/tern/filters/threshold"
	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

// The burst detection two ways, side by side on the same traffic: the
// shipped Lua script (filters/lua/scripts/auth_failure_burst.lua) and the
// Go threshold filter (filters/threshold) configured alike (key src, 20
// failures within 30 s). Issue 10's target: the Lua path costs at most
// twice the Go one per event.
//
// alone/*: the filter's Process on AuthFail messages as the CEF decoder
// makes them, from 100,000 distinct sources (one event each per 100 s of
// message time, so every event opens a new period and another expires) and
// 2 % from 16 sources that burst. Run:
//
//	go test -run '^$' -bench 'Detection/alone' -benchmem ./internal/test/e2e
//
// pipeline/*: the same detection inside the engine, as bench/w4.toml runs it
// (see BenchmarkDetection's pipeline half below).

const (
	detectSources = 100_000
	detectStep    = int64(time.Millisecond) // message time between events
)

func repoRoot() string { r, _ := filepath.Abs("../../.."); return r }

// authFailPool returns one AuthFail message per source, fields in the CEF
// decoder's order, and the 16 burst sources' messages.
func authFailPool() (noise, burst []*pipeline.Message) {
	mk := func(src, user string) *pipeline.Message {
		m := pipeline.NewMessage()
		m.Type = "cef"
		m.Logger = "tcp"
		m.Hostname = "web-3"
		m.Severity = 5
		for _, kv := range [][2]string{{"deviceVendor", "tern-samples"}, {"deviceProduct", "accounts"}, {"deviceVersion", "2.4.1"},
			{"deviceEventClassId", "AuthFail"}, {"name", "Authentication failed"}} {
			m.AddString(kv[0], kv[1])
		}
		m.AddInt("severity", 5)
		m.AddString("src", src)
		m.AddString("suser", user)
		m.AddString("requestMethod", "POST")
		m.AddString("request", "https://accounts.example.com/login")
		return m
	}
	for i := range detectSources {
		noise = append(noise, mk(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), fmt.Sprintf("user%d", i%5000)))
	}
	for i := range 16 {
		burst = append(burst, mk(fmt.Sprintf("192.0.2.%d", i), "admin"))
	}
	return noise, burst
}

type countInjector struct{ n int }

func (c *countInjector) Inject(*pipeline.Message) error { c.n++; return nil }

func benchFilterAlone(b *testing.B, f pipeline.Filter) {
	noise, burst := authFailPool()
	ctx := context.Background()
	out := &countInjector{}
	ts := time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC).UnixNano()
	i := 0
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	for b.Loop() {
		var m *pipeline.Message
		if i%50 == 0 {
			m = burst[i/50%len(burst)]
		} else {
			m = noise[i%len(noise)]
		}
		ts += detectStep
		m.Timestamp = ts
		if err := f.Process(ctx, m, out); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
	b.ReportMetric(float64(out.n), "alerts")
}

func benchSettings(name string) pipeline.Settings {
	return pipeline.Settings{Name: name, Logger: slog.New(slog.DiscardHandler), Now: time.Now, Hostname: "bench",
		ConfigDir: repoRoot(), DataDir: "", Telemetry: pipeline.NopTelemetry{}}
}

func luaDetection(b *testing.B) pipeline.Filter {
	cfg := luafilter.DefaultConfig()
	cfg.Filename = "filters/lua/scripts/auth_failure_burst.lua"
	cfg.AlertDefinitions = "filters/lua/alerts"
	cfg.Config = map[string]any{"threshold": int64(20), "window": int64(30)}
	f, err := luafilter.New(benchSettings("filters.auth_failure_burst"), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close(context.Background()) })
	return f
}

func goDetection(b *testing.B) pipeline.Filter {
	cfg := threshold.DefaultConfig()
	cfg.Key = "Fields[src]"
	cfg.Threshold = 20
	cfg.Window = config.Duration(30 * time.Second)
	cfg.MaxKeys = detectSources
	cfg.AlertKey = "alert_threshold_exceeded"
	f, err := threshold.New(benchSettings("filters.threshold"), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func BenchmarkDetection(b *testing.B) {
	b.Run("alone/lua", func(b *testing.B) { benchFilterAlone(b, luaDetection(b)) })
	b.Run("alone/go", func(b *testing.B) { benchFilterAlone(b, goDetection(b)) })
}
