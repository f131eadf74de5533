package faults

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternlog/tern/internal/testutil/oracle"
	"github.com/ternlog/tern/internal/testutil/supervisor"
)

// BenchmarkPipeline measures the real binary end to end: HTTP input (8
// concurrent senders, 1000 events of 300 bytes per request, each request
// answered after tern's acknowledgement) -> queue -> null output, until
// the output has delivered every event. The queue is a memory queue, or a
// disk buffer with sync = "interval" or "always". The quality bar: with
// interval, at least 80 % of the memory pipeline.
//
//	go test -run '^$' -bench Pipeline -benchtime 3x ./internal/test/faults/
func BenchmarkPipeline(b *testing.B) {
	for _, c := range []struct{ name, queue string }{
		{"memory", ""},
		{"disk-interval", "interval"},
		{"disk-always", "always"},
	} {
		b.Run(c.name, func(b *testing.B) { benchPipeline(b, c.queue) })
	}
}

const pipelineConfig = `
[tern]
data_dir = %q
metrics_address = %q
progress_interval = "0s"
log_level = "warn"
[inputs.in]
type = "http"
decoder = "payload"
address = %q
insecure_no_auth = true
[outputs.null]
type = "null"
message_matcher = "TRUE"
batch_max_count = 1024
queue_max_bytes = "64MiB"
use_buffering = %v
[outputs.null.buffering]
max_buffer_size = "1GiB"
max_file_size = "64MiB"
sync = %q
sync_interval = "1s"
`

func benchPipeline(b *testing.B, syncPolicy string) {
	dir := b.TempDir()
	in, _ := supervisor.FreePort()
	metrics, _ := supervisor.FreePort()
	cfg := filepath.Join(dir, "tern.toml")
	policy := syncPolicy
	if policy == "" {
		policy = "always"
	}
	if err := os.WriteFile(cfg, fmt.Appendf(nil, pipelineConfig, filepath.Join(dir, "data"), metrics, in, syncPolicy != "", policy), 0o644); err != nil {
		b.Fatal(err)
	}
	run := supervisor.NewRunner(supervisor.Build(b), cfg, dir)
	if err := run.Start(); err != nil {
		b.Fatal(err)
	}
	defer run.Term(10 * time.Second)
	if err := run.WaitPort(in, 30*time.Second); err != nil {
		b.Fatal(err)
	}
	const perReq, workers, size = 1000, 8, 300
	gen := oracle.NewGenerator(1, size)
	var body []byte
	for i := range perReq {
		body = append(gen.Event(body, i), '\n')
	}
	requests := 200 // 200k events per iteration
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	delivered := func() float64 {
		m, err := oracle.Scrape(context.Background(), metrics)
		if err != nil {
			return -1
		}
		return m.Sum("tern_output_messages_total", map[string]string{"plugin": "outputs.null"})
	}
	total := 0.0
	var elapsed time.Duration
	b.SetBytes(int64(requests * perReq * size))
	for b.Loop() {
		t0 := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= int64(requests) {
					for {
						resp, err := client.Post("http://"+in+"/", "text/plain", bytes.NewReader(body))
						if err == nil {
							resp.Body.Close()
							if resp.StatusCode == http.StatusOK {
								break
							}
						}
						time.Sleep(10 * time.Millisecond)
					}
				}
			})
		}
		wg.Wait()
		total += float64(requests * perReq)
		for delivered() < total {
			time.Sleep(5 * time.Millisecond)
		}
		elapsed += time.Since(t0)
	}
	b.ReportMetric(total/elapsed.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}
