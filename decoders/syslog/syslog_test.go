package syslog

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestCases(t *testing.T) { pipelinetest.RunDecoderCases(t, Factory()) }

func newDecoder(t testing.TB, now time.Time, mod func(*Config)) *Decoder {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	set := pipelinetest.Settings(t, "decoders.syslog")
	set.Now = func() time.Time { return now }
	d, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func decode(t testing.TB, d *Decoder, rec string) *pipeline.Message {
	t.Helper()
	b := pipeline.NewBatch()
	if err := d.Decode(pipeline.Record{Data: []byte(rec)}, b); err != nil {
		t.Fatalf("Decode(%q): %v", rec, err)
	}
	return b.Msgs[0]
}

// The RFC 3164 year comes from the reference clock: minus one for a
// December stamp received in January, plus one for a January stamp
// received in December.
func TestYearInference(t *testing.T) {
	for _, c := range []struct{ now, rec, want string }{
		{"2027-01-01T00:05:00Z", "<13>Dec 31 23:59:50 h a: x", "2026-12-31T23:59:50Z"},
		{"2026-12-31T23:59:00Z", "<13>Jan  1 00:00:10 h a: x", "2027-01-01T00:00:10Z"},
		{"2026-06-15T00:00:00Z", "<13>Jan  1 00:00:10 h a: x", "2026-01-01T00:00:10Z"},
		{"2026-06-15T00:00:00Z", "<13>Dec 31 00:00:10 h a: x", "2026-12-31T00:00:10Z"},
		{"2028-03-01T00:00:00Z", "<13>Feb 29 00:00:10 h a: x", "2028-02-29T00:00:10Z"},
	} {
		now, _ := time.Parse(time.RFC3339, c.now)
		m := decode(t, newDecoder(t, now, nil), c.rec)
		if got := time.Unix(0, m.Timestamp).UTC().Format(time.RFC3339); got != c.want {
			t.Errorf("%s at %s: %s, want %s", c.rec, c.now, got, c.want)
		}
	}
	// The year is the clock's in the configured zone: 23:30 UTC on Dec 31
	// is already January in Tokyo.
	now, _ := time.Parse(time.RFC3339, "2026-12-31T23:30:00Z")
	m := decode(t, newDecoder(t, now, func(c *Config) { c.Timezone = "Asia/Tokyo" }), "<13>Jan  1 08:40:00 h a: x")
	if got := time.Unix(0, m.Timestamp).UTC().Format(time.RFC3339); got != "2026-12-31T23:40:00Z" {
		t.Errorf("Tokyo: %s", got)
	}
}

// MSG keeps every byte after the header: LF, NUL, invalid UTF-8 (records
// are framed by the input, not by the decoder).
func TestMessageBytes(t *testing.T) {
	d := newDecoder(t, pipelinetest.Now, nil)
	msg := "line1\nline2\x00\xff\xfe end"
	for _, rec := range []string{"<13>1 - h a - - - " + msg, "<13>Nov 20 08:00:37 h a: " + msg} {
		if m := decode(t, d, rec); m.Payload != msg {
			t.Errorf("%q: payload %q", rec, m.Payload)
		}
	}
	// Only a leading BOM goes, and only in RFC 5424.
	if m := decode(t, d, "<13>1 - h a - - - \xef\xbb\xbf\xef\xbb\xbfx"); m.Payload != "\xef\xbb\xbfx" {
		t.Errorf("BOM: %q", m.Payload)
	}
	if m := decode(t, d, "<13>Nov 20 08:00:37 h a: \xef\xbb\xbfx"); m.Payload != "\xef\xbb\xbfx" {
		t.Errorf("3164 BOM: %q", m.Payload)
	}
	// Invalid UTF-8 in a PARAM-VALUE is kept, not an error: no event is
	// lost for it (reliability.md R23).
	m := decode(t, d, "<13>1 - h a - - [x@1 v=\"\xff\"]")
	if v, _ := m.FieldString("sd.x@1.v"); v != "\xff" {
		t.Errorf("param value %q", v)
	}
}

// One LF ending the record goes by default (rsyslog's
// RSYSLOG_SyslogProtocol23Format ends each octet-counted MSG with one), so
// forwarding does not turn it into "#012"; LFs inside stay, and false keeps
// the record byte for byte.
func TestDropTrailingLF(t *testing.T) {
	d := newDecoder(t, pipelinetest.Now, nil)
	for rec, want := range map[string]string{
		"<13>1 - h a - - - two\nlines\n":     "two\nlines",
		"<13>1 - h a - - - ends\n\n":         "ends\n",
		"<13>Nov 20 08:00:37 h a: bsd\n":     "bsd",
		"<13>1 - h a - - - no LF":            "no LF",
		"<13>1 - h a - - - ends with CR\r\n": "ends with CR\r",
	} {
		assert.Equal(t, want, decode(t, d, rec).Payload, "%q", rec)
	}
	// The LF after STRUCTURED-DATA with no MSG is not "MSG = LF".
	m := decode(t, d, "<13>1 - h a - - [x@1 v=\"1\"]\n")
	assert.Empty(t, m.Payload)

	keep := newDecoder(t, pipelinetest.Now, func(c *Config) { c.DropTrailingLF = false })
	assert.Equal(t, "two\nlines\n", decode(t, keep, "<13>1 - h a - - - two\nlines\n").Payload)
}

func TestMaxSDParams(t *testing.T) {
	d := newDecoder(t, pipelinetest.Now, func(c *Config) { c.MaxSDParams = 3 })
	b := pipeline.NewBatch()
	if err := d.Decode(pipeline.Record{Data: []byte(`<13>1 - - - - - [a x="1" y="2"][b]`)}, b); err != nil {
		t.Errorf("3 fields: %v", err)
	}
	for _, rec := range []string{`<13>1 - - - - - [a x="1" y="2"][b][c]`, `<13>1 - - - - - [a x="1" y="2" z="3" w="4"]`} {
		if err := d.Decode(pipeline.Record{Data: []byte(rec)}, b); err == nil || !strings.Contains(err.Error(), "more than 3") {
			t.Errorf("%s: %v", rec, err)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Format = "rfc5425" }, "format: must be auto, rfc5424 or rfc3164"},
		{func(c *Config) { c.Timezone = "Nowhere/Special" }, "timezone: unknown time zone"},
		{func(c *Config) { c.MaxSDParams = 0 }, "max_sd_params: must be 1..4096"},
	} {
		cfg := DefaultConfig()
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want %q", err, c.want)
		}
	}
}

