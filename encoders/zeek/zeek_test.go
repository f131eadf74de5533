package zeek

import (
	"strings"
	"testing"
	"time"

	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestCases(t *testing.T) { pipelinetest.RunEncoderCases(t, Factory()) }

func newEncoder(t testing.TB, mod func(*Config)) *Encoder {
	t.Helper()
	e, _ := pipelinetest.Build(t, "encoders.zeek", DefaultConfig, mod, New)
	return e
}

// The header block and trailer, byte for byte as Zeek writes them.
func TestHeaderTrailer(t *testing.T) {
	defer func(l *time.Location) { time.Local = l }(time.Local)
	time.Local = time.UTC
	e := newEncoder(t, func(c *Config) { c.Preset = "conn" })
	open := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	got := string(e.Header(nil, nil, open))
	want := "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-11-20-08-00-00\n" +
		"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n" +
		"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"
	if got != want {
		t.Errorf("header:\n%s\nwant:\n%s", got, want)
	}
	if got := string(e.Trailer(nil, open.Add(25*time.Minute+6*time.Second))); got != "#close\t2026-11-20-08-25-06\n" {
		t.Errorf("trailer %q", got)
	}
	// Local time, as Zeek: the same instant in another zone.
	time.Local = time.FixedZone("X", 3600)
	if got := string(e.Trailer(nil, open)); got != "#close\t2026-11-20-09-00-00\n" {
		t.Errorf("local trailer %q", got)
	}
	// Custom separators are escaped in the header; JSON has none.
	time.Local = time.UTC
	e = newEncoder(t, func(c *Config) {
		c.Columns = []Column{{Name: "a", Type: "string"}}
		c.Separator, c.SetSeparator, c.Path = "|", "®", "x y"
	})
	got = string(e.Header(nil, nil, open))
	if !strings.HasPrefix(got, "#separator |\n#set_separator|\\xc2\\xae\n#empty_field|(empty)\n#unset_field|-\n#path|x\\x20y\n") {
		t.Errorf("custom header %q", got)
	}
	e = newEncoder(t, func(c *Config) { c.Preset, c.UseJSON = "conn", true })
	if h, tr := e.Header(nil, nil, open), e.Trailer(nil, open); len(h)+len(tr) != 0 {
		t.Errorf("JSON header %q trailer %q", h, tr)
	}
	// The path falls back on the first message's Type.
	e = newEncoder(t, func(c *Config) { c.Columns = []Column{{Name: "a", Type: "string"}} })
	first := pipeline.NewMessage()
	first.Type = "zeek.dns"
	if h := string(e.Header(nil, first, open)); !strings.Contains(h, "#path\tdns\n") {
		t.Errorf("path from Type: %q", h)
	}
}

// Rendering rules of formats.md §2.3 and §2.4.
func TestRendering(t *testing.T) {
	e := newEncoder(t, func(c *Config) {
		c.Columns = []Column{{Name: "s", Type: "string"}, {Name: "set", Type: "set[string]"}, {Name: "d", Type: "double"}, {Name: "t", Type: "interval"}}
	})
	for _, tc := range []struct {
		f    []pipeline.Field
		want string
	}{
		{[]pipeline.Field{pipeline.NewField("s", pipeline.TypeString, "", pipeline.StringValue("é\n"))}, `\xc3\xa9\x0a	-	-	-`},
		{[]pipeline.Field{pipeline.NewField("s", pipeline.TypeString, "", pipeline.StringValue("é\t"))}, `é\x09	-	-	-`},
		{[]pipeline.Field{pipeline.NewField("s", pipeline.TypeString, "", pipeline.StringValue("EMPTY,-"))}, `EMPTY,-	-	-	-`},
		{[]pipeline.Field{pipeline.NewField("set", pipeline.TypeString, "", pipeline.StringValue("a,b"), pipeline.StringValue("-"))}, `-	a\x2cb,\x2d	-	-`},
		{[]pipeline.Field{pipeline.NewField("d", pipeline.TypeDouble, "", pipeline.DoubleValue(1.123456789))}, "-	-	1.123457	-"},
		{[]pipeline.Field{pipeline.NewField("d", pipeline.TypeDouble, "", pipeline.DoubleValue(0.000012))}, "-	-	0.000012	-"},
		{[]pipeline.Field{pipeline.NewField("d", pipeline.TypeDouble, "", pipeline.DoubleValue(1e21))}, "-	-	1000000000000000000000.0	-"},
		{[]pipeline.Field{pipeline.NewField("t", pipeline.TypeDouble, "", pipeline.DoubleValue(-1.25))}, "-	-	-	-1.250000"},
		{[]pipeline.Field{pipeline.NewField("t", pipeline.TypeInteger, "ns", pipeline.IntValue(1999))}, "-	-	-	0.000001"},
		{[]pipeline.Field{pipeline.NewField("s", pipeline.TypeString, "", pipeline.StringValue("#x"))}, `\x23x	-	-	-`},
	} {
		m := pipeline.NewMessage()
		m.Fields = tc.f
		got, err := e.Encode(nil, m)
		if err != nil || string(got) != tc.want {
			t.Errorf("%v: got %q, %v; want %q", tc.f[0].Value(0), got, err, tc.want)
		}
	}
	// A leading unset column is '-' and stays so; the \x23 rule is about '#'.
	m := pipeline.NewMessage()
	if got, _ := e.Encode([]byte("prefix"), m); string(got) != "prefix-\t-\t-\t-" {
		t.Errorf("appends to dst: %q", got)
	}
}

func TestIncludeExclude(t *testing.T) {
	e := newEncoder(t, func(c *Config) {
		c.Preset = "conn"
		c.Include = []string{"ts", "uid", "id.orig_h", "proto"}
		c.Exclude = []string{"proto"}
	})
	if len(e.cols) != 3 || e.cols[2].name != "id.orig_h" {
		t.Fatalf("columns %+v", e.cols)
	}
	c := DefaultConfig()
	c.Preset = "conn"
	c.Include = []string{"nope"}
	c.Separator = ""
	c.JSONTimestamps = "days"
	err := c.Validate()
	for _, want := range []string{`include: "nope"`, "separator: must", "json_timestamps:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
}

func connMessage() *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "zeek.conn"
	m.Timestamp = 1795161601191199000
	d := func(n string, v float64, r string) {
		m.AddField(pipeline.NewField(n, pipeline.TypeDouble, r, pipeline.DoubleValue(v)))
	}
	d("ts", 1795161601.191199, "date-time")
	m.AddString("uid", "C4xRprxjhiCvmct5HS")
	m.AddField(pipeline.NewField("id.orig_h", pipeline.TypeString, "ipv4", pipeline.StringValue("10.1.2.21")))
	m.AddInt("id.orig_p", 19502)
	m.AddField(pipeline.NewField("id.resp_h", pipeline.TypeString, "ipv4", pipeline.StringValue("192.0.2.80")))
	m.AddInt("id.resp_p", 443)
	m.AddString("proto", "tcp")
	m.AddString("service", "ssl")
	d("duration", 20.027468, "interval")
	m.AddInt("orig_bytes", 18421)
	m.AddInt("resp_bytes", 442201)
	m.AddString("conn_state", "RSTO")
	m.AddBool("local_orig", true)
	m.AddBool("local_resp", false)
	m.AddInt("missed_bytes", 0)
	m.AddString("history", "ShAdDaFf")
	m.AddInt("orig_pkts", 45)
	m.AddInt("orig_ip_bytes", 17325)
	m.AddInt("resp_pkts", 51)
	m.AddInt("resp_ip_bytes", 357141)
	m.AddField(pipeline.NewField("tunnel_parents", pipeline.TypeString, ""))
	return m
}

func TestNoAllocs(t *testing.T) {
	e := newEncoder(t, func(c *Config) { c.Preset = "conn" })
	m := connMessage()
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf, _ = e.Encode(buf[:0], m) }); n != 0 {
		t.Errorf("%v allocations per row", n)
	}
	want := "1795161601.191199\tC4xRprxjhiCvmct5HS\t10.1.2.21\t19502\t192.0.2.80\t443\ttcp\tssl\t20.027468\t18421\t442201\tRSTO\tT\tF\t0\tShAdDaFf\t45\t17325\t51\t357141\t(empty)"
	if string(buf) != want {
		t.Errorf("row %q", buf)
	}
}

