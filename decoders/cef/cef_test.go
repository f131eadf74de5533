package cef

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestCases(t *testing.T) { pipelinetest.RunDecoderCases(t, Factory()) }

func newDecoder(t testing.TB, mod func(*Config)) *Decoder {
	t.Helper()
	d, _ := pipelinetest.Build(t, "decoders.cef", DefaultConfig, mod, New)
	return d
}

func decode(t testing.TB, d *Decoder, rec string) *pipeline.Message {
	t.Helper()
	b := pipeline.NewBatch()
	if err := d.Decode(pipeline.Record{Data: []byte(rec)}, b); err != nil {
		t.Fatalf("Decode(%q): %v", rec, err)
	}
	if b.Len() != 1 {
		t.Fatalf("Decode(%q) made %d messages", rec, b.Len())
	}
	return b.Msgs[0]
}

func fieldMap(m *pipeline.Message) map[string]string {
	out := map[string]string{}
	for i := range m.Fields {
		f := &m.Fields[i]
		if f.Type == pipeline.TypeString && f.Len() == 1 {
			out[f.Name] = f.Value(0).Str()
		}
	}
	return out
}

// Rows of the decoder Contract that a one-record-per-line golden file
// cannot hold: raw LF inside a value, the line terminators.
func TestContractLineTerminators(t *testing.T) {
	d := newDecoder(t, nil)
	for _, c := range []struct{ rec, key, want string }{
		{"CEF:0|V|P|1|S|N|5|a=x\ny b=2", "a", "x\ny"},
		{"CEF:0|V|P|1|S|N|5|a=1 b=x\r\n", "b", "x"},
		{"CEF:0|V|P|1|S|N|5|a=1 b=x\n", "b", "x"},
		{"CEF:0|V|P|1|S|N|5|a=1 b=x\n\n", "b", "x"},
		{"CEF:0|V|P|1|S|N|5|a=1 b=x\r", "b", "x"},
		{"CEF:0|V|P|1|S|N|5|a=1 b=\\r\\n", "b", "\r\n"},
	} {
		if got := fieldMap(decode(t, d, c.rec))[c.key]; got != c.want {
			t.Errorf("%q: %s = %q, want %q", c.rec, c.key, got, c.want)
		}
	}
	// Only one terminator belongs to the transport: in the header, a
	// second LF is part of the data.
	m := decode(t, d, "CEF:0|V|P|1|S|N|5\n|\n")
	if got := fieldMap(m)["severity"]; got != "5\n" {
		t.Errorf("severity = %q", got)
	}
}

// The transform decodes the payload of a message an earlier decoder made
// and keeps that decoder's header.
func TestTransform(t *testing.T) {
	d := newDecoder(t, nil)
	b := pipeline.NewBatch()
	m := b.Add()
	m.Type = "syslog"
	m.Severity = 5
	m.Timestamp = 1_000_000_000
	m.Hostname = "web-3"
	m.Pid = 3101
	m.AddInt("facility", 20)
	m.Payload = `CEF:0|tern-samples|accounts|2.4.1|AuthFail|Authentication failed|7|rt=1795161629339 src=10.1.2.32 msg=a\=b`
	keep, err := d.Transform(m, b)
	if err != nil || !keep {
		t.Fatalf("Transform = %v, %v", keep, err)
	}
	if m.Type != "cef" || m.Severity != 5 || m.Timestamp != 1_000_000_000 || m.Hostname != "web-3" || m.Pid != 3101 {
		t.Errorf("header changed: %+v", m)
	}
	if !strings.HasPrefix(m.Payload, "CEF:0|") {
		t.Errorf("payload changed: %q", m.Payload)
	}
	f := fieldMap(m)
	if f["deviceEventClassId"] != "AuthFail" || f["msg"] != "a=b" || f["src"] != "10.1.2.32" || m.Fields[0].Name != "facility" {
		t.Errorf("fields: %v", f)
	}
	if _, ok := f["cefPrefix"]; ok {
		t.Error("cefPrefix without a prefix")
	}

	// rt fills a Timestamp the earlier decoder left unset.
	m = b.Add()
	m.Payload = "CEF:0|V|P|1|S|N|5|rt=1426000000000"
	if _, err := d.Transform(m, b); err != nil || m.Timestamp != 1426000000000*1e6 {
		t.Errorf("Transform: %v, Timestamp %d", err, m.Timestamp)
	}

	// A payload without CEF fails the record, or passes with pass_non_cef;
	// either way m keeps its fields.
	m = b.Add()
	m.Type = "syslog"
	m.AddString("appname", "sshd")
	m.Payload = "Accepted publickey for bob"
	if keep, err := d.Transform(m, b); err == nil || keep {
		t.Errorf("non-CEF payload: %v, %v", keep, err)
	}
	if len(m.Fields) != 1 || m.Type != "syslog" {
		t.Errorf("failed transform changed the message: %+v", m)
	}
	m.Payload = "CEF:0|V|P|1|S|N|5|garbage"
	if _, err := d.Transform(m, b); err == nil || len(m.Fields) != 1 {
		t.Errorf("bad CEF payload: %v, fields %d", err, len(m.Fields))
	}
	pass := newDecoder(t, func(c *Config) { c.PassNonCEF = true })
	m.Payload = "Accepted publickey for bob"
	if keep, err := pass.Transform(m, b); err != nil || !keep || m.Type != "syslog" || len(m.Fields) != 1 {
		t.Errorf("pass_non_cef: %v, %v, %+v", keep, err, m)
	}
}

