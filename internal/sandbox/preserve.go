package sandbox

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"weak"

	lua "github.com/Shopify/go-lua"

	"github.com/ternlog/tern/internal/keyed"
)

// Heka's preserve_data: the script's global variables (numbers, strings,
// booleans and tables of them, shared and cyclic tables included) are
// written as a Lua chunk on a clean stop and run again after the script's
// top level at the next start. Functions and the sandbox's own globals are
// not kept. A global _PRESERVATION_VERSION that differs from the saved one
// discards the saved state.
//
// Beside the globals the chunk keeps every Go-backed state the script
// created (state.go), globals or not: each is merged into the state of the
// same kind and name the new top level created (so changed parameters take
// effect), or rebuilt from its saved parameters. The chunk receives the
// restore function as R.state in its argument R.

const (
	preserveHeader  = "-- tern preserved globals v1 version="
	maxPreserveSize = 64 << 20
	// restoring runs outside the per-call budget, but not forever
	restoreDeadline = 10 * time.Second
)

// SnapshotBuiltins records the globals that exist before the script runs
// (libraries and the plugin's API), so SaveGlobals leaves them out. Call it
// at the end of setup.
func (s *Sandbox) SnapshotBuiltins() {
	l := s.l
	s.builtins = map[string]bool{}
	l.PushGlobalTable()
	l.PushNil()
	for l.Next(-2) {
		if k, ok := l.ToString(-2); ok && l.TypeOf(-2) == lua.TypeString {
			s.builtins[k] = true
		}
		l.Pop(1)
	}
	l.Pop(1)
}

func (s *Sandbox) preservationVersion() string {
	l := s.l
	l.Global("_PRESERVATION_VERSION")
	defer l.Pop(1)
	switch l.TypeOf(-1) {
	case lua.TypeNumber:
		return numberString(l, -1)
	case lua.TypeString:
		v, _ := l.ToString(-1)
		return strconv.Quote(v)
	}
	return ""
}

