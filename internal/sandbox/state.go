package sandbox

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"weak"

	lua "github.com/Shopify/go-lua"

	"github.com/ternlog/tern/internal/keyed"
	"github.com/ternlog/tern/pipeline/config"
)

// Go-backed state for scripts (internal/keyed), as modules:
//
//	local window   = require "tern.window"    -- sliding-window counts per key, with distinct values
//	local throttle = require "tern.throttle"  -- the first n events per key and period pass
//	local topn     = require "tern.topn"      -- heavy hitters (space-saving)
//	local lru      = require "tern.lru"       -- a bounded table, least recently used evicted
//
// Each new() returns a userdata whose methods run in Go. Time is the
// sandbox's clock (SetClock: the message's timestamp in process_message, the
// timer's in timer_event). The bytes they hold count against memory_limit;
// their state is saved with the script's globals (preserve_data) when it sits
// in a global, and merged into the object of the same kind and name the
// script's top level creates at the next start.

// maxStates caps the primitives one State may create: a script that makes
// one per message fails instead of growing without bound.
const maxStates = 256

type stateObj struct {
	kind, name string
	what       string // "<kind> <name>", for errors
	prim       statePrim
	self       stateHolder // the userdata's value (for pushState)
}

// holderBytes is what a state costs beside its primitive's bytes: the
// holder, its userdata and metatable slot.
const holderBytes = 160

// MemSize is the state's memory for the sandbox's accounting (Sized).
func (o *stateObj) MemSize() int64 { return holderBytes + o.prim.Stats().Bytes }

type statePrim interface {
	Stats() keyed.Stats
	Snapshot([]byte) []byte
	Load([]byte) error
	Close()
}

type windowObj struct {
	stateObj
	w *keyed.Window
}

type throttleObj struct {
	stateObj
	t *keyed.Throttle
}

type topnObj struct {
	stateObj
	t *keyed.TopN
}

type lruObj struct {
	stateObj
	t *keyed.Table
}

func (o *stateObj) base() *stateObj { return o }

type stateHolder interface{ base() *stateObj }

// SetClock sets the time (ns) the primitives use: plugins point it at the
// current message's timestamp or the timer's time. Without it they use the
// sandbox's Now.
func (s *Sandbox) SetClock(clock func() int64) { s.clock = clock }

func (s *Sandbox) now() int64 {
	if s.clock != nil {
		return s.clock()
	}
	return s.cfg.Now().UnixNano()
}

// StateInfo describes one primitive a script created.
type StateInfo struct {
	Kind, Name string
	keyed.Stats
}

// States returns the primitives of the current State the script can still
// reach, in creation order.
func (s *Sandbox) States() []StateInfo {
	live := s.liveStates()
	out := make([]StateInfo, 0, len(live))
	for _, o := range live {
		out = append(out, StateInfo{Kind: o.kind, Name: o.name, Stats: o.prim.Stats()})
	}
	return out
}

// liveStates returns the states not yet collected, dropping the others
// from the list. The list holds them weakly: a state the script dropped
// neither counts against its memory (the sandbox's measurement sees only
// what the script reaches) nor stays alive for the metrics or the
// preserved data.
func (s *Sandbox) liveStates() []*stateObj {
	live := make([]*stateObj, 0, len(s.states))
	kept := s.states[:0]
	for _, p := range s.states {
		if o := p.Value(); o != nil {
			live = append(live, o)
			kept = append(kept, p)
		}
	}
	clear(s.states[len(kept):])
	s.states = kept
	return live
}

// closeStates drops the primitives with the State they belong to.
func (s *Sandbox) closeStates() {
	for _, p := range s.states {
		if o := p.Value(); o != nil {
			o.prim.Close()
		}
	}
	s.states, s.stateSeq = nil, 0
}

// stateBudget charges a primitive's bytes to the script's memory limit.
type stateBudget struct {
	s *Sandbox
	o *stateObj // for the name in errors
}

func (b stateBudget) Charge(n int64) error { return b.s.ChargeMemory(n, b.o.what) }

func (b stateBudget) Release(n int64) { b.s.ReleaseMemory(n) }

// keyedKinds maps the kinds scripts see to keyed.Kind's names.
var keyedKinds = map[string]string{"window": "window", "throttle": "throttle", "topn": "topn", "lru": "table"}