// Many keys switch the duplicate check to a hash index; both must agree.
func TestManyKeysAndDuplicates(t *testing.T) {
	d := newDecoder(t, nil)
	var ext []string
	want := map[string]string{}
	for i := range 100 {
		k := fmt.Sprintf("k%d", i%40)
		v := fmt.Sprintf("v%d", i)
		ext = append(ext, k+"="+v)
		want[k] = v
	}
	m := decode(t, d, "CEF:0|V|P|1|S|N|5|"+strings.Join(ext, " "))
	if n := len(m.Fields) - 7; n != 40 {
		t.Fatalf("%d extension fields, want 40", n)
	}
	for i := 7; i < len(m.Fields); i++ {
		f := &m.Fields[i]
		if want := fmt.Sprintf("k%d", i-7); f.Name != want {
			t.Errorf("field %d is %s, want %s (first-seen order)", i, f.Name, want)
		}
		if f.Value(0).Str() != want[f.Name] {
			t.Errorf("%s = %s, want %s", f.Name, f.Value(0).Str(), want[f.Name])
		}
	}
	// The index comes back clean from the pool: a second record is exact.
	m = decode(t, d, "CEF:0|V|P|1|S|N|5|"+strings.Join(ext[:60], " ")+" k0=last")
	if f := fieldMap(m); f["k0"] != "last" || len(m.Fields) != 47 {
		t.Errorf("second record: k0=%s, %d fields", f["k0"], len(m.Fields))
	}
}

func TestMaxExtensions(t *testing.T) {
	d := newDecoder(t, func(c *Config) { c.MaxExtensions = 3 })
	b := pipeline.NewBatch()
	if err := d.Decode(pipeline.Record{Data: []byte("CEF:0|V|P|1|S|N|5|a=1 b=2 c=3 a=4")}, b); err != nil {
		t.Errorf("3 keys and a repeat: %v", err)
	}
	if err := d.Decode(pipeline.Record{Data: []byte("CEF:0|V|P|1|S|N|5|a=1 b=2 c=3 d=4")}, b); err == nil || !strings.Contains(err.Error(), "more than 3 keys") {
		t.Errorf("4 keys: %v", err)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Timezone = "Mars/Olympus" }, "timezone: unknown time zone"},
		{func(c *Config) { c.MaxExtensions = 0 }, "max_extensions: must be 1..1024"},
		{func(c *Config) { c.MaxExtensions = 5000 }, "max_extensions: must be 1..1024"},
	} {
		cfg := DefaultConfig()
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want %q", err, c.want)
		}
	}
}

// benchRecord is about 300 bytes with 10 extensions.
const benchRecord = `CEF:0|tern-samples|accounts|2.4.1|AuthFail|Authentication failed|5|rt=1795161629339 src=10.1.2.32 spt=51544 dst=10.9.0.4 dpt=443 suser=bob requestMethod=POST request=https://accounts.example.com/login?next\=/a\=b requestClientApplication=Mozilla/5.0 (X11; Linux x86_64) cs1Label=sessionId`

// Allocations per record stay under the number of fields plus two: strings
// go to the batch arena, fields into slabs.
func TestAllocs(t *testing.T) {
	d := newDecoder(t, nil)
	rec := pipeline.Record{Data: []byte(benchRecord)}
	b := pipeline.NewBatch()
	n := 0
	allocs := testing.AllocsPerRun(2000, func() {
		if n%64 == 0 {
			b = pipeline.NewBatch()
		}
		n++
		if err := d.Decode(rec, b); err != nil {
			t.Fatal(err)
		}
	})
	m := b.Msgs[len(b.Msgs)-1]
	if limit := float64(len(m.Fields) + 2); allocs > limit {
		t.Errorf("%.1f allocations per record, want <= %v", allocs, limit)
	}
	t.Logf("%.2f allocations per record of %d fields", allocs, len(m.Fields))
}

