package template

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
)

func msg() *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "zeek.conn"
	m.Hostname = "sensor-1"
	m.Pid = 42
	m.Severity = 3
	m.Timestamp = time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC).UnixNano()
	m.AddString("path", "conn")
	m.AddField(pipeline.NewField("port", pipeline.TypeInteger, "", pipeline.IntValue(443)))
	m.AddField(pipeline.NewField("ratio", pipeline.TypeDouble, "", pipeline.DoubleValue(0.5)))
	m.AddField(pipeline.NewField("ok", pipeline.TypeBool, "", pipeline.BoolValue(true)))
	return m
}

func TestRender(t *testing.T) {
	for _, c := range []struct{ tmpl, want string }{
		{"out/%{Hostname}/%{Fields[path]}.log", "out/sensor-1/conn.log"},
		{"%{Type}-%{%Y.%m.%d}", "zeek.conn-2023.11.14"},
		{"%{%Y-%m-%d-%H-%M-%S} %{%y %j %%}", "2023-11-14-22-13-20 23 318 %"},
		{"%{Severity}/%{Pid}/%{Fields[port]}/%{Fields[ratio]}/%{Fields[ok]}", "3/42/443/0.5/true"},
		{"%{Fields[nope]:-unknown}/%{Logger:-none}", "unknown/none"},
		{"100% %% %x %", "100% % %x %"},
		{"plain", "plain"},
	} {
		tp, err := Parse(c.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", c.tmpl, err)
		}
		got, err := tp.Append(nil, msg(), nil)
		if err != nil || string(got) != c.want {
			t.Errorf("%q = %q, %v; want %q", c.tmpl, got, err, c.want)
		}
		again, err := Parse(tp.String())
		if err != nil {
			t.Fatalf("String() %q does not parse: %v", tp.String(), err)
		}
		if g2, _ := again.Append(nil, msg(), nil); string(g2) != c.want {
			t.Errorf("String() %q renders %q", tp.String(), g2)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for tmpl, want := range map[string]string{
		"%{Hostname":       "unterminated",
		"%{}":              "empty substitution",
		"%{Payload}":       "unknown name",
		"%{Fields[x}":      "missing ]",
		"%{Fields[]}":      "empty field name",
		"%{Fields[x]junk}": "unexpected",
		"%{%Q}":            "unknown time verb",
		"%{%Y%}":           "ends with %",
	} {
		if _, err := Parse(tmpl); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", tmpl, err, want)
		}
	}
}

func TestMissingAndCheck(t *testing.T) {
	tp, _ := Parse("a/%{Fields[missing]}")
	if _, err := tp.Append(nil, msg(), nil); !errors.Is(err, ErrMissing) {
		t.Errorf("missing field: %v", err)
	}
	tp, _ = Parse("a/%{Hostname}")
	refuse := errors.New("refused")
	_, err := tp.Append(nil, msg(), func(v []byte) error {
		if string(v) == "sensor-1" {
			return refuse
		}
		return nil
	})
	if !errors.Is(err, refuse) || !strings.Contains(err.Error(), "%{Hostname}") {
		t.Errorf("check error = %v", err)
	}
}

func TestLocation(t *testing.T) {
	tp, _ := Parse("%{%H}")
	tp.SetLocation(time.FixedZone("X", 3600))
	if got, _ := tp.Append(nil, msg(), nil); string(got) != "23" {
		t.Errorf("got %q", got)
	}
}

func BenchmarkAppend(b *testing.B) {
	tp, _ := Parse("out/%{Hostname}/%{Fields[path]}.%{%Y-%m-%d}.log")
	m := msg()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = tp.Append(buf[:0], m, nil)
	}
}
