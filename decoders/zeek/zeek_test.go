package zeek

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// The tests decode from many goroutines; none may outlive them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCases(t *testing.T) { pipelinetest.RunDecoderCases(t, Factory()) }

func newDecoder(t testing.TB, mod func(*Config)) *Decoder {
	t.Helper()
	d, _ := pipelinetest.Build(t, "decoders.zeek", DefaultConfig, mod, New)
	return d
}

func decodeLines(t testing.TB, d *Decoder, source string, text string) []*pipeline.Message {
	t.Helper()
	var msgs []*pipeline.Message
	for i, line := range bytes.Split([]byte(text), []byte("\n")) {
		b := pipeline.NewBatch()
		if err := d.Decode(pipeline.Record{Data: line, Source: source}, b); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		msgs = append(msgs, b.Msgs...)
	}
	return msgs
}

// The whole sample conn.log: one message per row, none for header lines,
// exact nanosecond timestamps.
func TestConnLog(t *testing.T) {
	data, err := os.ReadFile("../../testdata/samples/conn.log")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	rows := 0
	for _, l := range lines {
		if len(l) > 0 && l[0] != '#' {
			rows++
		}
	}
	d := newDecoder(t, nil)
	msgs := decodeLines(t, d, "conn.log", string(bytes.TrimSuffix(data, []byte("\n"))))
	if len(msgs) != rows {
		t.Fatalf("%d messages for %d rows", len(msgs), rows)
	}
	m := msgs[0]
	if m.Type != "zeek.conn" || m.Timestamp != 1795161601191199000 {
		t.Fatalf("first message: Type %q Timestamp %d", m.Type, m.Timestamp)
	}
	if v, _ := m.FieldInt("id.resp_p"); v != 443 {
		t.Errorf("id.resp_p = %d", v)
	}
	if f := m.FirstField("tunnel_parents"); f == nil || f.Len() != 0 {
		t.Errorf("tunnel_parents: %+v, want a field with no values", f)
	}
	if m.FirstField("service") == nil || msgs[2].FirstField("service") != nil {
		t.Error("unset service should be absent")
	}
	// #close forgot the header: a row after it has no columns to go by.
	b := pipeline.NewBatch()
	if err := d.Decode(pipeline.Record{Data: lines[8], Source: "conn.log"}, b); err == nil {
		t.Error("row after #close decoded without a header")
	}
}

func TestExactTime(t *testing.T) {
	d := newDecoder(t, func(c *Config) {
		c.Fields, c.Types = []string{"ts"}, []string{"time"}
	})
	for text, want := range map[string]int64{
		"1795161601.191199":     1795161601191199000,
		"0.000000001":           1,
		"-1.250000":             -1250000000,
		"1795161601.1911991239": 1795161601191199123,
		"12":                    12e9,
	} {
		msgs := decodeLines(t, d, "x", text)
		if msgs[0].Timestamp != want {
			t.Errorf("%s: Timestamp %d, want %d", text, msgs[0].Timestamp, want)
		}
	}
}

// Sources keep separate headers, and many goroutines may decode at once.
func TestConcurrentSources(t *testing.T) {
	d := newDecoder(t, func(c *Config) { c.MaxSources = 8 })
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := fmt.Sprintf("tcp://peer-%d", g)
			sep := "\t"
			if g%2 == 1 {
				sep = "|"
			}
			for round := range 50 {
				hdr := []string{
					"#separator " + map[string]string{"\t": `\x09`, "|": "|"}[sep],
					"#path" + sep + fmt.Sprintf("p%d", g),
					"#fields" + sep + "ts" + sep + "n",
					"#types" + sep + "time" + sep + "count",
				}
				for _, l := range hdr {
					if err := d.Decode(pipeline.Record{Data: []byte(l), Source: src}, pipeline.NewBatch()); err != nil {
						errs <- err
						return
					}
				}
				b := pipeline.NewBatch()
				row := fmt.Sprintf("1.5%s%d", sep, round)
				if err := d.Decode(pipeline.Record{Data: []byte(row), Source: src}, b); err != nil {
					// Eviction (8 sources kept for 16 peers) may forget the
					// header between two lines; that is an error, never a
					// row read with another source's columns.
					continue
				}
				m := b.Msgs[0]
				if n, _ := m.FieldInt("n"); m.Type != fmt.Sprintf("zeek.p%d", g) || n != int64(round) {
					errs <- fmt.Errorf("peer %d: got %s n=%d", g, m.Type, n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(d.sources) > 8 {
		t.Errorf("%d sources kept, cap 8", len(d.sources))
	}
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.Format, c.JSONTimestamps, c.MaxSources = "xml", "days", 0
	c.Fields, c.Types = []string{"a", "b"}, []string{"set[", "count"}
	err := c.Validate()
	for _, want := range []string{"format:", "json_timestamps:", "max_sources:", "types: entry 1"} {
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
}

// FuzzDecode feeds whole logs (header and rows) line by line: no panic, and
// bounded allocation per line.
func FuzzDecode(f *testing.F) {
	for _, c := range pipelinetest.Cases(f, "") {
		if in, err := os.ReadFile(c.Dir + "/input.txt"); err == nil {
			f.Add(in)
		}
	}
	f.Add([]byte("#separator \\x09\n#fields\tts\ta\n#types\ttime\tvector[addr]\n1.0\t::1,1.2.3.4,-,(empty)"))
	f.Add([]byte("#separator \\x\n#set_separator\t\n#fields\n#types\tset[\n\t"))
	f.Add([]byte(`{"a":{"b":{"c":[1,2.5,"x",null]}},"ts":"2026-01-01T00:00:00Z","_path":7}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := DefaultConfig()
		cfg.Fields, cfg.Types = []string{"ts", "x"}, []string{"time", "set[string]"}
		d, err := New(pipeline.Settings{Telemetry: pipeline.NopTelemetry{}}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			// A fresh batch per line: the engine's worst case, slabs and
			// string arena included.
			b := pipeline.NewBatch()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			n := b.Len()
			if err := d.Decode(pipeline.Record{Data: line, Source: "fuzz"}, b); err != nil && b.Len() != n {
				t.Fatalf("failed decode left %d messages", b.Len()-n)
			}
			runtime.ReadMemStats(&ms)
			if grown := ms.TotalAlloc - before; grown > uint64(4*len(line)+64<<10) {
				t.Fatalf("%d bytes allocated for a %d-byte line", grown, len(line))
			}
			for _, m := range b.Msgs[n:] {
				_ = codec.AppendJSON(nil, m)
			}
		}
	})
}

func BenchmarkDecodeConnRow(b *testing.B) {
	data, err := os.ReadFile("testdata/conn/input.txt")
	if err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(data, []byte("\n"))
	d := newDecoder(b, nil)
	for _, l := range lines[:8] {
		if err := d.Decode(pipeline.Record{Data: l, Source: "s"}, pipeline.NewBatch()); err != nil {
			b.Fatal(err)
		}
	}
	row := lines[8]
	batch := pipeline.NewBatch()
	b.ReportAllocs()
	b.SetBytes(int64(len(row)))
	for b.Loop() {
		if batch.Len() >= 1024 {
			batch = pipeline.NewBatch()
		}
		if err := d.Decode(pipeline.Record{Data: row, Source: "s"}, batch); err != nil {
			b.Fatal(err)
		}
	}
}