var stateModules = map[string]func(*Sandbox, *lua.State){
	"tern.window":   (*Sandbox).openWindow,
	"tern.throttle": (*Sandbox).openThrottle,
	"tern.topn":     (*Sandbox).openTopN,
	"tern.lru":      (*Sandbox).openLRU,
}

// opts reads the option table of a new() call: keys must be among known.
type opts struct {
	l    *lua.State
	fn   string
	vals map[string]int // option -> stack index of its value
}

func (s *Sandbox) readOpts(l *lua.State, fn string, known ...string) opts {
	o := opts{l: l, fn: fn, vals: map[string]int{}}
	if l.IsNoneOrNil(1) {
		return o
	}
	lua.CheckType(l, 1, lua.TypeTable)
	l.SetTop(1)
	l.PushNil()
	for l.Next(1) {
		k, ok := l.ToValue(-2).(string)
		found := false
		for _, n := range known {
			found = found || n == k
		}
		if !ok || !found {
			key, _ := lua.ToStringMeta(l, -2)
			raise(l, "%s: unknown option '%s' (options: %s)", fn, key, strings.Join(known, ", "))
		}
		// Keep the value on the stack below the key Next needs.
		l.Insert(-2)
		o.vals[k] = l.Top() - 1
	}
	return o
}

func (o opts) err(key, format string, a ...any) {
	raise(o.l, "%s: %s %s", o.fn, key, fmt.Sprintf(format, a...))
}

// raise is lua.Errorf with Go's formatting (go-lua's knows %s, %d of int,
// %f and %c only).
func raise(l *lua.State, format string, a ...any) {
	lua.Errorf(l, "%s", fmt.Sprintf(format, a...))
}

func (o opts) duration(key string, def time.Duration) time.Duration {
	i, ok := o.vals[key]
	if !ok {
		return def
	}
	switch o.l.TypeOf(i) {
	case lua.TypeNumber:
		f, _ := o.l.ToNumber(i)
		if f > 0 && f < 1e9*86400*365 {
			return time.Duration(math.Round(f * 1e9))
		}
	case lua.TypeString:
		str, _ := o.l.ToString(i)
		if d, err := time.ParseDuration(str); err == nil && d > 0 {
			return d
		}
	}
	o.err(key, "must be a positive duration: seconds, or a string such as \"30s\"")
	return 0
}

func (o opts) integer(key string, def, lo, hi int64) int64 {
	i, ok := o.vals[key]
	if !ok {
		return def
	}
	f, isNum := o.l.ToValue(i).(float64)
	if !isNum || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		o.err(key, "must be an integer from %d to %d", lo, hi)
	}
	return int64(f)
}

func (o opts) size(key string, def int64) int64 {
	i, ok := o.vals[key]
	if !ok {
		return def
	}
	switch v := o.l.ToValue(i).(type) {
	case float64:
		if v >= 1 && v == math.Trunc(v) && v < 1<<50 {
			return int64(v)
		}
	case string:
		if n, err := config.ParseSize(v); err == nil && n > 0 {
			return int64(n)
		}
	}
	o.err(key, "must be a size: bytes, or a string such as \"16MiB\"")
	return 0
}

func (o opts) boolean(key string, def bool) bool {
	i, ok := o.vals[key]
	if !ok {
		return def
	}
	v, isBool := o.l.ToValue(i).(bool)
	if !isBool {
		o.err(key, "must be true or false")
	}
	return v
}

func (o opts) str(key, def string) string {
	i, ok := o.vals[key]
	if !ok {
		return def
	}
	v, isStr := o.l.ToValue(i).(string)
	if !isStr || v == "" || len(v) > 64 {
		o.err(key, "must be a string of 1 to 64 bytes")
	}
	return v
}

// limits reads max_keys, max_bytes and max_key_bytes; max_bytes defaults
// to the smaller of its default and half the memory limit (the rest is the
// script's own), so that a full state evicts rather than fails the call.
func (s *Sandbox) limits(o opts) keyed.Limits {
	defBytes := int64(keyed.DefaultMaxBytes)
	if lim := s.cfg.MemoryLimit; lim > 0 {
		defBytes = min(defBytes, lim/2)
	}
	lim := keyed.Limits{
		MaxKeys:     int(o.integer("max_keys", keyed.DefaultMaxKeys, 1, 1<<30)),
		MaxBytes:    o.size("max_bytes", defBytes),
		MaxKeyBytes: int(o.integer("max_key_bytes", keyed.DefaultMaxKeyBytes, 1, 64<<10)),
	}
	if m := s.cfg.MemoryLimit; m > 0 && lim.MaxBytes > m {
		o.err("max_bytes", "(%d) exceeds the script's memory_limit (%d)", lim.MaxBytes, m)
	}
	return lim
}

