package dedupe

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

type recorder struct{ msgs []*pipeline.Message }

func (r *recorder) Inject(m *pipeline.Message) error { r.msgs = append(r.msgs, m); return nil }

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func raised(logger string, id int64, src string, at time.Duration, update bool) *pipeline.Message {
	a := &alert.Alert{ID: id, Update: update}
	if !update {
		a.Severity, a.Description, a.HasDescription = "high", "brute force", true
		a.Sources = []alert.Node{alert.Address(src)}
		a.Key, a.KeyName, a.Title = 1, "alert_ssh_bruteforce", "SSH brute force"
	} else {
		a.Completion = "successful"
	}
	m := a.Message(t0.Add(at), "h", logger)
	return m
}

func TestDedupe(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Window = cfgDuration(time.Minute)
	tel := &pipelinetest.Telemetry{}
	set := pipelinetest.Settings(t, "filters.dedupe")
	set.Telemetry = tel
	f, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ctx := context.Background()
	for _, m := range []*pipeline.Message{
		raised("ssh", 7, "198.51.100.23", 0, false),               // passes as our id 1
		raised("ssh", 8, "198.51.100.23", 10*time.Second, false),  // repeat
		raised("ssh", 9, "203.0.113.77", 15*time.Second, false),   // another key: our id 2
		raised("ssh", 7, "", 20*time.Second, true),                // update of the first: forwarded as id 1
		raised("ssh", 8, "", 21*time.Second, true),                // update of a repeat: suppressed
		raised("ssh", 10, "198.51.100.23", 30*time.Second, false), // repeat
		raised("ssh", 11, "198.51.100.23", 90*time.Second, false), // window over: update (2 repeats), then id 3
	} {
		if err := f.Process(ctx, m, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Tick(ctx, t0.Add(time.Hour), rec); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range rec.msgs {
		id, _ := m.FieldInt(alert.FieldID)
		rep, _ := m.FieldInt("alert.context.repeats")
		src, _ := m.FieldString(alert.FieldSource)
		got = append(got, strings.Join([]string{itoa(id), src, itoa(rep), m.Payload[:strings.Index(m.Payload, " time")]}, "|"))
		if m.Logger != "" || m.UUID != ([16]byte{}) {
			t.Errorf("re-injected alerts take the filter's Logger and a new UUID")
		}
	}
	want := []string{
		"1|198.51.100.23|0|alert: id = 1",
		"2|203.0.113.77|0|alert: id = 2",
		"1||0|alert: update id = 1",
		"1||2|alert: update id = 1",
		"3|198.51.100.23|0|alert: id = 3",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if tel.Counts["dedupe_suppressed_total"] != 3 {
		t.Fatalf("suppressed %v", tel.Counts)
	}
	if len(f.entries) != 0 || len(f.ids) != 0 {
		t.Fatalf("state left after the windows ended: %d %d", len(f.entries), len(f.ids))
	}
}

func TestIgnoresOtherTypes(t *testing.T) {
	f, _ := New(pipelinetest.Settings(t, "filters.d"), DefaultConfig())
	rec := &recorder{}
	m := pipeline.NewMessage()
	m.Type = "other"
	if err := f.Process(context.Background(), m, rec); err != nil || len(rec.msgs) != 0 {
		t.Fatal(err, len(rec.msgs))
	}
}

func BenchmarkRepeat(b *testing.B) {
	f, _ := New(pipelinetest.Settings(b, "filters.d"), DefaultConfig())
	m := raised("ssh", 1, "10.0.0.1", 0, false)
	rec := &recorder{}
	_ = f.Process(context.Background(), m, rec)
	b.ReportAllocs()
	for b.Loop() {
		_ = f.Process(context.Background(), m, rec)
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

func cfgDuration(d time.Duration) config.Duration { return config.Duration(d) }
