package lua

import (
	"bytes"
	"context"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/internal/sandbox"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an Injector that keeps what it gets.
type recorder struct {
	msgs []*pipeline.Message
	err  error
}

func (r *recorder) Inject(m *pipeline.Message) error {
	if r.err != nil {
		return r.err
	}
	r.msgs = append(r.msgs, m)
	return nil
}

func (r *recorder) jsonl() []byte {
	var out []byte
	for _, m := range r.msgs {
		out = append(codec.AppendJSON(out, m), '\n')
	}
	return out
}

// newFilter builds a filter for the script src (written to a temp dir) with
// cfg's other settings.
func newFilter(t testing.TB, src string, mod func(*Config)) (*Filter, *pipelinetest.Telemetry) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.lua"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Filename = "f.lua"
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	set := pipelinetest.Settings(t, "filters.test")
	set.ConfigDir = dir
	tel := &pipelinetest.Telemetry{}
	set.Telemetry = tel
	f, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.ids = alert.SeededIDs(1)
	return f, tel
}

func testMessage() *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "test"
	m.Logger = "input"
	m.Hostname = "host1"
	m.Timestamp = 1795161629339123456
	m.Payload = "hello"
	m.AddString("status", "500")
	m.AddInt("bytes", 1234567890123456789)
	m.AddDouble("latency", 0.25)
	m.AddBool("admin", true)
	return m
}

// TestGolden runs testdata/<case>/: config.toml (the filter's keys;
// filename relative to this directory), input.jsonl (messages given to
// Process in order), then one Tick at pipelinetest.Now; expected.jsonl holds
// every injected message.
func TestGolden(t *testing.T) {
	for _, c := range pipelinetest.Cases(t, "") {
		t.Run(c.Name, func(t *testing.T) {
			cfg := pipelinetest.ConfigFor(t, Factory(), c).(*Config)
			set := pipelinetest.Settings(t, "filters."+c.Name)
			f, err := New(set, *cfg)
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
					t.Fatalf("input line %d: %v", i+1, err)
				}
				if err := f.Process(context.Background(), m, rec); err != nil {
					t.Fatalf("message %d: %v", i+1, err)
				}
			}
			if err := f.Tick(context.Background(), pipelinetest.Now, rec); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			pipelinetest.Golden(t, filepath.Join(c.Dir, "expected.jsonl"), rec.jsonl())
		})
	}
}

