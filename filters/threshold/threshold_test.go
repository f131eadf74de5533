package threshold

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

type recorder struct{ msgs []*pipeline.Message }

func (r *recorder) Inject(m *pipeline.Message) error { r.msgs = append(r.msgs, m); return nil }

// TestGolden runs testdata/<case>/: config.toml, input.jsonl given to
// Process in order, one Tick at pipelinetest.Now, expected.jsonl the alerts.
func TestGolden(t *testing.T) {
	for _, c := range pipelinetest.Cases(t, "") {
		t.Run(c.Name, func(t *testing.T) {
			cfg := pipelinetest.ConfigFor(t, Factory(), c).(*Config)
			f, err := New(pipelinetest.Settings(t, "filters."+c.Name), *cfg)
			if err != nil {
				t.Fatal(err)
			}
			h := fnv.New64a()
			h.Write([]byte(c.Name))
			f.ids = alert.SeededIDs(h.Sum64()) // ids differ between cases
			in, err := os.ReadFile(filepath.Join(c.Dir, "input.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			for i, line := range bytes.Split(bytes.TrimSpace(in), []byte("\n")) {
				m := pipeline.NewMessage()
				if err := codec.DecodeJSON(line, m, nil); err != nil {
					t.Fatalf("line %d: %v", i+1, err)
				}
				if err := f.Process(context.Background(), m, rec); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Tick(context.Background(), pipelinetest.Now, rec); err != nil {
				t.Fatal(err)
			}
			var got []byte
			for _, m := range rec.msgs {
				got = append(codec.AppendJSON(got, m), '\n')
			}
			pipelinetest.Golden(t, filepath.Join(c.Dir, "expected.jsonl"), got)
		})
	}
}

func msg(key string, ts time.Time) *pipeline.Message {
	m := pipeline.NewMessage()
	m.Timestamp = ts.UnixNano()
	m.AddString("src", key)
	return m
}

// One alert per key per window; a new window re-arms the key.
func TestOneAlertPerWindow(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Key, cfg.Threshold, cfg.Window = "Fields[src]", 3, 10e9
	set := pipelinetest.Settings(t, "filters.t")
	var wall time.Time // live traffic: each message arrives at its time
	set.Now = func() time.Time { return wall }
	f, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	t0 := time.Unix(1000, 0)
	for _, s := range []struct {
		key string
		at  float64
	}{
		{"a", 0}, {"a", 1}, {"b", 1}, {"a", 20}, // spread out: no alert
		{"a", 21}, {"a", 22}, // 3 within 10 s: alert
		{"a", 23}, {"a", 24}, {"a", 25}, // same window: suppressed
		{"a", 33}, {"a", 34}, {"a", 35}, // a new window: alert again
	} {
		wall = t0.Add(time.Duration(s.at * 1e9))
		if err := f.Process(context.Background(), msg(s.key, wall), rec); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.msgs) != 2 {
		t.Fatalf("want 2 alerts, got %d", len(rec.msgs))
	}
	start, _ := rec.msgs[0].FieldInt("alert.start_time")
	end, _ := rec.msgs[0].FieldInt("alert.end_time")
	id1, _ := rec.msgs[0].FieldString("alert.id")
	id2, _ := rec.msgs[1].FieldString("alert.id")
	if start != t0.Add(20*time.Second).UnixNano() || end != t0.Add(22*time.Second).UnixNano() || id1 == id2 || !alert.ValidID(id2) {
		t.Fatalf("start %d end %d ids %s %s", start, end, id1, id2)
	}
	_ = f.Tick(context.Background(), t0.Add(time.Hour), rec)
	if len(f.keys) != 0 {
		t.Fatalf("quiet keys are forgotten: %d left", len(f.keys))
	}
}

func TestMaxKeys(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Key, cfg.Threshold, cfg.MaxKeys = "Fields[src]", 2, 2
	set := pipelinetest.Settings(t, "filters.t")
	f, _ := New(set, cfg)
	now := time.Unix(1000, 0)
	for _, k := range []string{"a", "b", "c"} {
		_ = f.Process(context.Background(), msg(k, now), &recorder{})
	}
	if got := set.Telemetry.(*pipelinetest.Telemetry).Dropped("threshold_keys"); got != 1 {
		t.Fatalf("dropped %d", got)
	}
}

func TestValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Key, cfg.Role, cfg.AlertKey = "Bogus", "bystander", "alert_nope"
	err := cfg.Validate()
	for _, want := range []string{"key: ", "role: ", "threshold: ", "alert_key: "} {
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

func BenchmarkProcess(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Key, cfg.Threshold = "Fields[src]", 100
	f, _ := New(pipelinetest.Settings(b, "filters.t"), cfg)
	m := msg("10.0.0.1", time.Unix(1000, 0))
	b.ReportAllocs()
	for b.Loop() {
		m.Timestamp += 1e9
		_ = f.Process(context.Background(), m, &recorder{})
	}
}

// A replayed log (a year behind the router's clock) keeps its counts across
// ticks: ticks expire keys in message time.
func TestTicksInMessageTime(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Key, cfg.Threshold, cfg.Window = "Fields[src]", 3, config.Duration(30*time.Second)
	set := pipelinetest.Settings(t, "filters.t")
	wall := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	set.Now = func() time.Time { return wall }
	f, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	old := wall.AddDate(-1, 0, 0)
	for i := range 2 {
		_ = f.Process(context.Background(), msg("a", old.Add(time.Duration(i)*time.Second)), rec)
	}
	wall = wall.Add(10 * time.Second)
	_ = f.Tick(context.Background(), wall, rec)
	_ = f.Process(context.Background(), msg("a", old.Add(2*time.Second)), rec)
	if len(rec.msgs) != 1 {
		t.Fatalf("the tick forgot the replayed key: %d alerts", len(rec.msgs))
	}
	wall = wall.Add(time.Minute)
	_ = f.Tick(context.Background(), wall, rec)
	if len(f.keys) != 0 {
		t.Fatalf("%d keys left after a quiet minute", len(f.keys))
	}
	// A message stamped a day ahead does not move ticks past the router's clock.
	_ = f.Process(context.Background(), msg("b", wall.Add(24*time.Hour)), rec)
	if c := f.tickClock(wall.Add(time.Second)); c != wall.Add(time.Second).UnixNano() {
		t.Fatalf("tick clock %v", time.Unix(0, c))
	}
}

// Keys are copies (a message's strings are views into its batch's shared
// buffers, which a kept view would pin), quiet keys leave in order, and the
// held keys are exported.
func TestKeysAreCopiesAndExpireInOrder(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Key, cfg.Threshold, cfg.Window = "Fields[src]", 5, config.Duration(10*time.Second)
	set := pipelinetest.Settings(t, "filters.t")
	f, _ := New(set, cfg)
	buf := []byte("10.0.0.1")
	m := pipeline.NewMessage()
	m.Timestamp = time.Unix(1000, 0).UnixNano()
	m.AddString("src", unsafe.String(&buf[0], len(buf)))
	_ = f.Process(context.Background(), m, &recorder{})
	copy(buf, "XXXXXXXX")
	if _, ok := f.keys["10.0.0.1"]; !ok {
		t.Fatalf("the key changed with the message's buffer: %v", f.keys)
	}
	for i, k := range []string{"b", "c", "d"} {
		_ = f.Process(context.Background(), msg(k, time.Unix(1001+int64(i)*5, 0)), &recorder{})
	}
	// at 1012: 10.0.0.1 (1000) and b (1001) are quiet for more than 10 s
	f.expire(time.Unix(1012, 0).UnixNano())
	if len(f.keys) != 2 || f.head.key != "c" || f.tail.key != "d" {
		t.Fatalf("keys %v", f.keys)
	}
	tel := set.Telemetry.(*pipelinetest.Telemetry)
	if got := tel.Count("threshold_keys"); got != 2 || tel.Count("threshold_expired_total") != 2 {
		t.Fatalf("threshold_keys gauge %v", got)
	}
}

// BenchmarkSpray: events from a new address each (an attacker spraying
// sources) against a full table of active keys cost the same as any other
// event: nothing scans the keys.
func BenchmarkSpray(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Key, cfg.Threshold, cfg.MaxKeys = "Fields[src]", 20, 10000
	f, _ := New(pipelinetest.Settings(b, "filters.t"), cfg)
	msgs := make([]*pipeline.Message, 100000)
	for i := range msgs {
		msgs[i] = msg(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), time.Unix(1000, 0))
	}
	rec := &recorder{}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m := msgs[i%len(msgs)]
		m.Timestamp += 1e6
		_ = f.Process(context.Background(), m, rec)
		i++
	}
}