const bench5424 = `<165>1 2026-11-20T08:00:29.339Z web-3.example.com accounts 3101 login [meta@32473 sequenceId="1" src="10.1.2.32"] user bob logged in from 10.1.2.32 port 51544 with publickey ED25519`

func TestAllocs(t *testing.T) {
	d := newDecoder(t, pipelinetest.Now, nil)
	for _, rec := range []string{bench5424, "<13>Nov 20 08:00:37 bastion1 sshd[4101]: Accepted publickey for backup"} {
		r := pipeline.Record{Data: []byte(rec)}
		b := pipeline.NewBatch()
		n := 0
		allocs := testing.AllocsPerRun(2000, func() {
			if n%64 == 0 {
				b = pipeline.NewBatch()
			}
			n++
			if err := d.Decode(r, b); err != nil {
				t.Fatal(err)
			}
		})
		m := b.Msgs[len(b.Msgs)-1]
		if limit := float64(len(m.Fields) + 2); allocs > limit {
			t.Errorf("%q: %.1f allocations per record, want <= %v", rec, allocs, limit)
		}
	}
}

func BenchmarkDecode5424(b *testing.B) {
	benchDecode(b, bench5424)
}

func BenchmarkDecode3164(b *testing.B) {
	benchDecode(b, "<38>Nov 20 08:00:37 bastion1 sshd[4101]: Accepted publickey for backup from 10.1.2.17 port 55206 ssh2")
}

func benchDecode(b *testing.B, rec string) {
	d := newDecoder(b, pipelinetest.Now, nil)
	r := pipeline.Record{Data: []byte(rec)}
	batch := pipeline.NewBatch()
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	i := 0
	for b.Loop() {
		if i%1024 == 0 {
			batch = pipeline.NewBatch()
		}
		i++
		if err := d.Decode(r, batch); err != nil {
			b.Fatal(err)
		}
	}
	stop()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// FuzzDecode: no panic, at most 4 × input + 64 KiB allocated per record
// (reliability.md R26); an RFC 5424 record that parses keeps its MSG whole.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/input.txt")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range bytes.Split(data, []byte("\n")) {
			f.Add(l, uint8(0))
		}
	}
	f.Add([]byte("<13>1 - - - - - "+strings.Repeat(`[a b="c"]`, 300)), uint8(1))
	var decs [3]*Decoder
	for i, mod := range []func(*Config){nil, func(c *Config) { c.RequirePRI = false }, func(c *Config) { c.Format = "rfc3164" }} {
		decs[i] = newDecoder(f, pipelinetest.Now, mod)
	}
	calls := 0
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		d := decs[int(which)%len(decs)]
		b := pipeline.NewBatch()
		b.Add()
		b.Str([]byte("x"))
		// Exact but stop-the-world: every 16th input is measured.
		calls++
		measure := calls%16 == 1 || !fuzzing()
		var ms runtime.MemStats
		if measure {
			runtime.ReadMemStats(&ms)
		}
		before := ms.TotalAlloc
		err := d.Decode(pipeline.Record{Data: data}, b)
		if measure {
			runtime.ReadMemStats(&ms)
			if got, limit := ms.TotalAlloc-before, uint64(4*len(data)+64<<10); got > limit {
				t.Errorf("%d bytes allocated for a %d-byte record (limit %d)", got, len(data), limit)
			}
		}
		if err != nil {
			return
		}
		m := b.Msgs[1]
		if m.Severity < 0 || m.Severity > 7 {
			t.Errorf("severity %d", m.Severity)
		}
		if len(m.Payload) > len(data) || !bytes.Contains(data, []byte(m.Payload)) {
			t.Errorf("payload %q is not part of the record", m.Payload)
		}
	})
}

// fuzzing reports whether the test runs with -fuzz (not just the seeds),
// when exact allocation checks are sampled for speed.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// printEnd finds what the byte loop it replaced found, for every length
// and start and for the bytes at and around both ends of PRINTUSASCII.
func TestPrintEndExact(t *testing.T) {
	r := rand.New(rand.NewPCG(5424, 6587))
	alphabet := []byte{'a', '~', '!', ' ', 0x00, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xfe, 0xff, '=', '"', ']'}
	for range 200000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		from := r.IntN(len(b) + 1)
		want := from
		for want < len(b) && b[want] >= 0x21 && b[want] <= 0x7e {
			want++
		}
		if got := printEnd(b, from); got != want {
			t.Fatalf("printEnd(%q, %d) = %d, want %d", b, from, got, want)
		}
	}
}