func BenchmarkEncodeConnTSV(b *testing.B) {
	e := newEncoder(b, func(c *Config) { c.Preset = "conn" })
	m := connMessage()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	for b.Loop() {
		buf, _ = e.Encode(buf[:0], m)
	}
	stop()
}

func BenchmarkEncodeConnJSON(b *testing.B) {
	e := newEncoder(b, func(c *Config) { c.Preset, c.UseJSON = "conn", true })
	m := connMessage()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	for b.Loop() {
		buf, _ = e.Encode(buf[:0], m)
	}
	stop()
}

// tsv = true starts a file with one line of column names and no "#" lines,
// and writes no trailer (Zeek's per-filter tsv = T).
func TestTSVMode(t *testing.T) {
	e := newEncoder(t, func(c *Config) {
		c.Columns = []Column{{Name: "ts", Type: "time"}, {Name: "id.orig_h", Type: "addr"}, {Name: "n", Type: "count"}}
		c.TSV = true
	})
	open := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	if got := string(e.Header(nil, nil, open)); got != "ts\tid.orig_h\tn\n" {
		t.Errorf("tsv header %q", got)
	}
	if got := e.Trailer(nil, open); len(got) != 0 {
		t.Errorf("tsv trailer %q", got)
	}
	m := pipeline.NewMessage()
	m.Timestamp = 1_700_000_000_000_001_000
	m.AddString("id.orig_h", "::FFFF:10.0.0.1")
	m.AddUint("n", 1<<64-1)
	row, err := e.Encode(nil, m)
	if err != nil || string(row) != "1700000000.000001\t10.0.0.1\t18446744073709551615" {
		t.Errorf("row %q, %v", row, err)
	}
	c := DefaultConfig()
	c.Columns, c.TSV, c.UseJSON = []Column{{Name: "a", Type: "string"}}, true, true
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "tsv") {
		t.Errorf("tsv with use_json: %v", err)
	}
}

// JSON rows carry full-range counts as numbers, vector holes as null and
// addresses in canonical form.
func TestJSONTypes(t *testing.T) {
	e := newEncoder(t, func(c *Config) {
		c.Columns = []Column{{Name: "c", Type: "count"}, {Name: "vc", Type: "vector[count]"}, {Name: "a", Type: "addr"}, {Name: "n", Type: "subnet"}}
		c.UseJSON = true
	})
	m := pipeline.NewMessage()
	m.AddUint("c", 1<<64-1)
	vc := pipeline.NewField("vc", pipeline.TypeUnsigned, "", pipeline.UintValue(1))
	vc.AppendUnset()
	vc.Append(pipeline.UintValue(3))
	m.AddField(vc)
	m.AddString("a", "2001:DB8::0:1")
	m.AddString("n", "192.168.7.9/16")
	row, err := e.Encode(nil, m)
	want := `{"c":18446744073709551615,"vc":[1,null,3],"a":"2001:db8::1","n":"192.168.0.0/16"}`
	if err != nil || string(row) != want {
		t.Errorf("row %s, %v\nwant %s", row, err, want)
	}
}
