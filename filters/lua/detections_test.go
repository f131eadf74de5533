package lua

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
	"weak"

	"github.com/ternlog/tern/internal/testutil/testscale"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

const sec = int64(time.Second)

// base is a whole second: the detections count in whole seconds.
var base = time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC).UnixNano()

func authFail(ts int64, src, user string) *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "cef"
	m.Hostname = "web-1"
	m.Timestamp = ts
	m.AddString("deviceEventClassId", "AuthFail")
	m.AddString("src", src)
	if user != "" {
		m.AddString("suser", user)
	}
	return m
}

func sshEvent(ts int64, event, src, user string) *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "syslog"
	m.Hostname = "bastion1"
	m.Timestamp = ts
	m.AddString("sshd.event", event)
	m.AddString("src_ip", src)
	m.AddString("user", user)
	return m
}

// detection builds a shipped detection with its alert definitions.
func detection(t testing.TB, script string, conf map[string]any, mod func(*Config, *pipeline.Settings)) *Filter {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Filename = "scripts/" + script + ".lua"
	cfg.AlertDefinitions = "alerts"
	cfg.Config = conf
	set := pipelinetest.Settings(t, "filters."+script)
	set.Now = func() time.Time { return time.Unix(0, liveWall.Load()) }
	if mod != nil {
		mod(&cfg, &set)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	f, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func process(t testing.TB, f *Filter, rec *recorder, msgs ...*pipeline.Message) {
	t.Helper()
	for _, m := range msgs {
		processOne(t, f, rec, m)
	}
}

// liveWall is the router's clock of the filters detection builds: live
// traffic, each message arriving at its own time (processOne sets it).
var liveWall atomic.Int64

func processOne(t testing.TB, f *Filter, rec *recorder, m *pipeline.Message) {
	t.Helper()
	if m.Timestamp != 0 {
		liveWall.Store(m.Timestamp)
	}
	if err := f.Process(context.Background(), m, rec); err != nil {
		t.Fatal(err)
	}
}

// A replayed log (message times a year behind the router's clock) keeps
// its counts across timer events: a tick sees the newest message's time
// plus what has passed since it arrived, not the wall clock, so sources
// expire once they have been quiet for the window in that time, and a
// message stamped in the future cannot push the ticks' clock past the
// router's.
func TestDetectionTicksInMessageTime(t *testing.T) {
	wall := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	f := detection(t, "auth_failure_burst", map[string]any{"threshold": int64(3), "window": int64(30)}, func(_ *Config, set *pipeline.Settings) {
		set.Now = func() time.Time { return wall }
	})
	defer f.Close(context.Background())
	rec := &recorder{}
	old := wall.AddDate(-1, 0, 0).UnixNano()
	tick := func(d time.Duration) {
		t.Helper()
		wall = wall.Add(d)
		if err := f.Tick(context.Background(), wall, rec); err != nil {
			t.Fatal(err)
		}
	}
	process(t, f, rec, authFail(old, "a", "u1"), authFail(old+sec, "a", "u1"))
	tick(10 * time.Second) // 10 s after the last message: a still counts 2
	process(t, f, rec, authFail(old+2*sec, "a", "u2"), authFail(old+3*sec, "a", "u2"))
	if got := payloads(rec); len(got) != 1 || !strings.Contains(got[0], "3 authentication failures from a") {
		t.Fatalf("the tick forgot the replayed source: %q", got)
	}
	tick(29 * time.Second) // 29 s quiet (in message time): not yet
	if len(rec.msgs) != 1 {
		t.Fatalf("expired early: %q", payloads(rec))
	}
	tick(2 * time.Second)
	if got := payloads(rec); len(got) != 2 || !strings.Contains(got[1], "description = 4 authentication failures from a") {
		t.Fatalf("not expired after the window: %q", got)
	}

	// A timestamp a day ahead: the next tick stays at the router's clock.
	process(t, f, rec, authFail(wall.Add(24*time.Hour).UnixNano(), "b", ""))
	if c := f.tickClock(wall.Add(time.Second)); c != wall.Add(time.Second).UnixNano() {
		t.Fatalf("tick clock %v, want the wall clock", time.Unix(0, c))
	}
}

var alertID = regexp.MustCompile(`id = [0-9a-f-]{36}`)

// payloads returns the Haka text of the alerts, without the wall-clock part
// and with the alert ids (random UUIDs) numbered in order of appearance.
func payloads(rec *recorder) []string {
	var out []string
	ids := map[string]int{}
	for _, m := range rec.msgs {
		p := m.Payload
		if i := strings.Index(p, " time = "); i >= 0 {
			if j := strings.Index(p[i+8:], " 2026 "); j >= 0 {
				p = p[:i] + p[i+8+j+5:]
			}
		}
		p = alertID.ReplaceAllStringFunc(p, func(id string) string {
			if _, ok := ids[id]; !ok {
				ids[id] = len(ids) + 1
			}
			return fmt.Sprintf("id = %d", ids[id])
		})
		out = append(out, p)
	}
	return out
}

// The window's edges, with timer events at simulated times: an event counts
// until its second has left the window, the burst's source expires (and its
// alert is updated) on the first tick after it has been quiet for more than
// the window, and not a tick earlier.
func TestDetectionWindowEdges(t *testing.T) {
	f := detection(t, "auth_failure_burst", map[string]any{"threshold": int64(3), "window": int64(10)}, nil)
	defer f.Close(context.Background())
	rec := &recorder{}
	// a at 0 s, 5 s and 10.999 s: the window at second 10 holds the
	// seconds 0 to 10, so the third failure raises the alert.
	process(t, f, rec,
		authFail(base, "a", "u1"), authFail(base+5*sec, "a", "u2"), authFail(base+10*sec+999_000_000, "a", "u1"),
		// b at 0 s, 5 s and 11 s: second 0 has left the window at 11 s.
		authFail(base, "b", ""), authFail(base+5*sec, "b", ""), authFail(base+11*sec, "b", ""))
	if got := payloads(rec); len(got) != 1 || !strings.Contains(got[0], "3 authentication failures from a within 10s") ||
		!strings.Contains(got[0], "confidence = high") {
		t.Fatalf("%q", got)
	}
	process(t, f, rec, authFail(base+12*sec, "a", "u3"))
	// a was last seen in second 12: quiet for more than 10 s from second 23.
	tick := func(at int64) {
		t.Helper()
		if err := f.Tick(context.Background(), time.Unix(0, base+at), rec); err != nil {
			t.Fatal(err)
		}
	}
	tick(22*sec + 999_999_999)
	if got := payloads(rec); len(got) != 1 {
		t.Fatalf("updated before the source was quiet for the whole window: %q", got)
	}
	tick(23 * sec)
	got := payloads(rec)
	if len(got) != 2 || !strings.HasPrefix(got[1], "alert: update id = 1") || !strings.Contains(got[1], "description = 4 authentication failures from a") {
		t.Fatalf("%q", got)
	}
	end := rec.msgs[1].Field("alert.end_time", 0)
	if end == nil || end.Value(0).Int() != base+12*sec {
		t.Fatalf("end time %v", end)
	}
}

// ssh_bruteforce: the alert, the success that follows, and the update once
// quiet, with the user names of the source.
func TestDetectionSSH(t *testing.T) {
	f := detection(t, "ssh_bruteforce", map[string]any{"threshold": int64(4), "window": int64(60), "max_users": int64(3)}, nil)
	defer f.Close(context.Background())
	rec := &recorder{}
	for i, u := range []string{"root", "admin", "root", "oracle", "git", "pi"} {
		process(t, f, rec, sshEvent(base+int64(i)*sec, "failed_password", "203.0.113.77", u))
	}
	process(t, f, rec, sshEvent(base+7*sec, "accepted", "203.0.113.77", "pi"), sshEvent(base+8*sec, "accepted", "203.0.113.77", "pi"))
	if err := f.Tick(context.Background(), time.Unix(0, base+70*sec), rec); err != nil {
		t.Fatal(err)
	}
	got := payloads(rec)
	if len(got) != 3 ||
		!strings.Contains(got[0], "4 failed SSH logins from 203.0.113.77 within 60s (users: admin,oracle,root)") ||
		!strings.Contains(got[1], "update id = 1") || !strings.Contains(got[1], "completion = successful") ||
		!strings.Contains(got[2], "6 failed SSH logins from 203.0.113.77 (users: admin,oracle,root,...)") {
		t.Fatalf("%q", got)
	}
}

// With preserve_data, a burst that spans a restart is counted whole, and an
// alert raised before it is updated with its own id after it.
func TestDetectionPreserved(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	mk := func() *Filter {
		return detection(t, "auth_failure_burst", map[string]any{"threshold": int64(5), "window": int64(30)}, func(c *Config, s *pipeline.Settings) {
			c.PreserveData = true
			s.DataDir = dataDir
		})
	}
	f := mk()
	rec := &recorder{}
	for i := range 5 {
		process(t, f, rec, authFail(base+int64(i)*sec, "b", "u"))
	}
	for i := range 3 {
		process(t, f, rec, authFail(base+int64(i)*sec, "a", "u"))
	}
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f = mk()
	defer f.Close(context.Background())
	for i := 3; i < 5; i++ {
		process(t, f, rec, authFail(base+int64(i)*sec, "a", "v"))
	}
	process(t, f, rec, authFail(base+6*sec, "b", "u"))
	if err := f.Tick(context.Background(), time.Unix(0, base+60*sec), rec); err != nil {
		t.Fatal(err)
	}
	got := payloads(rec)
	want := []string{
		"alert: id = 1 start time = Fri Nov 20 11:00:00 2026 end time = Fri Nov 20 11:00:04 2026 severity = medium confidence = medium completion = failed description = 5 authentication failures from b",
		"alert: id = 2 start time = Fri Nov 20 11:00:00 2026 end time = Fri Nov 20 11:00:04 2026 severity = medium confidence = high completion = failed description = 5 authentication failures from a",
		"alert: update id = 1 end time = Fri Nov 20 11:00:06 2026 description = 6 authentication failures from b",
	}
	if len(got) != len(want) {
		t.Fatalf("%q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("\n got %q\nwant %q…", got[i], want[i])
		}
	}
}

// A million distinct sources (100,000 in CI) through auth_failure_burst
// capped at 1,000: the state stays at the cap, every source beyond it is
// counted as evicted (tern_lua_state_evictions_total), and the planted
// bursts, each spread over fewer messages than the cap, still raise their
// alerts.
func TestDetectionCardinality(t *testing.T) {
	n := testscale.N(1_000_000, 100_000)
	tel := &pipelinetest.Telemetry{}
	f := detection(t, "auth_failure_burst", map[string]any{"threshold": int64(20), "max_sources": int64(1000)}, func(_ *Config, s *pipeline.Settings) {
		s.Telemetry = tel
	})
	defer f.Close(context.Background())
	rec := &recorder{}
	planted := 0
	ts := base
	for i := range n {
		ts += int64(time.Millisecond)
		src := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		if i%5000 < 400 && i%20 == 0 { // a burst of 20 over 400 messages
			src = fmt.Sprintf("192.0.2.%d", i/5000%256)
			if i%5000 == 380 {
				planted++
			}
		}
		process(t, f, rec, authFail(ts, src, "u"))
	}
	if err := f.Tick(context.Background(), time.Unix(0, ts), rec); err != nil {
		t.Fatal(err)
	}
	raised := 0
	for _, m := range rec.msgs {
		if !strings.HasPrefix(m.Payload, "alert: update") {
			raised++
		}
	}
	st := f.sb.States()
	if len(st) != 1 || st[0].Keys > 1000 || raised != planted {
		t.Fatalf("states %+v, %d alerts for %d planted bursts", st, raised, planted)
	}
	if ev := tel.Counts["lua_state_evictions_total"]; ev < float64(n-planted*20-1000) || tel.Counts["lua_state_keys"] > 1000 {
		t.Fatalf("metrics %v", tel.Counts)
	}
	t.Logf("%d sources: %+v, %d alerts", n, st[0], raised)
}

// A string the script keeps is its own copy, not a view into the batch's
// buffer (which it would keep alive whole).
func TestReadMessageCopies(t *testing.T) {
	f, _ := newFilter(t, `
kept = {}
function process_message() kept.src = read_message("Fields[src]"); kept.host = read_message("Hostname") return 0 end
function timer_event() inject_message{Type = "kept", Payload = kept.src .. " " .. kept.host} return 0 end`, nil)
	buf := []byte("192.0.2.1 web-1")
	m := pipeline.NewMessage()
	m.AddString("src", unsafe.String(&buf[0], 9)) // what decoders hand out
	m.Hostname = unsafe.String(&buf[10], 5)
	process(t, f, &recorder{}, m)
	copy(buf, "XXXXXXXXXXXXXXX") // the batch's memory, reused or not, is not the script's
	rec := &recorder{}
	if err := f.Tick(context.Background(), time.Unix(0, base), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.msgs) != 1 || rec.msgs[0].Payload != "192.0.2.1 web-1" {
		t.Fatalf("%q", payloads(rec))
	}
}

// The detection keeps no batch alive: what it holds on to (sources in its
// window, alerted sources in a Lua table) are copies.
func TestDetectionKeepsNoBatch(t *testing.T) {
	f := detection(t, "auth_failure_burst", map[string]any{"threshold": int64(3)}, nil)
	defer f.Close(context.Background())
	var chunks []weak.Pointer[byte]
	for bi := range 50 {
		b := pipeline.NewBatch()
		for i := range 64 {
			m := b.Add()
			m.Timestamp = base + int64(bi*64+i)*sec/10
			m.Hostname = b.Str([]byte("web-1"))
			m.AddString("deviceEventClassId", b.Str([]byte("AuthFail")))
			m.AddString("src", b.Str(fmt.Appendf(nil, "10.0.%d.%d", bi%4, i%3)))
			m.AddString("suser", b.Str([]byte("u")))
		}
		process(t, f, &recorder{}, b.Msgs...)
		src, _ := b.Msgs[0].FieldString("src")
		chunks = append(chunks, weak.Make(unsafe.StringData(src)))
	}
	runtime.GC()
	runtime.GC()
	for i, c := range chunks {
		if c.Value() != nil {
			t.Fatalf("the string chunk of batch %d is still alive", i)
		}
	}
}
