package file

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// The write path: one Write of a 1,024-record batch of ~200-byte records,
// as the engine hands them over.
func benchWrite(b *testing.B, path string, hosts int, sync string) {
	set := pipelinetest.Settings(b, "outputs.file")
	set.ConfigDir = b.TempDir()
	set.Now = time.Now
	cfg := DefaultConfig()
	cfg.Path = path
	cfg.Sync = sync
	cfg.RotateSize = 256 << 20 // keep the files bounded on long runs
	o, err := New(set, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close(context.Background())
	batch := make([]pipeline.Encoded, 1024)
	for i := range batch {
		m := pipeline.NewMessage()
		m.Hostname = fmt.Sprintf("sensor-%d", i%hosts)
		m.AddString("path", "conn")
		batch[i] = pipeline.Encoded{Msg: m, Data: []byte(fmt.Sprintf(`{"seq":%d,"msg":"%s"}`, i, strings.Repeat("x", 180)))}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(batch) * 200))
	start := time.Now()
	for b.Loop() {
		if err := o.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/time.Since(start).Seconds(), "records/s")
}

func BenchmarkWriteStatic(b *testing.B) { benchWrite(b, "out/conn.log", 1, "none") }

func BenchmarkWriteTemplate8Files(b *testing.B) {
	benchWrite(b, "out/%{Hostname}/%{Fields[path]}.log", 8, "none")
}

func BenchmarkWriteStaticSyncAlways(b *testing.B) { benchWrite(b, "out/conn.log", 1, "always") }