var limitOpts = []string{"name", "max_keys", "max_bytes", "max_key_bytes"}

// register names a new primitive, checks the caps on their number and
// pushes it.
func (s *Sandbox) register(l *lua.State, o opts, h stateHolder) {
	b := h.base()
	b.self = h
	if len(s.states) >= maxStates && len(s.liveStates()) >= maxStates {
		b.prim.Close()
		raise(l, "%s: more than %d Go-backed states in one script (create them once, at the top level)", o.fn, maxStates)
	}
	s.stateSeq++
	b.name = o.str("name", b.kind+strconv.Itoa(s.stateSeq))
	b.what = b.kind + " " + b.name
	// A state of the same kind and name (one the script dropped, or still
	// holds) leaves the list: the newest is the one exported and preserved.
	if old := s.findState(b.kind, b.name); old != nil {
		s.unlist(old)
	}
	s.states = append(s.states, weak.Make(b))
	pushState(l, h)
}

func (s *Sandbox) unlist(o *stateObj) {
	s.states = slices.DeleteFunc(s.states, func(p weak.Pointer[stateObj]) bool { return p.Value() == o })
}

func (s *Sandbox) findState(kind, name string) *stateObj {
	for _, o := range s.liveStates() {
		if o.kind == kind && o.name == name {
			return o
		}
	}
	return nil
}

// pushState pushes the userdata of h with its kind's metatable.
func pushState(l *lua.State, h stateHolder) {
	l.PushUserData(h)
	lua.SetMetaTableNamed(l, "tern."+h.base().kind)
}

// keyArg reads the key at idx: a string, or a number as Lua prints it.
func keyArg(l *lua.State, idx int) string {
	if v, ok := l.ToValue(idx).(string); ok {
		return v
	}
	if l.TypeOf(idx) != lua.TypeNumber {
		lua.ArgumentError(l, idx, "key must be a string or a number")
	}
	return numberString(l, idx)
}

// stateFailed raises a primitive's error: a refused charge (the budget's
// *Error) is a memory-limit breach of the call.
func (s *Sandbox) stateFailed(l *lua.State, _ string, err error) {
	s.Raise(l, err)
}

// openMethods makes the metatable meta with methods, #x (keys) and
// tostring(x); methods named in iter get the iterator function as upvalue.
func openMethods(l *lua.State, meta string, methods []lua.RegistryFunction, iter lua.Function) {
	lua.NewMetaTable(l, meta)
	l.CreateTable(0, len(methods))
	for _, m := range methods {
		if m.Name == "expired" {
			l.PushGoFunction(iter)
			l.PushGoClosure(m.Function, 1)
		} else {
			l.PushGoFunction(m.Function)
		}
		l.SetField(-2, m.Name)
	}
	l.SetField(-2, "__index")
	l.PushGoFunction(func(l *lua.State) int {
		h, _ := l.ToUserData(1).(stateHolder)
		if h == nil {
			l.PushInteger(0)
			return 1
		}
		l.PushInteger(h.base().prim.Stats().Keys)
		return 1
	})
	l.SetField(-2, "__len")
	l.PushGoFunction(func(l *lua.State) int {
		h, _ := l.ToUserData(1).(stateHolder)
		if h == nil {
			l.PushString(meta)
			return 1
		}
		b := h.base()
		l.PushString(fmt.Sprintf("%s %s (%d keys)", b.kind, b.name, b.prim.Stats().Keys))
		return 1
	})
	l.SetField(-2, "__tostring")
	l.PushBoolean(false)
	l.SetField(-2, "__metatable") // getmetatable() hides the methods' table
	l.Pop(1)
}

func pushStats(l *lua.State, h stateHolder) int {
	st := h.base().prim.Stats()
	l.CreateTable(0, 5)
	for _, f := range []struct {
		k string
		v float64
	}{{"keys", float64(st.Keys)}, {"bytes", float64(st.Bytes)}, {"evictions", float64(st.Evictions)},
		{"expirations", float64(st.Expirations)}, {"rejected", float64(st.Rejected)}} {
		l.PushNumber(f.v)
		l.SetField(-2, f.k)
	}
	return 1
}

