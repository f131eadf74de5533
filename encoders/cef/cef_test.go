package cef

import (
	"strings"
	"testing"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestCases(t *testing.T) { pipelinetest.RunEncoderCases(t, Factory()) }

func newEncoder(t testing.TB, mod func(*Config)) (*Encoder, *pipelinetest.Telemetry) {
	t.Helper()
	return pipelinetest.Build(t, "encoders.cef", DefaultConfig, mod, New)
}

func TestConfig(t *testing.T) {
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Version = -1 }, "version: must not be negative"},
		{func(c *Config) { c.Severity = "11" }, "severity: must be 0..10"},
		{func(c *Config) { c.PayloadKey = "bad key" }, "payload_key: \"bad key\" is not a CEF key"},
		{func(c *Config) { c.TimestampKey = "-" }, "timestamp_key"},
		{func(c *Config) { c.InvalidKeys = "ignore" }, "invalid_keys: must be error, rename or drop"},
		{func(c *Config) { c.ControlChars = "keep" }, "control_chars: must be escape or strip"},
		{func(c *Config) { c.InvalidUTF8 = "drop" }, "invalid_utf8: must be replace or keep"},
		{func(c *Config) { c.SyslogFormat = "rfc5425" }, "syslog_format"},
		{func(c *Config) { c.SyslogFacility = "LOCAL8" }, "syslog_facility: unknown facility"},
		{func(c *Config) { c.SyslogPriority = "LOUD" }, "syslog_priority: unknown priority"},
	} {
		cfg := DefaultConfig()
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want %q", err, c.want)
		}
	}
}

// Renamed and dropped keys and replaced bytes are counted.
func TestCounters(t *testing.T) {
	e, tel := newEncoder(t, func(c *Config) { c.InvalidKeys = "drop" })
	m := pipeline.NewMessage()
	m.AddString("bad key", "x")
	m.AddString("ok", "\xff\xfe")
	out, err := e.Encode(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(out), "|ok=\uFFFD\uFFFD") {
		t.Errorf("got %q", out)
	}
	if tel.Counts["cef_invalid_keys_total"] != 1 || tel.Counts["utf8_replaced_total"] != 2 {
		t.Errorf("counts %v", tel.Counts)
	}
}

// A failed encoding leaves dst as it was.
func TestErrorKeepsDst(t *testing.T) {
	e, _ := newEncoder(t, func(c *Config) { c.Syslog = true })
	m := pipeline.NewMessage()
	m.AddString("severity", "loud")
	dst := []byte("previous record\n")
	out, err := e.Encode(dst, m)
	if err == nil || string(out) != "previous record\n" {
		t.Errorf("Encode = %q, %v", out, err)
	}
}

func benchMessage() *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "cef"
	m.AddInt("cefVersion", 0)
	for _, kv := range [][2]string{
		{"deviceVendor", "tern-samples"}, {"deviceProduct", "accounts"}, {"deviceVersion", "2.4.1"},
		{"deviceEventClassId", "AuthFail"}, {"name", "Authentication failed"}, {"severity", "5"},
		{"rt", "1795161629339"}, {"src", "10.1.2.32"}, {"spt", "51544"}, {"dst", "10.9.0.4"}, {"dpt", "443"},
		{"suser", "bob"}, {"requestMethod", "POST"}, {"request", "https://accounts.example.com/login?next=/a=b"},
		{"requestClientApplication", "Mozilla/5.0 (X11; Linux x86_64)"}, {"cs1Label", "sessionId"},
	} {
		m.AddString(kv[0], kv[1])
	}
	return m
}

func TestAllocs(t *testing.T) {
	e, _ := newEncoder(t, nil)
	m := benchMessage()
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(1000, func() { buf, _ = e.Encode(buf[:0], m) }); n != 0 {
		t.Errorf("%v allocations per message", n)
	}
}

func BenchmarkEncode(b *testing.B) {
	e, _ := newEncoder(b, nil)
	m := benchMessage()
	buf, _ := e.Encode(nil, m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	for b.Loop() {
		buf, _ = e.Encode(buf[:0], m)
	}
	stop()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkEncodeSyslog(b *testing.B) {
	e, _ := newEncoder(b, func(c *Config) { c.Syslog = true })
	m := benchMessage()
	m.Timestamp = 1795161629339000000
	m.Hostname = "web-3"
	buf, _ := e.Encode(nil, m)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = e.Encode(buf[:0], m)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// An update is written as the whole alert: the signature and severity of
// the alert it updates, its id as externalId, and what changed, also when
// this encoder never saw the alert (a restart, another output).
func TestAlertUpdateKeepsSignature(t *testing.T) {
	a := &alert.Alert{ID: "019a8c3e-5b40-7c2d-9f1e-3a4b5c6d7e8f", Severity: "high", Description: "60 failures", HasDescription: true,
		Key: 1, KeyName: "alert_ssh_bruteforce", Title: "SSH brute force"}
	a.Updated = a.Apply(&alert.Alert{Completion: "successful"})
	a.Update = true
	e, _ := newEncoder(t, nil)
	out, err := e.Encode(nil, a.Message(pipelinetest.Now, "h", "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	want := "CEF:0|tern|tern|1|alert_ssh_bruteforce|SSH brute force|8|msg=60 failures externalId=019a8c3e-5b40-7c2d-9f1e-3a4b5c6d7e8f outcome=successful cs2Label=haka_update cs2=completion"
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
}
