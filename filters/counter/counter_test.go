package counter

import (
	"context"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

type recorder struct{ msgs []*pipeline.Message }

func (r *recorder) Inject(m *pipeline.Message) error { r.msgs = append(r.msgs, m); return nil }

func TestRates(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	set := pipelinetest.Settings(t, "filters.counter")
	set.Now = func() time.Time { return now }
	cfg := DefaultConfig()
	cfg.MaxGroups = 2
	f, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	for i, tl := range []string{"a/x", "a/x", "b/y", "a/x", "c/z", "d/w"} {
		m := pipeline.NewMessage()
		m.Type, m.Logger, _ = strings.Cut(tl, "/")
		_ = i
		if err := f.Process(context.Background(), m, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Tick(context.Background(), now.Add(2*time.Second), rec); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range rec.msgs {
		got = append(got, string(codec.AppendJSON(nil, m)))
	}
	want := []string{
		`{"uuid":"00000000-0000-0000-0000-000000000000","timestamp":"2026-11-20T10:00:02Z","type":"tern.counter","logger":"","severity":6,"payload":"Got 2 messages. 1.00 msg/sec","env_version":"","pid":0,"hostname":"","fields":[{"name":"counter.type","type":"string","value":["_other_"]},{"name":"counter.logger","type":"string","value":["_other_"]},{"name":"counter.count","type":"integer","value":[2]},{"name":"counter.rate","type":"double","value":[1.0]},{"name":"counter.interval","type":"double","value":[2.0],"representation":"s"}]}`,
		`{"uuid":"00000000-0000-0000-0000-000000000000","timestamp":"2026-11-20T10:00:02Z","type":"tern.counter","logger":"","severity":6,"payload":"Got 3 messages. 1.50 msg/sec","env_version":"","pid":0,"hostname":"","fields":[{"name":"counter.type","type":"string","value":["a"]},{"name":"counter.logger","type":"string","value":["x"]},{"name":"counter.count","type":"integer","value":[3]},{"name":"counter.rate","type":"double","value":[1.5]},{"name":"counter.interval","type":"double","value":[2.0],"representation":"s"}]}`,
		`{"uuid":"00000000-0000-0000-0000-000000000000","timestamp":"2026-11-20T10:00:02Z","type":"tern.counter","logger":"","severity":6,"payload":"Got 1 messages. 0.50 msg/sec","env_version":"","pid":0,"hostname":"","fields":[{"name":"counter.type","type":"string","value":["b"]},{"name":"counter.logger","type":"string","value":["y"]},{"name":"counter.count","type":"integer","value":[1]},{"name":"counter.rate","type":"double","value":[0.5]},{"name":"counter.interval","type":"double","value":[2.0],"representation":"s"}]}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rec.msgs = nil
	_ = f.Tick(context.Background(), now.Add(4*time.Second), rec)
	if len(rec.msgs) != 0 {
		t.Fatal("an interval without messages injects nothing")
	}
}

func BenchmarkProcess(b *testing.B) {
	f, _ := New(pipelinetest.Settings(b, "filters.c"), DefaultConfig())
	m := pipeline.NewMessage()
	m.Type, m.Logger = "syslog", "auth"
	b.ReportAllocs()
	for b.Loop() {
		_ = f.Process(context.Background(), m, nil)
	}
}

// Groups keep copies of the values they are counted by: a message's
// strings are views into its batch's buffers, which a kept view would pin
// (and which the test here overwrites).
func TestGroupsKeepCopies(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GroupBy = []string{"Type"}
	f, err := New(pipelinetest.Settings(t, "filters.c"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte("login")
	m := pipeline.NewMessage()
	m.Type = unsafe.String(&buf[0], len(buf))
	if err := f.Process(context.Background(), m, nil); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	g := f.groups["login"]
	if g == nil || g.values[0] != "login" {
		t.Fatalf("groups %v", f.groups)
	}
}