// go-lua keeps every value as an interface{}, so pushing a number or a
// string boxes it: an allocation per result. PushLightUserData pushes an
// interface{} as it is, and a float64 or a string in one is a Lua number or
// string: the values below are boxed once. (TestBoxedValues guards this
// go-lua behaviour.)
var smallNumbers = func() (t [1024]any) {
	for i := range t {
		t[i] = float64(i)
	}
	return t
}()

// pushCount pushes n without allocating when it is small.
func pushCount(l *lua.State, n int64) {
	if n >= 0 && n < int64(len(smallNumbers)) {
		l.PushLightUserData(smallNumbers[n])
		return
	}
	l.PushNumber(float64(n))
}

// pushGlobal is l.Global(name) without boxing name anew on every call.
func (s *Sandbox) pushGlobal(l *lua.State, name string) {
	if name != s.lastFn || s.lastBoxed == nil {
		s.lastFn, s.lastBoxed = name, name
	}
	l.PushGlobalTable()
	l.PushLightUserData(s.lastBoxed)
	l.Table(-2)
	l.Remove(-2)
}

func pushNanos(l *lua.State, ns int64, ok bool) {
	if !ok {
		l.PushNil()
		return
	}
	l.PushString(strconv.FormatInt(ns, 10))
}

// --- window -------------------------------------------------------------

const windowMeta = "tern.window"

func (s *Sandbox) openWindow(l *lua.State) {
	openMethods(l, windowMeta, []lua.RegistryFunction{
		{Name: "add", Function: s.windowAdd},
		{Name: "count", Function: s.windowCount},
		{Name: "total", Function: s.windowTotal},
		{Name: "distinct", Function: s.windowDistinct},
		{Name: "values", Function: s.windowValues},
		{Name: "first", Function: s.windowFirst},
		{Name: "last", Function: s.windowLast},
		{Name: "expired", Function: s.windowExpired},
		{Name: "remove", Function: s.windowRemove},
		{Name: "stats", Function: s.windowStats},
	}, s.windowNext)
	lua.NewLibrary(l, []lua.RegistryFunction{{Name: "new", Function: s.windowNew}})
}

func (s *Sandbox) windowNew(l *lua.State) int {
	o := s.readOpts(l, "window.new", append([]string{"span", "resolution", "distinct", "values"}, limitOpts...)...)
	cfg := keyed.WindowConfig{
		Span:       o.duration("span", 0),
		Resolution: o.duration("resolution", 0),
		Distinct:   int(o.integer("distinct", 0, 0, 1<<16)),
		Values:     o.boolean("values", false),
		Limits:     s.limits(o),
	}
	if cfg.Values && cfg.Distinct == 0 {
		o.err("values", "needs distinct (how many values to keep per key)")
	}
	if cfg.Span == 0 {
		o.err("span", "is required")
	}
	h := &windowObj{stateObj: stateObj{kind: "window"}}
	w, err := keyed.NewWindow(cfg, stateBudget{s, &h.stateObj})
	if err != nil {
		raise(l, "window.new: %v", err)
	}
	h.prim, h.w = w, w
	s.register(l, o, h)
	return 1
}

func checkWindow(l *lua.State) *keyed.Window {
	if o, ok := l.ToUserData(1).(*windowObj); ok {
		return o.w
	}
	lua.ArgumentError(l, 1, "window expected (call methods with ':')")
	return nil
}

// windowAdd is w:add(key [, value]) -> events of key within the window, or
// nil when the key is longer than max_key_bytes.
func (s *Sandbox) windowAdd(l *lua.State) int {
	w := checkWindow(l)
	key := keyArg(l, 2)
	var val string
	hasVal := !l.IsNoneOrNil(3)
	if hasVal {
		val = keyArg(l, 3)
	}
	n, err := w.Add(s.now(), key, val, hasVal)
	switch {
	case err == keyed.ErrTooLong:
		l.PushNil()
		return 1
	case err != nil:
		s.stateFailed(l, "window.add", err)
	}
	pushCount(l, n)
	return 1
}

func (s *Sandbox) windowCount(l *lua.State) int {
	w := checkWindow(l)
	pushCount(l, w.Count(s.now(), keyArg(l, 2)))
	return 1
}

func (s *Sandbox) windowTotal(l *lua.State) int {
	w := checkWindow(l)
	pushCount(l, w.Total(keyArg(l, 2)))
	return 1
}

