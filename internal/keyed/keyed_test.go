package keyed

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ternlog/tern/internal/testutil/testscale"
)

const sec = int64(time.Second)

// t0 is a whole second, so slot edges fall on t0 + k seconds.
const t0 = int64(1795175404) * sec

func newWindow(t testing.TB, cfg WindowConfig) *Window {
	t.Helper()
	w, err := NewWindow(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func add(t testing.TB, w *Window, now int64, key, val string) int64 {
	t.Helper()
	n, err := w.Add(now, key, val, val != "")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// drain returns the keys Expired gives at now, with their totals.
func drain(w *Window, now int64) []string {
	var out []string
	for {
		k, total, ok := w.Expired(now)
		if !ok {
			return out
		}
		out = append(out, fmt.Sprintf("%s=%d", k, total))
	}
}

// The window holds the slots from now-span to now: an event at t counts
// until t+span's slot ends, and the key expires at the first slot after.
func TestWindowEdges(t *testing.T) {
	w := newWindow(t, WindowConfig{Span: 30 * time.Second})
	add(t, w, t0+999_000_000, "a", "") // slot t0
	if n := add(t, w, t0+10*sec, "a", ""); n != 2 {
		t.Fatalf("count %d", n)
	}
	// At t0+30.999 s, the slot of t0 is still inside [now-30 s, now].
	if n := w.Count(t0+30*sec+999_999_999, "a"); n != 2 {
		t.Fatalf("count at the edge %d, want 2", n)
	}
	if got := drain(w, t0+40*sec+999_999_999); got != nil {
		t.Fatalf("expired before its last slot left: %v", got)
	}
	if n := w.Count(t0+31*sec, "a"); n != 1 {
		t.Fatalf("count past the edge %d, want 1", n)
	}
	if got := drain(w, t0+41*sec); !slices.Equal(got, []string{"a=2"}) {
		t.Fatalf("expired %v", got)
	}
	if w.Stats().Keys != 0 || w.Stats().Expirations != 1 {
		t.Fatalf("%+v", w.Stats())
	}
}

// Keys expire in the order they were last touched, each exactly when it has
// been quiet for more than the span, and the record stays readable during
// the step that reports it.
func TestWindowExpiryOrder(t *testing.T) {
	w := newWindow(t, WindowConfig{Span: 10 * time.Second, Distinct: 4, Values: true})
	add(t, w, t0, "b", "u1")
	add(t, w, t0+1*sec, "a", "u2")
	add(t, w, t0+2*sec, "b", "u3") // b moves behind a
	add(t, w, t0+3*sec, "c", "")
	for now := t0; now <= t0+11*sec; now += sec {
		if got := drain(w, now); got != nil {
			t.Fatalf("at +%ds: %v", (now-t0)/sec, got)
		}
	}
	k, total, ok := w.Expired(t0 + 12*sec)
	if !ok || k != "a" || total != 1 {
		t.Fatalf("%q %d %v", k, total, ok)
	}
	if first, last, ok := w.Times("a"); !ok || first != t0+sec || last != t0+sec {
		t.Fatal("the reported record is not readable")
	}
	if vals := w.Values("a"); !slices.Equal(vals, []string{"u2"}) {
		t.Fatalf("values %v", vals)
	}
	if _, _, ok := w.Expired(t0 + 12*sec); ok {
		t.Fatal("b expired early")
	}
	if w.Has("a") {
		t.Fatal("a still readable after the next step")
	}
	if got := drain(w, t0+14*sec); !slices.Equal(got, []string{"b=2", "c=1"}) {
		t.Fatalf("%v", got)
	}
}

// A touch of a key whose period ended (Expired did not reach it) reports
// the old period and starts a new one.
func TestWindowStaleTouch(t *testing.T) {
	w := newWindow(t, WindowConfig{Span: 10 * time.Second, Distinct: 4, Values: true})
	add(t, w, t0+100*sec, "x", "") // x at the front, far in the future
	add(t, w, t0, "a", "u1")
	add(t, w, t0+1*sec, "a", "u1")
	if got := drain(w, t0+20*sec); got != nil { // x blocks the front
		t.Fatalf("%v", got)
	}
	if n := add(t, w, t0+20*sec, "a", "u2"); n != 1 {
		t.Fatalf("count %d after a quiet span", n)
	}
	if got := drain(w, t0+20*sec); !slices.Equal(got, []string{"a=2"}) {
		t.Fatalf("the old period was not reported: %v", got)
	}
	if w.Total("a") != 1 || !slices.Equal(w.Values("a"), []string{"u2"}) {
		t.Fatal("the new period carries the old one's state")
	}
}

// Time going backwards for one key counts in its newest slot.
func TestWindowOutOfOrder(t *testing.T) {
	w := newWindow(t, WindowConfig{Span: 10 * time.Second})
	add(t, w, t0+5*sec, "a", "")
	if n := add(t, w, t0, "a", ""); n != 2 {
		t.Fatalf("count %d", n)
	}
	if _, last, _ := w.Times("a"); last != t0+5*sec {
		t.Fatal("last went backwards")
	}
	if n := w.Count(t0+15*sec, "a"); n != 2 {
		t.Fatalf("count %d at the newest slot's edge", n)
	}
}

func TestWindowResolution(t *testing.T) {
	if _, err := NewWindow(WindowConfig{Span: 10 * time.Second, Resolution: 3 * time.Second}, nil); err == nil {
		t.Fatal("span not a multiple of the resolution accepted")
	}
	w := newWindow(t, WindowConfig{Span: time.Second, Resolution: time.Millisecond})
	add(t, w, t0, "a", "")
	add(t, w, t0+500*int64(time.Millisecond), "a", "")
	if n := w.Count(t0+int64(time.Second), "a"); n != 2 {
		t.Fatalf("%d", n)
	}
	if n := w.Count(t0+int64(time.Second)+int64(time.Millisecond), "a"); n != 1 {
		t.Fatalf("%d", n)
	}
}

func TestWindowDistinct(t *testing.T) {
	w := newWindow(t, WindowConfig{Span: time.Minute, Distinct: 10})
	for i := range 30 {
		add(t, w, t0, "a", fmt.Sprintf("u%02d", i%20))
	}
	n, capped := w.Distinct("a")
	if n != 10 || !capped {
		t.Fatalf("%d %v", n, capped)
	}
	w2 := newWindow(t, WindowConfig{Span: time.Minute, Distinct: 100, Values: true})
	for i := range 300 {
		add(t, w2, t0, "a", fmt.Sprintf("u%02d", i%20))
	}
	if n, capped := w2.Distinct("a"); n != 20 || capped {
		t.Fatalf("%d %v", n, capped)
	}
	if v := w2.Values("a"); len(v) != 20 || v[0] != "u00" || v[19] != "u19" {
		t.Fatalf("%v", v)
	}
}

func TestWindowMaxKeys(t *testing.T) {
	w := newWindow(t, WindowConfig{Span: time.Minute, Limits: Limits{MaxKeys: 3}})
	for i := range 5 {
		add(t, w, t0+int64(i)*sec, fmt.Sprint(i), "")
	}
	st := w.Stats()
	if st.Keys != 3 || st.Evictions != 2 || st.Expirations != 0 {
		t.Fatalf("%+v", st)
	}
	// The evicted keys are reported first, oldest first.
	if got := drain(w, t0+5*sec); !slices.Equal(got, []string{"0=1", "1=1"}) {
		t.Fatalf("%v", got)
	}
	// At the cap, a key whose window passed counts as expired.
	add(t, w, t0+70*sec, "new", "")
	if st := w.Stats(); st.Expirations != 1 || st.Evictions != 2 {
		t.Fatalf("%+v", st)
	}
}

func TestWindowMaxBytes(t *testing.T) {
	limit := int64(20 * (winRecBytes + 8))
	w := newWindow(t, WindowConfig{Span: time.Minute, Limits: Limits{MaxBytes: limit}})
	for i := range 100 {
		add(t, w, t0, fmt.Sprintf("key%05d", i), "")
		drain(w, t0)
		if b := w.Stats().Bytes; b > limit {
			t.Fatalf("bytes %d over %d after %d keys", b, limit, i)
		}
	}
	if st := w.Stats(); st.Keys >= 20 || st.Evictions != uint64(100-st.Keys) {
		t.Fatalf("%+v", st)
	}
}

// Hostile keys: too long ones are refused and counted, binary ones work,
// the kept key does not alias the caller's bytes.
func TestWindowHostileKeys(t *testing.T) {
	w := newWindow(t, WindowConfig{Span: time.Minute, Distinct: 4, Values: true, Limits: Limits{MaxKeyBytes: 64}})
	if _, err := w.Add(t0, strings.Repeat("x", 1<<20), "", false); !errors.Is(err, ErrTooLong) {
		t.Fatalf("%v", err)
	}
	add(t, w, t0, "ok", strings.Repeat("v", 65)) // value refused, event counted
	if st := w.Stats(); st.Rejected != 2 || st.Keys != 1 {
		t.Fatalf("%+v", st)
	}
	buf := []byte("\x00\xff\n\"key")
	key := string(buf) // the kind of view a batch hands out
	add(t, w, t0, key, "\x00")
	copy(buf, "XXXXXXX")
	if !w.Has("\x00\xff\n\"key") || w.Total("\x00\xff\n\"key") != 1 {
		t.Fatal("binary key lost or aliased")
	}
}

// A million distinct keys through a window capped at 1,000: the state stays
// at the cap and every key beyond it is counted as evicted.
func TestWindowCardinality(t *testing.T) {
	n := testscale.N(1_000_000, 1_000_000)
	const cap = 1000
	w := newWindow(t, WindowConfig{Span: time.Hour, Distinct: 2, Limits: Limits{MaxKeys: cap}})
	var maxBytes int64
	for i := range n {
		if _, err := w.Add(t0+int64(i), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)+fmt.Sprint(i>>24), "u", true); err != nil {
			t.Fatal(err)
		}
		for {
			if _, _, ok := w.Expired(t0 + int64(i)); !ok {
				break
			}
		}
		maxBytes = max(maxBytes, w.Stats().Bytes)
	}
	st := w.Stats()
	if st.Keys != cap || st.Evictions != uint64(n-cap) {
		t.Fatalf("%+v", st)
	}
	if perKey := maxBytes / cap; perKey > 1024 {
		t.Fatalf("%d bytes per key", perKey)
	}
	t.Logf("%d keys: %+v, peak %d bytes", n, st, maxBytes)
}

func TestWindowSnapshot(t *testing.T) {
	w := newWindow(t, WindowConfig{Span: 30 * time.Second, Distinct: 8, Values: true, Limits: Limits{MaxKeys: 4}})
	add(t, w, t0, "a", "u1")
	add(t, w, t0+sec, "a", "u2")
	add(t, w, t0+2*sec, "b", "")
	for i := range 4 {
		add(t, w, t0+3*sec, fmt.Sprint(i), "") // evicts a and b: they wait for Expired
	}
	add(t, w, t0+4*sec, "3", "\x00bin")
	snap := w.Snapshot(nil)

	r := newWindow(t, WindowConfig{Span: 30 * time.Second, Distinct: 8, Values: true, Limits: Limits{MaxKeys: 4}})
	if err := r.Load(snap); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Snapshot(nil), snap) {
		t.Fatal("round trip differs")
	}
	if got := drain(r, t0+4*sec); !slices.Equal(got, []string{"a=2", "b=1"}) {
		t.Fatalf("%v", got)
	}
	if n := r.Count(t0+30*sec, "0"); n != 1 {
		t.Fatalf("%d", n)
	}
	if v := r.Values("3"); !slices.Equal(v, []string{"\x00bin"}) {
		t.Fatalf("%q", v)
	}
	if got := drain(r, t0+35*sec); !slices.Equal(got, []string{"0=1", "1=1", "2=1", "3=2"}) {
		t.Fatalf("%v", got)
	}

	// Into other parameters: a coarser resolution merges slots, fewer keys
	// evict the oldest.
	o := newWindow(t, WindowConfig{Span: 60 * time.Second, Resolution: 10 * time.Second, Distinct: 1, Values: true, Limits: Limits{MaxKeys: 2}})
	if err := o.Load(snap); err != nil {
		t.Fatal(err)
	}
	if st := o.Stats(); st.Keys != 2 || st.Evictions != 2 {
		t.Fatalf("%+v", st)
	}
	if n, capped := o.Distinct("3"); n != 1 || capped {
		t.Fatalf("%d %v", n, capped)
	}

	for _, bad := range [][]byte{nil, {'W'}, snap[:len(snap)/2], append([]byte{'T'}, snap[1:]...)} {
		if err := newWindow(t, WindowConfig{Span: time.Second}).Load(bad); err == nil {
			t.Errorf("corrupt snapshot %q accepted", bad)
		}
	}
}

type budget struct {
	used, limit int64
}

func (b *budget) Charge(n int64) error {
	if b.used+n > b.limit {
		return errors.New("over budget")
	}
	b.used += n
	return nil
}

func (b *budget) Release(n int64) { b.used -= n }

// Bytes are charged as they grow and released as keys leave; a refused
// charge is an error and is tried again at the next change.
func TestBudget(t *testing.T) {
	b := &budget{limit: 1 << 20}
	w, err := NewWindow(WindowConfig{Span: time.Second, Distinct: 4}, b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := w.Add(t0, fmt.Sprint(i), "v", true); err != nil {
			t.Fatal(err)
		}
	}
	if b.used != w.Stats().Bytes {
		t.Fatalf("charged %d, held %d", b.used, w.Stats().Bytes)
	}
	drain(w, t0+5*sec)
	// What is left are the records kept for reuse.
	if st := w.Stats(); b.used != st.Bytes || st.Keys != 0 || st.Bytes > 100*(winRecBytes+128) {
		t.Fatalf("charged %d, held %+v after expiry", b.used, st)
	}
	b.limit = 10
	if _, err := w.Add(t0, "k", "", false); err == nil {
		t.Fatal("over-budget growth not reported")
	}
	b.limit = 1 << 20
	if _, err := w.Add(t0, "k", "", false); err != nil || b.used != w.Stats().Bytes {
		t.Fatalf("%v: charged %d, held %d", err, b.used, w.Stats().Bytes)
	}
	w.Close()
	if b.used != 0 {
		t.Fatalf("%d left charged", b.used)
	}
}

func TestThrottle(t *testing.T) {
	th, err := NewThrottle(ThrottleConfig{Span: 10 * time.Second, Limit: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	allow := func(now int64, k string) bool {
		ok, _, err := th.Allow(now, k)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	got := []bool{allow(t0, "a"), allow(t0+sec, "a"), allow(t0+2*sec, "a"), allow(t0+9*sec, "a"), allow(t0+5*sec, "b")}
	if !slices.Equal(got, []bool{true, true, false, false, true}) {
		t.Fatalf("%v", got)
	}
	if ev, sup := th.Count("a"); ev != 4 || sup != 2 {
		t.Fatalf("%d %d", ev, sup)
	}
	// The period ends exactly span after its first event.
	if k, _, ok := th.Expired(t0 + 10*sec - 1); ok {
		t.Fatalf("%s expired early", k)
	}
	k, sup, ok := th.Expired(t0 + 10*sec)
	if !ok || k != "a" || sup != 2 {
		t.Fatalf("%q %d %v", k, sup, ok)
	}
	if first, last, ok := th.Times("a"); !ok || first != t0 || last != t0+9*sec {
		t.Fatal("the reported record is not readable")
	}
	if _, _, ok := th.Expired(t0 + 10*sec); ok {
		t.Fatal("b expired early")
	}
	// A new period for b when it comes back after its span, the old one
	// reported.
	if !allow(t0+15*sec, "b") {
		t.Fatal("new period suppressed")
	}
	if k, sup, ok := th.Expired(t0 + 15*sec); !ok || k != "b" || sup != 0 {
		t.Fatalf("%q %d %v", k, sup, ok)
	}
	snap := th.Snapshot(nil)
	r, _ := NewThrottle(ThrottleConfig{Span: 10 * time.Second, Limit: 2}, nil)
	if err := r.Load(snap); err != nil || !slices.Equal(r.Snapshot(nil), snap) {
		t.Fatalf("round trip: %v", err)
	}
	if ev, _ := r.Count("b"); ev != 1 {
		t.Fatal(ev)
	}
}

func TestThrottleCaps(t *testing.T) {
	th, _ := NewThrottle(ThrottleConfig{Span: time.Hour, Limits: Limits{MaxKeys: 100, MaxKeyBytes: 8}}, nil)
	n := testscale.N(1_000_000, 200_000)
	for i := range n {
		if _, _, err := th.Allow(t0+int64(i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if st := th.Stats(); st.Keys != 100 || st.Evictions != uint64(n-100) {
		t.Fatalf("%+v", st)
	}
	if _, _, err := th.Allow(t0, "123456789"); !errors.Is(err, ErrTooLong) || th.Stats().Rejected != 1 {
		t.Fatal(err)
	}
}

func TestTopN(t *testing.T) {
	top, err := NewTopN(TopNConfig{Size: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// a (1,000) and b (500) are heavy hitters among 1,500 rare keys: with
	// 10 counters, every key above 3,000/10 is tracked.
	for i := range 3000 {
		k := fmt.Sprint("rare", i)
		switch i % 3 {
		case 0:
			k = "a"
		case 1:
			if i%2 == 1 {
				k = "b"
			}
		}
		if err := top.Add(k, 1); err != nil {
			t.Fatal(err)
		}
	}
	items := top.Top(2)
	if len(items) != 2 || items[0].Key != "a" || items[1].Key != "b" {
		t.Fatalf("%+v", items)
	}
	// Space-saving never underestimates and bounds the overestimate.
	for _, it := range items {
		true := map[string]float64{"a": 1000, "b": 500}[it.Key]
		if it.Count < true || it.Count-it.Error > true {
			t.Fatalf("%+v (true %v)", it, true)
		}
	}
	if st := top.Stats(); st.Keys != 10 || st.Evictions == 0 {
		t.Fatalf("%+v", st)
	}
	snap := top.Snapshot(nil)
	r, _ := NewTopN(TopNConfig{Size: 2}, nil)
	if err := r.Load(snap); err != nil {
		t.Fatal(err)
	}
	if got := r.Top(0); len(got) != 2 || got[0].Key != "a" || got[1].Key != "b" || got[0].Count != items[0].Count {
		t.Fatalf("%+v", got)
	}
	if err := top.Add("x", -1); err == nil {
		t.Fatal("negative weight accepted")
	}
	top.Reset()
	if top.Stats().Keys != 0 || top.Total() != 0 {
		t.Fatal("reset")
	}
}

func TestTable(t *testing.T) {
	tb, err := NewTable(TableConfig{Limits: Limits{MaxKeys: 3, MaxKeyBytes: 16}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	set := func(k string, v Value) {
		if err := tb.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	set("a", Value{Kind: KindString, Str: "1"})
	set("b", Value{Kind: KindNumber, Num: 2})
	set("c", Value{Kind: KindBool, Bool: true})
	tb.Get("a") // a is now the most recently used
	set("d", Value{Kind: KindNumber, Num: 4})
	if _, ok := tb.Get("b"); ok {
		t.Fatal("the least recently used key survived")
	}
	if v, ok := tb.Get("a"); !ok || v.Str != "1" {
		t.Fatal("a lost")
	}
	if n, err := tb.Incr("d", 2); err != nil || n != 6 {
		t.Fatal(n, err)
	}
	if _, err := tb.Incr("a", 1); err == nil {
		t.Fatal("incr of a string")
	}
	if err := tb.Set("long value", Value{Kind: KindString, Str: strings.Repeat("x", 17)}); !errors.Is(err, ErrTooLong) {
		t.Fatal(err)
	}
	set("c", Value{})
	if tb.Len() != 2 || tb.Stats().Evictions != 1 || tb.Stats().Rejected != 1 {
		t.Fatalf("%+v", tb.Stats())
	}
	snap := tb.Snapshot(nil)
	r, _ := NewTable(TableConfig{}, nil)
	if err := r.Load(snap); err != nil {
		t.Fatal(err)
	}
	var keys []string
	r.Each(func(k string, _ Value) bool { keys = append(keys, k); return true })
	if v, _ := r.Get("d"); !slices.Equal(keys, []string{"a", "d"}) || v.Num != 6 {
		t.Fatalf("%v", keys)
	}
}

func TestTableMaxBytes(t *testing.T) {
	tb, _ := NewTable(TableConfig{Limits: Limits{MaxBytes: 100 * (tableRecBytes + 20)}}, nil)
	n := testscale.N(1_000_000, 100_000)
	for i := range n {
		if err := tb.Set(fmt.Sprint(i), Value{Kind: KindString, Str: "0123456789"}); err != nil {
			t.Fatal(err)
		}
	}
	st := tb.Stats()
	if st.Bytes > 100*(tableRecBytes+20) || st.Keys < 90 || st.Evictions != uint64(n-st.Keys) {
		t.Fatalf("%+v", st)
	}
}

// Without Values, distinct values are counted by their hashes: two inline,
// then a slice, then an index; the count survives a snapshot.
func TestWindowDistinctHashes(t *testing.T) {
	w := newWindow(t, WindowConfig{Span: time.Minute, Distinct: 1000})
	for i := range 3000 {
		add(t, w, t0, "a", fmt.Sprint("user", i%500))
		add(t, w, t0, "b", fmt.Sprint("user", i%2))
	}
	if n, capped := w.Distinct("a"); n != 500 || capped {
		t.Fatalf("a: %d %v", n, capped)
	}
	if n, capped := w.Distinct("b"); n != 2 || capped {
		t.Fatalf("b: %d %v", n, capped)
	}
	if w.Values("a") != nil {
		t.Fatal("values kept")
	}
	r := newWindow(t, WindowConfig{Span: time.Minute, Distinct: 100})
	if err := r.Load(w.Snapshot(nil)); err != nil {
		t.Fatal(err)
	}
	if n, capped := r.Distinct("a"); n != 100 || !capped {
		t.Fatalf("restored a: %d %v", n, capped)
	}
	if n, _ := r.Distinct("b"); n != 2 {
		t.Fatalf("restored b: %d", n)
	}
}