func BenchmarkDecode(b *testing.B) {
	d := newDecoder(b, nil)
	rec := pipeline.Record{Data: []byte(benchRecord)}
	batch := pipeline.NewBatch()
	b.SetBytes(int64(len(benchRecord)))
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	i := 0
	for b.Loop() {
		if i%1024 == 0 {
			batch = pipeline.NewBatch()
		}
		i++
		if err := d.Decode(rec, batch); err != nil {
			b.Fatal(err)
		}
	}
	stop()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkDecodeTyped(b *testing.B) {
	d := newDecoder(b, func(c *Config) { c.Typed = true })
	rec := pipeline.Record{Data: []byte(benchRecord)}
	batch := pipeline.NewBatch()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%1024 == 0 {
			batch = pipeline.NewBatch()
		}
		i++
		if err := d.Decode(rec, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// FuzzDecode: no panic, at most 4 × input + 64 KiB allocated per record
// (reliability.md R26), 10 ms per record, and the decoder agrees with its
// own transform.
func FuzzDecode(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s, false)
	}
	f.Add([]byte("CEF:0|V|P|1|S|N|5|"+strings.Repeat("k=v ", 500)), true)
	plain := newDecoder(f, nil)
	typed := newDecoder(f, func(c *Config) { c.Typed = true })
	// The zone caches are full, as after the first 64 zone names: from then
	// on no record makes the decoder read the zone database (the golden
	// cases cover lookups).
	for i := range maxZones {
		plain.zones.load(fmt.Sprintf("Fuzz/Zone%d", i))
		typed.zones.load(fmt.Sprintf("Fuzz/Zone%d", i))
	}
	calls := 0
	f.Fuzz(func(t *testing.T, data []byte, useTyped bool) {
		d := plain
		if useTyped {
			d = typed
		}
		b := pipeline.NewBatch()
		b.Add() // the batch's slabs and arena exist, as in the engine
		b.Str([]byte("x"))
		// ReadMemStats flushes the per-P caches, so TotalAlloc is exact
		// (runtime/metrics counts small objects a span at a time); it
		// stops the world, so only every 16th input is measured.
		calls++
		measure := calls%16 == 1 || !fuzzing()
		var ms runtime.MemStats
		if measure {
			runtime.ReadMemStats(&ms)
		}
		before := ms.TotalAlloc
		start := time.Now()
		err := d.Decode(pipeline.Record{Data: data}, b)
		elapsed := time.Since(start)
		if measure {
			runtime.ReadMemStats(&ms)
			if got, limit := ms.TotalAlloc-before, uint64(4*len(data)+64<<10); got > limit {
				t.Errorf("%d bytes allocated for a %d-byte record (limit %d)", got, len(data), limit)
			}
		}
		if elapsed > 10*time.Millisecond && !testing.Short() {
			t.Logf("slow record: %v for %d bytes", elapsed, len(data)) // a loaded box is no proof
		}
		// The transform sees the same record through a string.
		tb := pipeline.NewBatch()
		m := tb.Add()
		m.Payload = string(data)
		_, terr := d.Transform(m, tb)
		if (err == nil) != (terr == nil) {
			t.Fatalf("Decode error %v, Transform error %v", err, terr)
		}
		if err == nil {
			got := b.Msgs[1]
			if len(got.Fields) != len(m.Fields) {
				t.Fatalf("Decode made %d fields, Transform %d", len(got.Fields), len(m.Fields))
			}
			for i := range got.Fields {
				if !got.Fields[i].Equal(&m.Fields[i]) {
					t.Fatalf("field %d: %+v vs %+v", i, got.Fields[i], m.Fields[i])
				}
			}
		}
	})
}

// seeds are the golden inputs, one record a line.
func seeds(tb testing.TB) [][]byte {
	var out [][]byte
	files, _ := filepath.Glob("testdata/*/input.txt")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			if len(l) > 0 {
				out = append(out, l)
			}
		}
	}
	return out
}

// Only the first maxZones distinct well-formed names are looked up.
func TestZoneCacheBound(t *testing.T) {
	d := newDecoder(t, nil)
	if d.zones.load("../../etc/passwd") != nil || d.zones.load("Local") != nil || d.zones.load("Europe/Berlin") == nil {
		t.Fatal("zone name filter")
	}
	for i := range maxZones {
		d.zones.load(fmt.Sprintf("No/Such%d", i))
	}
	if d.zones.load("Asia/Tokyo") != nil {
		t.Error("looked a zone up after the cache filled")
	}
	if d.zones.load("Europe/Berlin") == nil {
		t.Error("a cached zone was forgotten")
	}
}

// fuzzing reports whether the test runs with -fuzz (not just the seeds),
// when exact allocation checks are sampled for speed.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}