func (s *Sandbox) windowDistinct(l *lua.State) int {
	w := checkWindow(l)
	n, capped := w.Distinct(keyArg(l, 2))
	l.PushInteger(n)
	l.PushBoolean(capped)
	return 2
}

func (s *Sandbox) windowValues(l *lua.State) int {
	w := checkWindow(l)
	if !w.Config().Values {
		raise(l, "window.values: this window counts distinct values without keeping them (create it with values = true)")
	}
	vals := w.Values(keyArg(l, 2))
	l.CreateTable(len(vals), 0)
	for i, v := range vals {
		l.PushString(v)
		l.RawSetInt(-2, i+1)
	}
	return 1
}

func (s *Sandbox) windowFirst(l *lua.State) int {
	first, _, ok := checkWindow(l).Times(keyArg(l, 2))
	pushNanos(l, first, ok)
	return 1
}

func (s *Sandbox) windowLast(l *lua.State) int {
	_, last, ok := checkWindow(l).Times(keyArg(l, 2))
	pushNanos(l, last, ok)
	return 1
}

// windowExpired is w:expired() -> the iterator of `for key, total in w:expired()`.
func (s *Sandbox) windowExpired(l *lua.State) int {
	checkWindow(l)
	l.PushValue(lua.UpValueIndex(1))
	l.PushValue(1)
	return 2
}

func (s *Sandbox) windowNext(l *lua.State) int {
	key, total, ok := checkWindow(l).Expired(s.now())
	if !ok {
		return 0
	}
	l.PushString(key)
	pushCount(l, total)
	return 2
}

func (s *Sandbox) windowRemove(l *lua.State) int {
	checkWindow(l).Remove(keyArg(l, 2))
	return 0
}

func (s *Sandbox) windowStats(l *lua.State) int {
	checkWindow(l)
	return pushStats(l, l.ToUserData(1).(stateHolder))
}

// --- throttle -----------------------------------------------------------

const throttleMeta = "tern.throttle"

func (s *Sandbox) openThrottle(l *lua.State) {
	openMethods(l, throttleMeta, []lua.RegistryFunction{
		{Name: "allow", Function: s.throttleAllow},
		{Name: "count", Function: s.throttleCount},
		{Name: "first", Function: s.throttleFirst},
		{Name: "last", Function: s.throttleLast},
		{Name: "expired", Function: s.throttleExpired},
		{Name: "remove", Function: s.throttleRemove},
		{Name: "stats", Function: s.throttleStats},
	}, s.throttleNext)
	lua.NewLibrary(l, []lua.RegistryFunction{{Name: "new", Function: s.throttleNew}})
}

func (s *Sandbox) throttleNew(l *lua.State) int {
	o := s.readOpts(l, "throttle.new", append([]string{"span", "limit"}, limitOpts...)...)
	cfg := keyed.ThrottleConfig{
		Span:   o.duration("span", 0),
		Limit:  o.integer("limit", 1, 1, 1<<40),
		Limits: s.limits(o),
	}
	if cfg.Span == 0 {
		o.err("span", "is required")
	}
	h := &throttleObj{stateObj: stateObj{kind: "throttle"}}
	t, err := keyed.NewThrottle(cfg, stateBudget{s, &h.stateObj})
	if err != nil {
		raise(l, "throttle.new: %v", err)
	}
	h.prim, h.t = t, t
	s.register(l, o, h)
	return 1
}

func checkThrottle(l *lua.State) *keyed.Throttle {
	if o, ok := l.ToUserData(1).(*throttleObj); ok {
		return o.t
	}
	lua.ArgumentError(l, 1, "throttle expected (call methods with ':')")
	return nil
}

// throttleAllow is t:allow(key) -> passes, events of the period. A key
// longer than max_key_bytes is not tracked and passes.
func (s *Sandbox) throttleAllow(l *lua.State) int {
	t := checkThrottle(l)
	ok, n, err := t.Allow(s.now(), keyArg(l, 2))
	switch {
	case err == keyed.ErrTooLong:
		ok, n = true, 1
	case err != nil:
		s.stateFailed(l, "throttle.allow", err)
	}
	l.PushBoolean(ok)
	pushCount(l, n)
	return 2
}

func (s *Sandbox) throttleCount(l *lua.State) int {
	ev, sup := checkThrottle(l).Count(keyArg(l, 2))
	pushCount(l, ev)
	pushCount(l, sup)
	return 2
}