// SaveGlobals writes the script's globals to path (atomically).
func (s *Sandbox) SaveGlobals(path string) error {
	if s.l == nil || s.broken {
		return errors.New("no usable Lua state to save")
	}
	var out strings.Builder
	err := s.protect(func() error {
		w := &serializer{sb: s, l: s.l, ids: map[any]int{}, out: &out}
		out.WriteString(preserveHeader + strings.ReplaceAll(s.preservationVersion(), "\n", " ") + "\n")
		out.WriteString("local R = ...\nlocal T = {}\nlocal S = {}\n")
		w.states = s.liveStates()
		for i, b := range w.states {
			snap := base64.StdEncoding.EncodeToString(b.prim.Snapshot(nil))
			fmt.Fprintf(&out, "S[%d] = R.state(%s, %s, %q)\n", i+1, quoteLua(b.kind), quoteLua(b.name), snap)
			if out.Len() > maxPreserveSize {
				return fmt.Errorf("preserved data larger than %d bytes", maxPreserveSize)
			}
		}
		l := s.l
		l.PushGlobalTable()
		var names []string
		l.PushNil()
		for l.Next(-2) {
			if l.TypeOf(-2) == lua.TypeString {
				k, _ := l.ToString(-2)
				if !s.builtins[k] && k != "_PRESERVATION_VERSION" && w.storable(-1) {
					names = append(names, k)
				}
			}
			l.Pop(1)
		}
		sort.Strings(names)
		for _, k := range names {
			l.Field(-1, k)
			v := w.value(-1)
			l.Pop(1)
			fmt.Fprintf(&out, "_G[%s] = %s\n", quoteLua(k), v)
			if out.Len() > maxPreserveSize {
				return fmt.Errorf("preserved data larger than %d bytes", maxPreserveSize)
			}
		}
		l.Pop(1)
		return nil
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(out.String()), 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// RestoreGlobals runs the chunk SaveGlobals wrote, unless the script's
// _PRESERVATION_VERSION differs from the saved one. A missing file is not
// an error. It reports whether the data was restored.
func (s *Sandbox) RestoreGlobals(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	header, err := bufio.NewReader(f).ReadString('\n')
	f.Close()
	if err != nil || !strings.HasPrefix(header, preserveHeader) {
		return false, fmt.Errorf("%s: not a preserved-data file", path)
	}
	if strings.TrimSuffix(strings.TrimPrefix(header, preserveHeader), "\n") != s.preservationVersion() {
		s.cfg.Logger.Info("lua: _PRESERVATION_VERSION changed; preserved data discarded", "file", path)
		return false, nil
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	if len(src) > maxPreserveSize {
		return false, fmt.Errorf("%s: larger than %d bytes", path, maxPreserveSize)
	}
	l := s.l
	err = s.protect(func() error {
		if err := lua.LoadBuffer(l, string(src), "@"+path, "t"); err != nil {
			return &Error{Kind: KindLoad, Msg: loadMessage(l, err)}
		}
		lua.NewLibrary(l, []lua.RegistryFunction{{Name: "state", Function: s.restoreState}})
		s.reset()
		s.limit = -1
		s.deadline = time.Now().Add(restoreDeadline)
		return s.pcall(1, 0)
	})
	return err == nil, err
}

// restoreState is R.state(kind, name, base64 snapshot): the state of that
// kind and name the top level created, with the snapshot merged in, or a
// new one built from the snapshot's parameters.
func (s *Sandbox) restoreState(l *lua.State) int {
	kind, name := lua.CheckString(l, 1), lua.CheckString(l, 2)
	snap, err := base64.StdEncoding.DecodeString(lua.CheckString(l, 3))
	if err != nil || keyed.Kind(snap) != keyedKinds[kind] {
		raise(l, "preserved %s %s: not a %s snapshot", kind, name, kind)
	}
	o := s.findState(kind, name)
	if o == nil {
		open := stateModules["tern."+kind]
		open(s, l) // the methods' metatable
		l.Pop(1)
		h, err := s.stateFromSnapshot(kind, name, snap)
		if err != nil {
			raise(l, "preserved %s %s: %v", kind, name, err)
		}
		if len(s.liveStates()) >= maxStates {
			h.base().prim.Close()
			raise(l, "preserved %s %s: more than %d Go-backed states", kind, name, maxStates)
		}
		o = h.base()
		o.self = h
		s.states = append(s.states, weak.Make(o))
	}
	if err := o.prim.Load(snap); err != nil {
		s.Raise(l, fmt.Errorf("preserved %s %s: %w", kind, name, err))
	}
	pushState(l, o.self)
	return 1
}

// stateFromSnapshot builds an empty state with a snapshot's parameters,
// its byte cap held to the memory limit.
func (s *Sandbox) stateFromSnapshot(kind, name string, snap []byte) (stateHolder, error) {
	clamp := func(l *keyed.Limits) {
		if m := s.cfg.MemoryLimit; m > 0 && l.MaxBytes > m/2 {
			l.MaxBytes = m / 2
		}
	}
	b := stateObj{kind: kind, name: name, what: kind + " " + name}
	switch kind {
	case "window":
		cfg, err := keyed.WindowConfigOf(snap)
		if err != nil {
			return nil, err
		}
		clamp(&cfg.Limits)
		h := &windowObj{stateObj: b}
		if h.w, err = keyed.NewWindow(cfg, stateBudget{s, &h.stateObj}); err != nil {
			return nil, err
		}
		h.prim = h.w
		return h, nil
	case "throttle":
		cfg, err := keyed.ThrottleConfigOf(snap)
		if err != nil {
			return nil, err
		}
		clamp(&cfg.Limits)
		h := &throttleObj{stateObj: b}
		if h.t, err = keyed.NewThrottle(cfg, stateBudget{s, &h.stateObj}); err != nil {
			return nil, err
		}
		h.prim = h.t
		return h, nil
	case "topn":
		cfg, err := keyed.TopNConfigOf(snap)
		if err != nil {
			return nil, err
		}
		clamp(&cfg.Limits)
		h := &topnObj{stateObj: b}
		if h.t, err = keyed.NewTopN(cfg, stateBudget{s, &h.stateObj}); err != nil {
			return nil, err
		}
		h.prim = h.t
		return h, nil
	case "lru":
		cfg, err := keyed.TableConfigOf(snap)
		if err != nil {
			return nil, err
		}
		clamp(&cfg.Limits)
		h := &lruObj{stateObj: b}
		if h.t, err = keyed.NewTable(cfg, stateBudget{s, &h.stateObj}); err != nil {
			return nil, err
		}
		h.prim = h.t
		return h, nil
	}
	return nil, fmt.Errorf("unknown kind")
}

type serializer struct {
	sb     *Sandbox
	states []*stateObj
	l      *lua.State
	ids    map[any]int
	out    *strings.Builder
	next   int
}

func (w *serializer) storable(idx int) bool {
	switch w.l.TypeOf(idx) {
	case lua.TypeNumber, lua.TypeString, lua.TypeBoolean, lua.TypeTable:
		return true
	case lua.TypeUserData:
		return w.stateIndex(idx) > 0
	}
	return false
}

// stateIndex returns the 1-based index in S of the Go-backed state at idx
// (0 if it is none of the script's).
func (w *serializer) stateIndex(idx int) int {
	h, ok := w.l.ToUserData(idx).(stateHolder)
	if !ok {
		return 0
	}
	for i, x := range w.states {
		if x == h.base() {
			return i + 1
		}
	}
	return 0
}

// value returns the Lua expression for the value at idx, emitting the
// statements that build tables first.
func (w *serializer) value(idx int) string {
	l := w.l
	idx = l.AbsIndex(idx)
	switch l.TypeOf(idx) {
	case lua.TypeNumber:
		f, _ := l.ToNumber(idx)
		return luaNumber(f)
	case lua.TypeString:
		str, _ := l.ToString(idx)
		return quoteLua(str)
	case lua.TypeBoolean:
		return strconv.FormatBool(l.ToBoolean(idx))
	case lua.TypeTable:
		ptr := l.ToValue(idx)
		if id, ok := w.ids[ptr]; ok {
			return "T[" + strconv.Itoa(id) + "]"
		}
		w.next++
		id := w.next
		w.ids[ptr] = id
		ref := "T[" + strconv.Itoa(id) + "]"
		fmt.Fprintf(w.out, "%s = {}\n", ref)
		type kv struct{ k, v string }
		var entries []kv
		l.PushNil()
		for l.Next(idx) {
			if w.storable(-2) && w.storable(-1) {
				k := w.value(-2)
				v := w.value(-1)
				entries = append(entries, kv{k, v})
			}
			l.Pop(1)
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].k < entries[j].k })
		for _, e := range entries {
			fmt.Fprintf(w.out, "%s[%s] = %s\n", ref, e.k, e.v)
		}
		return ref
	case lua.TypeUserData:
		if i := w.stateIndex(idx); i > 0 {
			return "S[" + strconv.Itoa(i) + "]"
		}
	}
	return "nil"
}

func luaNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "(0/0)"
	case math.IsInf(f, 1):
		return "(1/0)"
	case math.IsInf(f, -1):
		return "(-1/0)"
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}

// quoteLua returns s as a Lua string literal that reads back byte for byte.
func quoteLua(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString("\\n")
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