func TestReadAndInject(t *testing.T) {
	f, _ := newFilter(t, `
function process_message()
  local ts = read_message("Timestamp")
  local sec, nsec = read_timestamp()
  inject_message{
    Type = "derived", Payload = read_message("Payload"), Severity = 3,
    Timestamp = read_exact("Timestamp"),
    Fields = {
      status = read_message("Fields[status]"),
      bytes = {value = read_exact("Fields[bytes]"), value_type = 2},
      latency = {value = read_message("Fields[latency]"), representation = "s"},
      admin = read_message("Fields[admin]"),
      missing = tostring(read_message("Fields[nope]")),
      sec = {value = sec, value_type = 2}, nsec = {value = nsec, value_type = 2},
      ts = ts, cfg = read_config("who"), list = {1, 2, 3},
      uuid = read_message("Uuid"),
    },
  }
  return 0
end`, func(c *Config) { c.Config = map[string]any{"who": "me"} })
	rec := &recorder{}
	if err := f.Process(context.Background(), testMessage(), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.msgs) != 1 {
		t.Fatalf("%d messages", len(rec.msgs))
	}
	got := string(rec.jsonl())
	for _, want := range []string{
		`"type":"derived"`, `"payload":"hello"`, `"severity":3`, `"timestamp":"2026-11-20T08:00:29.339123456Z"`,
		`{"name":"bytes","type":"integer","value":[1234567890123456789]}`,
		`{"name":"sec","type":"integer","value":[1795161629]}`, `{"name":"nsec","type":"integer","value":[339123456]}`,
		`{"name":"latency","type":"double","value":[0.25],"representation":"s"}`,
		`{"name":"admin","type":"bool","value":[true]}`, `{"name":"missing","type":"string","value":["nil"]}`,
		`{"name":"cfg","type":"string","value":["me"]}`, `{"name":"list","type":"double","value":[1.0,2.0,3.0]}`,
		`{"name":"uuid","type":"string","value":["00000000-0000-0000-0000-000000000000"]}`,
		`"hostname":"test-host"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in\n%s", want, got)
		}
	}
}

func TestInjectPayload(t *testing.T) {
	f, _ := newFilter(t, `
function process_message() add_to_payload("a", 1, 2.5, true) return 0 end
function timer_event(ns) inject_payload("txt", "summary", " tail") return 0 end`, nil)
	rec := &recorder{}
	_ = f.Process(context.Background(), testMessage(), rec)
	if err := f.Tick(context.Background(), pipelinetest.Now, rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.msgs) != 1 || rec.msgs[0].Payload != " tail" || rec.msgs[0].Type != "tern.sandbox-output" {
		t.Fatalf("payload buffer must belong to one call: %s", rec.jsonl())
	}
}

func TestReturnCodes(t *testing.T) {
	f, tel := newFilter(t, `
function process_message()
  local p = read_message("Payload")
  if p == "bad" then return -1, "bad record" end
  if p == "fatal" then return 1, "giving up" end
  return 0
end`, func(c *Config) { c.MaxFailures = 2 })
	rec := &recorder{}
	m := testMessage()
	for range 5 {
		m.Payload = "bad"
		if err := f.Process(context.Background(), m, rec); err == nil || !strings.Contains(err.Error(), "bad record") {
			t.Fatalf("want the script's message, got %v", err)
		}
	}
	if f.fail.Disabled() {
		t.Fatal("negative returns are data problems; they must not disable the script")
	}
	m.Payload = "fatal"
	_ = f.Process(context.Background(), m, rec)
	m.Payload = "ok"
	if err := f.Process(context.Background(), m, rec); err != nil {
		t.Fatal(err)
	}
	if !f.dead {
		t.Fatal("a positive return disables the script")
	}
	if tel.Dropped("filter_disabled") != 1 {
		t.Fatalf("messages to a disabled filter are counted: %v", tel.Drops)
	}
}

func TestFailurePolicies(t *testing.T) {
	src := `function process_message() error("boom") end`
	t.Run("deadletter", func(t *testing.T) {
		f, _ := newFilter(t, src, func(c *Config) { c.FailurePolicy = "deadletter" })
		rec := &recorder{}
		if err := f.Process(context.Background(), testMessage(), rec); err != nil {
			t.Fatal(err)
		}
		if len(rec.msgs) != 1 || rec.msgs[0].Type != "tern.deadletter" || !strings.Contains(rec.msgs[0].Payload, `"payload":"hello"`) {
			t.Fatalf("want a dead letter holding the message: %s", rec.jsonl())
		}
		if e, _ := rec.msgs[0].FieldString("deadletter.error"); !strings.Contains(e, "boom") {
			t.Fatalf("deadletter.error = %q", e)
		}
	})
	t.Run("pass", func(t *testing.T) {
		f, _ := newFilter(t, src, func(c *Config) { c.FailurePolicy = "pass" })
		rec := &recorder{}
		m := testMessage()
		if err := f.Process(context.Background(), m, rec); err != nil {
			t.Fatal(err)
		}
		if len(rec.msgs) != 1 || rec.msgs[0].Payload != m.Payload || len(rec.msgs[0].Fields) != len(m.Fields) || rec.msgs[0].Logger != "" {
			t.Fatalf("want the message passed on unchanged: %s", rec.jsonl())
		}
	})
	t.Run("count_then_disable", func(t *testing.T) {
		f, tel := newFilter(t, src, func(c *Config) { c.MaxFailures = 10 })
		rec := &recorder{}
		for i := range 12 {
			err := f.Process(context.Background(), testMessage(), rec)
			if i < 10 && err == nil {
				t.Fatalf("call %d: want the error", i)
			}
		}
		if !f.fail.Disabled() || tel.Counts["lua_disabled"] != 1 {
			t.Fatalf("want disabled after 10 failures, gauge %v", tel.Counts)
		}
		if tel.Counts["lua_failures_total"] != 10 || tel.Dropped("filter_disabled") != 2 {
			t.Fatalf("counts %v drops %v", tel.Counts, tel.Drops)
		}
	})
}

func TestFailedCallInjectsNothing(t *testing.T) {
	f, tel := newFilter(t, `
function process_message()
  inject_message{Type = "partial"}
  while true do end
end`, nil)
	rec := &recorder{}
	err := f.Process(context.Background(), testMessage(), rec)
	if k := sandbox.KindOf(err); k != sandbox.KindInstruction && k != sandbox.KindDeadline {
		t.Fatalf("want the instruction limit or the deadline, got %v", err)
	}
	if len(rec.msgs) != 0 || tel.Dropped("lua_failed_call") != 1 {
		t.Fatalf("a failed call's injections are dropped and counted: %d msgs, drops %v", len(rec.msgs), tel.Drops)
	}
}

func TestLimits(t *testing.T) {
	f, _ := newFilter(t, `
function process_message()
  local p = read_message("Payload")
  if p == "many" then for i = 1, 5 do inject_message{Type = "x"} end end
  if p == "big" then inject_message{Type = "x", Payload = string.rep("y", 5000)} end
  if p == "payload" then add_to_payload(string.rep("y", 3000)) end
  return 0
end`, func(c *Config) { c.MaxInject = 3; c.OutputLimit = 2048 })
	for _, tc := range []struct{ payload, want string }{
		{"many", "max_inject exceeded"}, {"big", "output_limit exceeded"}, {"payload", "output_limit exceeded"},
	} {
		m := testMessage()
		m.Payload = tc.payload
		err := f.Process(context.Background(), m, &recorder{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", tc.payload, tc.want, err)
		}
	}
}

func TestPreserveData(t *testing.T) {
	src := `
_PRESERVATION_VERSION = VERSION or 1
count = 0
shared = {n = 1}
data = {a = shared, b = shared, s = "x\0y\n\"", nested = {1, 2, {3}}}
data.self = data
function process_message() count = count + 1 return 0 end
function timer_event() inject_message{Type = "count", Fields = {n = count, same = tostring(data.a == data.b), cyc = tostring(data.self == data), s = data.s}} return 0 end`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.lua"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := func() *Filter {
		cfg := DefaultConfig()
		cfg.Filename = "f.lua"
		cfg.PreserveData = true
		set := pipelinetest.Settings(t, "filters.p")
		set.ConfigDir, set.DataDir = dir, filepath.Join(dir, "data")
		f, _ := New(set, cfg)
		return f
	}
	f := mk()
	for range 3 {
		_ = f.Process(context.Background(), testMessage(), &recorder{})
	}
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f = mk()
	_ = f.Process(context.Background(), testMessage(), &recorder{})
	rec := &recorder{}
	_ = f.Tick(context.Background(), time.Now(), rec)
	got := string(rec.jsonl())
	for _, want := range []string{`"name":"n","type":"double","value":[4.0]`, `"name":"same","type":"string","value":["true"]`,
		`"name":"cyc","type":"string","value":["true"]`, `"name":"s","type":"string","value":["x\u0000y\n\""]`} {
		if !strings.Contains(got, want) {
			t.Errorf("want %s in %s", want, got)
		}
	}
	_ = f.Close(context.Background())
	// A new _PRESERVATION_VERSION discards the saved state.
	if err := os.WriteFile(filepath.Join(dir, "f.lua"), []byte("VERSION = 2\n"+src), 0o644); err != nil {
		t.Fatal(err)
	}
	f = mk()
	_ = f.Process(context.Background(), testMessage(), &recorder{})
	rec = &recorder{}
	_ = f.Tick(context.Background(), time.Now(), rec)
	if !strings.Contains(string(rec.jsonl()), `"name":"n","type":"double","value":[1.0]`) {
		t.Errorf("version change must discard: %s", rec.jsonl())
	}
	_ = f.Close(context.Background())
}

func TestLoadErrorDisables(t *testing.T) {
	f, _ := newFilter(t, `function process_message( return 0 end`, nil)
	err := f.Process(context.Background(), testMessage(), &recorder{})
	if sandbox.KindOf(err) != sandbox.KindLoad || !strings.Contains(err.Error(), "f.lua:1:") {
		t.Fatalf("want a load error naming the line, got %v", err)
	}
	if !f.dead {
		t.Fatal("a script that does not compile is disabled at once")
	}
	var ie interface{ Error() string } = err
	if errors.Is(ie.(error), context.Canceled) {
		t.Fatal("unreachable")
	}
}

// Check reports a missing script and a missing alert definitions directory
// together, each once and named by its key, so tern check (and tern run,
// which refuses to start on it) shows every mistake at once.
func TestCheckReportsScriptAndDefinitions(t *testing.T) {
	f, _ := newFilter(t, "function process_message() return 0 end", func(c *Config) {
		c.Filename = "missing.lua"
		c.AlertDefinitions = "no_such_dir"
	})
	err := f.Check()
	if err == nil {
		t.Fatal("Check() = nil")
	}
	msg := err.Error()
	for _, want := range []string{"missing.lua: no such file", "alert_definitions: stat ", "no_such_dir: no such file"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Check() = %q, want it to mention %q", msg, want)
		}
	}
	if strings.Count(msg, "alert definitions") > 0 || strings.Count(msg, "alert_definitions") != 1 {
		t.Errorf("Check() = %q: the definitions error once, by its key", msg)
	}
	// With the script there, the definitions error alone.
	f, _ = newFilter(t, "function process_message() return 0 end", func(c *Config) { c.AlertDefinitions = "no_such_dir" })
	if err := f.Check(); err == nil || strings.Count(err.Error(), "no_such_dir") != 1 {
		t.Errorf("Check() = %v, want one alert_definitions error", err)
	}
}