func (s *Sandbox) throttleFirst(l *lua.State) int {
	first, _, ok := checkThrottle(l).Times(keyArg(l, 2))
	pushNanos(l, first, ok)
	return 1
}

func (s *Sandbox) throttleLast(l *lua.State) int {
	_, last, ok := checkThrottle(l).Times(keyArg(l, 2))
	pushNanos(l, last, ok)
	return 1
}

func (s *Sandbox) throttleExpired(l *lua.State) int {
	checkThrottle(l)
	l.PushValue(lua.UpValueIndex(1))
	l.PushValue(1)
	return 2
}

func (s *Sandbox) throttleNext(l *lua.State) int {
	key, sup, ok := checkThrottle(l).Expired(s.now())
	if !ok {
		return 0
	}
	l.PushString(key)
	pushCount(l, sup)
	return 2
}

func (s *Sandbox) throttleRemove(l *lua.State) int {
	checkThrottle(l).Remove(keyArg(l, 2))
	return 0
}

func (s *Sandbox) throttleStats(l *lua.State) int {
	checkThrottle(l)
	return pushStats(l, l.ToUserData(1).(stateHolder))
}

// --- topn ---------------------------------------------------------------

const topnMeta = "tern.topn"

func (s *Sandbox) openTopN(l *lua.State) {
	openMethods(l, topnMeta, []lua.RegistryFunction{
		{Name: "add", Function: s.topnAdd},
		{Name: "count", Function: s.topnCount},
		{Name: "top", Function: s.topnTop},
		{Name: "total", Function: s.topnTotal},
		{Name: "reset", Function: s.topnReset},
		{Name: "stats", Function: s.topnStats},
	}, nil)
	lua.NewLibrary(l, []lua.RegistryFunction{{Name: "new", Function: s.topnNew}})
}

func (s *Sandbox) topnNew(l *lua.State) int {
	o := s.readOpts(l, "topn.new", append([]string{"size"}, limitOpts...)...)
	cfg := keyed.TopNConfig{Size: int(o.integer("size", 0, 1, 1<<20)), Limits: s.limits(o)}
	if cfg.Size == 0 {
		o.err("size", "is required")
	}
	h := &topnObj{stateObj: stateObj{kind: "topn"}}
	t, err := keyed.NewTopN(cfg, stateBudget{s, &h.stateObj})
	if err != nil {
		raise(l, "topn.new: %v", err)
	}
	h.prim, h.t = t, t
	s.register(l, o, h)
	return 1
}

func checkTopN(l *lua.State) *keyed.TopN {
	if o, ok := l.ToUserData(1).(*topnObj); ok {
		return o.t
	}
	lua.ArgumentError(l, 1, "topn expected (call methods with ':')")
	return nil
}

// topnAdd is top:add(key [, weight]).
func (s *Sandbox) topnAdd(l *lua.State) int {
	t := checkTopN(l)
	key := keyArg(l, 2)
	w := lua.OptNumber(l, 3, 1)
	switch err := t.Add(key, w); {
	case err == nil, err == keyed.ErrTooLong:
	case !(w > 0) || math.IsInf(w, 1):
		lua.ArgumentError(l, 3, "weight must be a positive number")
	default:
		s.stateFailed(l, "topn.add", err)
	}
	return 0
}

func (s *Sandbox) topnCount(l *lua.State) int {
	c, e, ok := checkTopN(l).Count(keyArg(l, 2))
	if !ok {
		l.PushNil()
		return 1
	}
	l.PushNumber(c)
	l.PushNumber(e)
	return 2
}

// topnTop is top:top([n]) -> {{key=…, count=…, error=…}, …}, largest first.
func (s *Sandbox) topnTop(l *lua.State) int {
	items := checkTopN(l).Top(lua.OptInteger(l, 2, 0))
	l.CreateTable(len(items), 0)
	for i, it := range items {
		l.CreateTable(0, 3)
		l.PushString(it.Key)
		l.SetField(-2, "key")
		l.PushNumber(it.Count)
		l.SetField(-2, "count")
		l.PushNumber(it.Error)
		l.SetField(-2, "error")
		l.RawSetInt(-2, i+1)
	}
	return 1
}

func (s *Sandbox) topnTotal(l *lua.State) int {
	l.PushNumber(checkTopN(l).Total())
	return 1
}

func (s *Sandbox) topnReset(l *lua.State) int {
	checkTopN(l).Reset()
	return 0
}

