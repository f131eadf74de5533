package dedupe

import (
	"context"
	"fmt"
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

// raised is alert id (its update carries the whole alert, as producers
// send it).
func raised(logger, id, src string, at time.Duration, update bool) *pipeline.Message {
	a := &alert.Alert{ID: id, Severity: "high", Description: "brute force", HasDescription: true,
		Key: 1, KeyName: "alert_ssh_bruteforce", Title: "SSH brute force"}
	if src != "" {
		a.Sources = []alert.Node{alert.Address(src)}
	}
	if update {
		a.Updated = a.Apply(&alert.Alert{Completion: "successful"})
		a.Update = true
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
	var wall time.Time // live traffic: each alert arrives at its time
	set.Now = func() time.Time { return wall }
	f, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ctx := context.Background()
	for _, m := range []*pipeline.Message{
		raised("ssh", "a7", "198.51.100.23", 0, false),               // passes
		raised("ssh", "a8", "198.51.100.23", 10*time.Second, false),  // repeat
		raised("ssh", "a9", "203.0.113.77", 15*time.Second, false),   // another key: passes
		raised("ssh", "a7", "198.51.100.23", 20*time.Second, true),   // update of the first: forwarded
		raised("ssh", "a8", "198.51.100.23", 21*time.Second, true),   // update of a repeat: suppressed
		raised("ssh", "a10", "198.51.100.23", 30*time.Second, false), // repeat
		raised("ssh", "a11", "198.51.100.23", 90*time.Second, false), // window over: update (2 repeats), then a11
	} {
		wall = time.Unix(0, m.Timestamp)
		if err := f.Process(ctx, m, rec); err != nil {
			t.Fatal(err)
		}
	}
	wall = t0.Add(time.Hour)
	if err := f.Tick(ctx, wall, rec); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range rec.msgs {
		id, _ := m.FieldString(alert.FieldID)
		rep, _ := m.FieldInt("alert.context.repeats")
		src, _ := m.FieldString(alert.FieldSource)
		comp, _ := m.FieldString(alert.FieldCompletion)
		desc, _ := m.FieldString(alert.FieldDescription)
		got = append(got, strings.Join([]string{id, src, itoa(rep), comp, desc, m.Payload[:strings.Index(m.Payload, " time")]}, "|"))
		if m.Logger != "" || m.UUID != ([16]byte{}) {
			t.Errorf("re-injected alerts take the filter's Logger and a new UUID")
		}
	}
	// Passed alerts keep their ids (unique, not per filter); the update
	// that closes a window is the whole alert after its own update.
	want := []string{
		"a7|198.51.100.23|0||brute force|alert: id = a7",
		"a9|203.0.113.77|0||brute force|alert: id = a9",
		"a7|198.51.100.23|0|successful|brute force|alert: update id = a7",
		"a7|198.51.100.23|2|successful|brute force|alert: update id = a7",
		"a11|198.51.100.23|0||brute force|alert: id = a11",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if u := rec.msgs[3].FirstField(alert.FieldUpdated); u == nil || u.Len() != 2 || u.Value(0).Str() != "end_time" || u.Value(1).Str() != "context.repeats" ||
		rec.msgs[3].Severity != pipeline.SeverityCritical {
		t.Fatalf("the closing update: %+v", rec.msgs[3])
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
	m := raised("ssh", "a1", "10.0.0.1", 0, false)
	rec := &recorder{}
	_ = f.Process(context.Background(), m, rec)
	b.ReportAllocs()
	for b.Loop() {
		_ = f.Process(context.Background(), m, rec)
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

func cfgDuration(d time.Duration) config.Duration { return config.Duration(d) }

// Repeats are counted, not kept: a flood of them within a window holds no
// more state than the alert that passed.
func TestRepeatsHoldNoState(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Window = cfgDuration(time.Hour)
	f, err := New(pipelinetest.Settings(t, "filters.dedupe"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	for i := range 5000 {
		if err := f.Process(context.Background(), raised("ssh", fmt.Sprintf("r%d", i), "198.51.100.23", time.Duration(i)*time.Millisecond, false), rec); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.msgs) != 1 || len(f.entries) != 1 || len(f.ids) != 1 {
		t.Fatalf("%d passed, %d entries, %d ids", len(rec.msgs), len(f.entries), len(f.ids))
	}
}

// BenchmarkSprayAtMaxKeys: a new key per alert against a table full of
// open windows costs the same as any alert (before, each scanned and
// sorted every key).
func BenchmarkSprayAtMaxKeys(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Window = cfgDuration(time.Hour)
	cfg.MaxKeys = 10000
	f, _ := New(pipelinetest.Settings(b, "filters.dedupe"), cfg)
	msgs := make([]*pipeline.Message, 50000)
	for i := range msgs {
		msgs[i] = raised("ssh", fmt.Sprintf("s%d", i), fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), time.Duration(i)*time.Millisecond, false)
	}
	rec := &recorder{}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec.msgs = rec.msgs[:0]
		_ = f.Process(context.Background(), msgs[i%len(msgs)], rec)
		i++
	}
}
