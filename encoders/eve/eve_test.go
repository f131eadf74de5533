package eve

import (
	"bytes"
	"encoding/json"
	"github.com/ternlog/tern/internal/testscale"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ternlog/tern/internal/benchutil"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestCases(t *testing.T) { pipelinetest.RunEncoderCases(t, Factory()) }

func newEncoder(t testing.TB, mod func(*Config)) *Encoder {
	t.Helper()
	e, _ := pipelinetest.Build(t, "encoders.eve", DefaultConfig, mod, New)
	return e
}

func loadSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	s, err := c.Compile("testdata/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validate(t testing.TB, s *jsonschema.Schema, line []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil {
		t.Fatalf("not JSON: %v: %s", err, line)
	}
	if err := s.Validate(v); err != nil {
		t.Fatalf("schema: %v\n%s", err, line)
	}
}

// Every golden alert record validates against the schema; the event
// records whose extra object is a Suricata one (http) do too.
func TestGoldenRecordsValidate(t *testing.T) {
	s := loadSchema(t)
	for _, c := range []string{"alert", "events"} {
		data, err := os.ReadFile(filepath.Join("testdata", c, "expected.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			if c == "events" && !bytes.Contains(line, []byte(`"event_type":"http"`)) && !bytes.Contains(line, []byte(`"event_type":"flow"`)) {
				continue
			}
			validate(t, s, line)
		}
	}
	// The schema must be able to refuse: an unknown top-level key and an
	// unknown alert key are errors.
	for _, bad := range []string{
		`{"timestamp":"2026-11-22T00:00:00.000000+0000","event_type":"alert","nope":1}`,
		`{"timestamp":"2026-11-22T00:00:00.000000+0000","event_type":"alert","alert":{"nope":1}}`,
		`{"timestamp":"2026-11-22T00:00:00Z","event_type":"alert"}`,
	} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if s.Validate(v) == nil {
			t.Errorf("schema accepted %s", bad)
		}
	}
}