func (s *Sandbox) topnStats(l *lua.State) int {
	checkTopN(l)
	return pushStats(l, l.ToUserData(1).(stateHolder))
}

// --- lru ----------------------------------------------------------------

const lruMeta = "tern.lru"

func (s *Sandbox) openLRU(l *lua.State) {
	openMethods(l, lruMeta, []lua.RegistryFunction{
		{Name: "get", Function: s.lruGet},
		{Name: "set", Function: s.lruSet},
		{Name: "incr", Function: s.lruIncr},
		{Name: "remove", Function: s.lruRemove},
		{Name: "stats", Function: s.lruStats},
	}, nil)
	lua.NewLibrary(l, []lua.RegistryFunction{{Name: "new", Function: s.lruNew}})
}

func (s *Sandbox) lruNew(l *lua.State) int {
	o := s.readOpts(l, "lru.new", limitOpts...)
	h := &lruObj{stateObj: stateObj{kind: "lru"}}
	t, err := keyed.NewTable(keyed.TableConfig{Limits: s.limits(o)}, stateBudget{s, &h.stateObj})
	if err != nil {
		raise(l, "lru.new: %v", err)
	}
	h.prim, h.t = t, t
	s.register(l, o, h)
	return 1
}

func checkLRU(l *lua.State) *keyed.Table {
	if o, ok := l.ToUserData(1).(*lruObj); ok {
		return o.t
	}
	lua.ArgumentError(l, 1, "lru expected (call methods with ':')")
	return nil
}

func pushScalar(l *lua.State, v keyed.Value) {
	switch v.Kind {
	case keyed.KindNumber:
		l.PushNumber(v.Num)
	case keyed.KindString:
		l.PushString(v.Str)
	case keyed.KindBool:
		l.PushBoolean(v.Bool)
	default:
		l.PushNil()
	}
}

func (s *Sandbox) lruGet(l *lua.State) int {
	v, _ := checkLRU(l).Get(keyArg(l, 2))
	pushScalar(l, v)
	return 1
}

// lruSet is t:set(key, value): a string, number or boolean; nil removes
// the key. It returns false when the key or the string is longer than
// max_key_bytes (nothing is stored).
func (s *Sandbox) lruSet(l *lua.State) int {
	t := checkLRU(l)
	key := keyArg(l, 2)
	var v keyed.Value
	switch l.TypeOf(3) {
	case lua.TypeNil, lua.TypeNone:
	case lua.TypeNumber:
		f, _ := l.ToNumber(3)
		v = keyed.Value{Kind: keyed.KindNumber, Num: f}
	case lua.TypeString:
		str, _ := l.ToString(3)
		v = keyed.Value{Kind: keyed.KindString, Str: str}
	case lua.TypeBoolean:
		v = keyed.Value{Kind: keyed.KindBool, Bool: l.ToBoolean(3)}
	default:
		lua.ArgumentError(l, 3, "string, number, boolean or nil expected, got "+lua.TypeNameOf(l, 3))
	}
	switch err := t.Set(key, v); {
	case err == keyed.ErrTooLong:
		l.PushBoolean(false)
		return 1
	case err != nil:
		s.stateFailed(l, "lru.set", err)
	}
	l.PushBoolean(true)
	return 1
}

// lruIncr is t:incr(key [, n]) -> the new number (nil when the key is too
// long).
func (s *Sandbox) lruIncr(l *lua.State) int {
	t := checkLRU(l)
	key := keyArg(l, 2)
	d := lua.OptNumber(l, 3, 1)
	n, err := t.Incr(key, d)
	switch {
	case err == keyed.ErrTooLong:
		l.PushNil()
		return 1
	case err == keyed.ErrNotNumber:
		raise(l, "lru.incr: the value of '%s' is not a number", key)
	case err != nil:
		s.stateFailed(l, "lru.incr", err)
	}
	l.PushNumber(n)
	return 1
}

func (s *Sandbox) lruRemove(l *lua.State) int {
	checkLRU(l).Delete(keyArg(l, 2))
	return 0
}

func (s *Sandbox) lruStats(l *lua.State) int {
	checkLRU(l)
	return pushStats(l, l.ToUserData(1).(stateHolder))
}

var (
	_ Sized = (*windowObj)(nil)
	_ Sized = (*throttleObj)(nil)
	_ Sized = (*topnObj)(nil)
	_ Sized = (*lruObj)(nil)
)
