package matcher

import (
	"testing"

	"github.com/ternlog/tern/pipeline"
)

// authMessage looks like a decoded sshd line: a handful of fields, with the
// one the benchmarks look for in the middle.
func authMessage() *pipeline.Message {
	m := pipeline.NewMessage()
	m.UUID = pipeline.NewUUID()
	m.Timestamp = 1763769600123456789
	m.Type = "auth"
	m.Logger = "syslog"
	m.Severity = pipeline.SeverityWarning
	m.Hostname = "bastion-1"
	m.Payload = "Failed password for invalid user admin from 203.0.113.7 port 52144 ssh2"
	m.AddString("program", "sshd")
	m.AddInt("pid", 4242)
	m.AddString("method", "password")
	m.AddString("user", "admin")
	m.AddString("src_ip", "203.0.113.7")
	m.AddInt("src_port", 52144)
	m.AddString("result", "failure")
	m.AddInt("bytes_out", 2_000_000)
	return m
}

func benchMatch(b *testing.B, expr string, want bool) {
	m := MustCompile(expr)
	msg := authMessage()
	if m.Match(msg) != want {
		b.Fatalf("%q: want %v", expr, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Match(msg)
	}
}

// The target: at least 10 M evaluations per second on one core.
func BenchmarkAuth(b *testing.B) {
	benchMatch(b, "Type == 'auth' && Severity <= 4 && Fields[user] =~ /^adm/", true)
}

func BenchmarkPayloadRegex(b *testing.B) {
	benchMatch(b, `Payload =~ /Failed password for (invalid user )?\w+ from [0-9.]+/`, true)
}

func BenchmarkFieldNumeric(b *testing.B) {
	benchMatch(b, "Fields[bytes_out] > 1048576", true)
}

func BenchmarkMissingField(b *testing.B) {
	benchMatch(b, "Fields[missing] == NIL", true)
}

// The matching term comes last, so all five run.
func BenchmarkOr5(b *testing.B) {
	benchMatch(b, "Type == 'kern' || Type == 'cron' || Type == 'mail' || Type == 'daemon' || Type == 'auth'", true)
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		MustCompile("Type == 'auth' && Severity <= 4 && Fields[user] =~ /^adm/")
	}
}