// The reference values of formats.md §3.5 (corelight/community-id-spec).
func TestCommunityIDVectors(t *testing.T) {
	for _, v := range []struct {
		seed       uint16
		src, dst   string
		proto      string
		sport, dpt int64
		want       string
	}{
		{0, "128.232.110.120", "66.35.250.204", "tcp", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{0, "66.35.250.204", "128.232.110.120", "TCP", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{1, "128.232.110.120", "66.35.250.204", "tcp", 34855, 80, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
		{0, "192.168.1.52", "8.8.8.8", "udp", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
		{0, "8.8.8.8", "192.168.1.52", "udp", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
	} {
		id, ok := CommunityID(v.seed, v.src, v.dst, v.proto, v.sport, v.dpt)
		if !ok || string(id[:]) != v.want {
			t.Errorf("%+v: got %s (%v)", v, id[:], ok)
		}
	}
	for _, bad := range [][2]string{{"10.0.0.1", "::1"}, {"x", "10.0.0.1"}} {
		if _, ok := CommunityID(0, bad[0], bad[1], "tcp", 1, 2); ok {
			t.Errorf("%v: computed", bad)
		}
	}
	if _, ok := CommunityID(0, "10.0.0.1", "10.0.0.2", "icmp", 8, 0); ok {
		t.Error("ICMP computed")
	}
}

// An update renders the stored alert with only the updated keys replaced,
// for the same haka_alert_id; other loggers' ids do not collide.
func TestAlertUpdate(t *testing.T) {
	e := newEncoder(t, nil)
	alert := func(logger string, upd bool, fields ...pipeline.Field) *pipeline.Message {
		m := pipeline.NewMessage()
		m.Type, m.Logger = "tern.alert", logger
		m.AddInt("alert.id", 1)
		if upd {
			m.AddBool("alert.update", true)
		}
		m.Fields = append(m.Fields, fields...)
		return m
	}
	desc := func(s string) pipeline.Field {
		return pipeline.NewField("alert.description", pipeline.TypeString, "", pipeline.StringValue(s))
	}
	comp := func(s string) pipeline.Field {
		return pipeline.NewField("alert.completion", pipeline.TypeString, "", pipeline.StringValue(s))
	}
	enc := func(m *pipeline.Message) map[string]any {
		out, err := e.Encode(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		return v["alert"].(map[string]any)
	}
	enc(alert("a", false, desc("first"), comp("failed")))
	enc(alert("b", false, desc("other filter")))
	got := enc(alert("a", true, comp("successful")))
	md := got["metadata"].(map[string]any)
	if got["signature"] != "first" || md["completion"].([]any)[0] != "successful" || md["haka_alert_id"].([]any)[0] != "1" {
		t.Errorf("update rendered %v", got)
	}
	got = enc(alert("a", true, desc("second")))
	md = got["metadata"].(map[string]any)
	if got["signature"] != "second" || md["completion"].([]any)[0] != "successful" {
		t.Errorf("second update rendered %v", got)
	}
}

// The cache is bounded: the oldest alert is forgotten first.
func TestAlertCacheBounded(t *testing.T) {
	e := newEncoder(t, func(c *Config) { c.AlertCache = 2 })
	for id := int64(1); id <= 3; id++ {
		m := pipeline.NewMessage()
		m.Type = "tern.alert"
		m.AddInt("alert.id", id)
		m.AddString("alert.description", "d")
		if _, err := e.Encode(nil, m); err != nil {
			t.Fatal(err)
		}
	}
	m := pipeline.NewMessage()
	m.Type = "tern.alert"
	m.AddInt("alert.id", 1)
	m.AddBool("alert.update", true)
	out, _ := e.Encode(nil, m)
	if bytes.Contains(out, []byte(`"signature":"d"`)) {
		t.Errorf("alert 1 still remembered: %s", out)
	}
}

var hostileParts = []string{"\n", "\r", "\x00", "|", "=", "\\", "]", "\"", "\t", "#", `\x09`, "\u0085", "\u2028", "(empty)", "-", "\xff", "\xc3", "é", "a"}

func hostile(r *rand.Rand) string {
	if r.IntN(30) == 0 {
		return strings.Repeat(hostileParts[r.IntN(len(hostileParts))], 4096)
	}
	var b strings.Builder
	for n := r.IntN(10); n > 0; n-- {
		b.WriteString(hostileParts[r.IntN(len(hostileParts))])
	}
	return b.String()
}

// R24 for EVE: random alerts and events with hostile strings give exactly
// one JSON object per message (encoding/json as the independent parser),
// every value equal to the field after the documented U+FFFD replacement,
// and every alert validates against the schema.
func TestHostileOneObjectPerMessage(t *testing.T) {
	n := testscale.N(1_000_000, 100_000)
	s := loadSchema(t)
	e := newEncoder(t, func(c *Config) { c.CommunityID, c.Payload, c.PayloadPrintable = true, true, true })
	r := rand.New(rand.NewPCG(3, 24))
	var out []byte
	type want struct{ desc, ua string }
	wants := make([]want, n)
	for i := range n {
		m := pipeline.NewMessage()
		m.Timestamp = r.Int64()
		w := want{desc: hostile(r), ua: hostile(r)}
		if i%2 == 0 {
			m.Type = "tern.alert"
			m.AddInt("alert.id", int64(i))
			m.AddString("alert.description", w.desc)
			m.AddField(pipeline.NewField("alert.source", pipeline.TypeString, "address", pipeline.StringValue(hostile(r)), pipeline.StringValue("10.0.0.1")))
			m.AddString("alert.method.ref", hostile(r))
			m.AddBytes("alert.context.payload", []byte(hostile(r)))
		} else {
			m.Type = hostile(r)
			m.AddString("http_user_agent", w.ua)
			m.AddString(hostile(r), w.desc)
			m.AddBytes("payload", []byte(hostile(r)))
		}
		start := len(out)
		var err error
		if out, err = e.Encode(out, m); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 && i%20 == 0 {
			validate(t, s, out[start:])
		}
		out = append(out, '\n')
		wants[i] = w
	}
	lines := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
	if len(lines) != n {
		t.Fatalf("%d lines for %d messages", len(lines), n)
	}
	for i, l := range lines {
		var v map[string]any
		dec := json.NewDecoder(bytes.NewReader(l))
		if err := dec.Decode(&v); err != nil || dec.More() {
			t.Fatalf("line %d: %v", i+1, err)
		}
		w := wants[i]
		if i%2 == 0 {
			if got := v["alert"].(map[string]any)["signature"]; got != fffd(w.desc) {
				t.Fatalf("line %d: signature %q, want %q", i+1, got, w.desc)
			}
			continue
		}
		extra := v[v["event_type"].(string)].(map[string]any)
		if got := extra["http_user_agent"]; got != fffd(w.ua) {
			t.Fatalf("line %d: http_user_agent %q, want %q", i+1, got, w.ua)
		}
	}
}

// fffd replaces each byte of invalid UTF-8 with U+FFFD, as the encoder does.
func fffd(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\ufffd")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func TestPayloadPrintable(t *testing.T) {
	got := string(appendPrintable(nil, []byte("GET /\"a\\b\" HTTP/1.1\r\n\t\x00\xffé")))
	if want := `"GET /\"a\\b\" HTTP/1.1\r\n....."`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func httpMessage() *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "http"
	m.Timestamp = 1795305600123456789
	m.AddInt("flow_id", 1234567890123)
	m.AddString("src_ip", "10.1.2.3")
	m.AddInt("src_port", 51544)
	m.AddString("dest_ip", "93.184.216.34")
	m.AddInt("dest_port", 80)
	m.AddString("proto", "TCP")
	m.AddString("app_proto", "http")
	m.AddString("hostname", "example.com")
	m.AddString("url", "/index.html")
	m.AddString("http_user_agent", "Mozilla/5.0 (X11; Linux x86_64)")
	m.AddString("http_method", "GET")
	m.AddInt("status", 200)
	return m
}

func TestNoAllocs(t *testing.T) {
	e := newEncoder(t, func(c *Config) { c.CommunityID = true })
	m := httpMessage()
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf, _ = e.Encode(buf[:0], m) }); n != 0 {
		t.Errorf("%v allocations per event", n)
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	e := newEncoder(b, func(c *Config) { c.CommunityID = true })
	m := httpMessage()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	for b.Loop() {
		buf, _ = e.Encode(buf[:0], m)
	}
	stop()
}

func BenchmarkEncodeAlert(b *testing.B) {
	e := newEncoder(b, nil)
	data, err := os.ReadFile("testdata/alert/input.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	m := pipeline.NewMessage()
	if err := pipeline.DecodeJSON(bytes.Split(data, []byte("\n"))[0], m, nil); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	for b.Loop() {
		buf, _ = e.Encode(buf[:0], m)
	}
	stop()
}
