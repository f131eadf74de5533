package regex

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestCases(t *testing.T) { pipelinetest.RunDecoderCases(t, Factory()) }

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.Pattern = `(?P<a>x`
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "pattern: ") {
		t.Errorf("bad pattern: %v", err)
	}
	c.Pattern = `(x)`
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "no named group") {
		t.Errorf("no named group: %v", err)
	}
	c.Pattern = `(?P<a>x)`
	c.Types = map[string]string{"a": "int", "b": "string"}
	c.Timezone = "Mars/Olympus"
	c.SeverityMap = map[string]int32{"x": 9}
	err := c.Validate()
	for _, want := range []string{"types: a: must be", "types: b: the pattern has no such group", "timezone:", "severity_map: x:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
}

func TestTypedCaptureErrors(t *testing.T) {
	c := DefaultConfig()
	c.Pattern = `^(?P<n>\S+) (?P<d>\S+) (?P<b>\S+)$`
	c.Types = map[string]string{"n": "integer", "d": "double", "b": "bool"}
	d, err := New(pipelinetest.Settings(t, "decoders.regex"), c)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"x 1.5 true":  "capture n: not an integer",
		"1 y true":    "capture d: not a number",
		"1 1.5 maybe": "capture b: not a bool",
	} {
		b := pipeline.NewBatch()
		err := d.Decode(pipeline.Record{Data: []byte(in)}, b)
		if err == nil || !strings.Contains(err.Error(), want) || b.Len() != 0 {
			t.Errorf("%q: %v (%d messages), want %q", in, err, b.Len(), want)
		}
	}
	b := pipeline.NewBatch()
	if err := d.Decode(pipeline.Record{Data: []byte("-7 2.5e3 T")}, b); err != nil {
		t.Fatal(err)
	}
	m := b.Msgs[0]
	if n, _ := m.FieldInt("n"); n != -7 || m.Fields[1].Value(0).Double() != 2500 || !m.Fields[2].Value(0).Bool() {
		t.Errorf("typed fields %+v", m.Fields)
	}
}

func TestEpochLayouts(t *testing.T) {
	for layout, cases := range map[string]map[string]int64{
		"epoch":    {"1795161601.191199": 1795161601191199000, "-1.5": -1500000000, "12": 12e9},
		"epoch_ms": {"1795161601191": 1795161601191000000},
		"epoch_ns": {"1": 1},
	} {
		c := DefaultConfig()
		c.Pattern, c.TimestampLayout = `^(?P<timestamp>\S+)$`, layout
		d, _ := New(pipelinetest.Settings(t, "decoders.regex"), c)
		for in, want := range cases {
			b := pipeline.NewBatch()
			if err := d.Decode(pipeline.Record{Data: []byte(in)}, b); err != nil || b.Msgs[0].Timestamp != want {
				t.Errorf("%s %q: %v, %d", layout, in, err, b.Msgs[0].Timestamp)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range pipelinetest.Cases(f, "") {
		if in, err := os.ReadFile(c.Dir + "/input.txt"); err == nil {
			for _, l := range bytes.Split(in, []byte("\n")) {
				f.Add(l)
			}
		}
	}
	c := DefaultConfig()
	c.Pattern = `^(?P<timestamp>\S+) (?P<n>-?\d+) (?P<severity>\w+) (?P<rest>.*)$`
	c.Types = map[string]string{"n": "integer"}
	c.TimestampLayout = "Jan _2 15:04:05"
	c.KeepUnmatched = true
	d, err := New(pipeline.Settings{}, c)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("Feb 29 00:00:00 99999999999999999999 7 x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := pipeline.NewBatch()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := d.Decode(pipeline.Record{Data: data}, b)
		runtime.ReadMemStats(&after)
		if grown := after.TotalAlloc - before.TotalAlloc; grown > uint64(4*len(data)+64<<10) {
			t.Fatalf("%d bytes allocated for %d bytes", grown, len(data))
		}
		if err != nil && b.Len() != 0 {
			t.Fatal("failed decode left a message")
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	c := DefaultConfig()
	c.Pattern = `^(?P<timestamp>\S+) (?P<host>\S+) (?P<severity>\w+): (?P<msg>.*)$`
	c.SeverityMap = map[string]int32{"error": 3}
	d, _ := New(pipeline.Settings{}, c)
	rec := []byte("2026-11-22T00:00:01.5Z web-1 error: disk full on /var")
	batch := pipeline.NewBatch()
	b.ReportAllocs()
	for b.Loop() {
		if batch.Len() >= 1024 {
			batch = pipeline.NewBatch()
		}
		if err := d.Decode(pipeline.Record{Data: rec}, batch); err != nil {
			b.Fatal(err)
		}
	}
}
