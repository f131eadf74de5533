// Package sandbox runs untrusted Lua scripts (github.com/Shopify/go-lua)
// inside a router that must never stop: one Lua State per instance, a
// curated library, and limits on CPU, time and memory that go-lua does not
// provide by itself. The Lua filter and the Lua decoder both build on it; it
// imports no plugin.
//
// What a script gets: the base library without load, loadstring, dofile,
// loadfile, collectgarbage and xpcall (pcall is a wrapper that cannot
// swallow a limit), print going to the structured log, string (with Lua 5.x
// patterns implemented here, bounded), table, math, bit32, a require
// confined to one module directory (Lua source only), re (RE2), json, and
// os.time/os.date/os.clock. Scripts are loaded as text only: binary chunks
// are refused.
//
// Limits (see Config): per call into the script, an instruction budget and a
// wall-clock deadline enforced by the count hook, which switches to a count of
// one once tripped so nested pcall loops cannot outrun it; a cap on every
// string a library function builds (string.rep, table.concat, string.format,
// gsub, json.encode, …) and a scan of the running frame's registers for
// oversized strings (the `..` operator is a VM instruction no library wrapper
// sees). Across calls, a bound on the memory the script holds (memory.go):
// library functions charge what they will allocate before they do, the hook
// watches the process's allocation counter for what VM instructions
// allocate, and the State is measured (walk.go) as often as that growth
// makes it due; a State found over its limit is dropped. A Go panic inside
// go-lua or a callback poisons the State: the next call rebuilds it from
// the script.
package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"time"
	"weak"

	lua "github.com/Shopify/go-lua"
)

// Defaults of Config.
const (
	DefaultInstructionLimit = 1_000_000
	DefaultDeadline         = 50 * time.Millisecond
	DefaultStringLimit      = 1 << 20
	DefaultMemoryLimit      = 64 << 20
	// hookEvery is how many VM instructions pass between two runs of the
	// count hook. Small enough that `s = s..s` cannot double a string more
	// than a few times between two looks at the registers.
	hookEvery = 16
	// heapEvery is how many hook runs pass between two looks at the
	// process's allocation counter (about 0.4 µs each; memory.go).
	heapEvery = 64
	// minDeadlineWork is the work a call must have done before its
	// deadline applies: a short call that the scheduler delayed on a
	// loaded machine is not a runaway script.
	minDeadlineWork = 16 << 10
)

// Config sets the limits and the environment of a sandbox.
type Config struct {
	// Name is used in chunk names, errors and logs ("filters.ssh").
	Name string
	// InstructionLimit is the VM instruction budget of one call; 0 means
	// DefaultInstructionLimit, negative means unlimited.
	InstructionLimit int
	// Deadline is the wall-clock budget of one call; 0 means DefaultDeadline.
	// It applies once the call has done some work (minDeadlineWork
	// instructions), so scheduling delays alone never fail a call.
	Deadline time.Duration
	// StringLimit caps the length of one string built by a library function
	// or seen in the running frame; 0 means DefaultStringLimit.
	StringLimit int
	// MemoryLimit caps the memory the script holds: its State (globals,
	// registry, stack, upvalues: everything it can reach) and the Go values
	// it holds as userdata that are Sized, as memory.go measures them; 0
	// means DefaultMemoryLimit, negative disables the accounting.
	MemoryLimit int64
	// ModuleDir is where require looks for <name>.lua; "" disables require.
	ModuleDir string
	// Logger receives print and the log module; nil discards.
	Logger *slog.Logger
	// Now is the clock of os.time and os.date; nil is time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.InstructionLimit == 0 {
		c.InstructionLimit = DefaultInstructionLimit
	}
	if c.Deadline == 0 {
		c.Deadline = DefaultDeadline
	}
	if c.StringLimit <= 0 {
		c.StringLimit = DefaultStringLimit
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Error kinds, as reported by (*Error).Kind and counted in metrics.
const (
	KindLoad        = "load"              // the script or a module did not compile or its top level failed
	KindInstruction = "instruction_limit" // the instruction budget ran out
	KindDeadline    = "deadline"          // the wall-clock budget ran out
	KindMemory      = "memory_limit"      // a string or the memory the script holds grew too much
	KindRuntime     = "runtime"           // a Lua error raised by the script
	KindPanic       = "panic"             // a Go panic inside go-lua or a callback
	KindReturn      = "return"            // the script returned a failure code
)

// Error is a failed call into a script.
type Error struct {
	Kind string
	Msg  string
	// Fatal is set when the State cannot be used any more and was
	// dropped (it held more than its memory limit after the call): the
	// next call builds a fresh one from the script, with fresh globals.
	Fatal bool
}

func (e *Error) Error() string { return e.Kind + ": " + e.Msg }

// KindOf returns the kind of a sandbox error, or "" for other errors.
func KindOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// Sandbox is one Lua State with its limits. It is not safe for concurrent
// use: the plugins call it from one goroutine (filters) or under a lock
// (decoders).
type Sandbox struct {
	cfg   Config
	name  string // chunk name, "@<file>"
	src   string
	setup func(*Sandbox) error

	l      *lua.State
	broken bool // a Go panic poisoned l; rebuild before the next call
	start  time.Time

	// limiter state, reset by every call
	used     int
	limit    int
	deadline time.Time
	hooks    int
	tripped  *Error
	hookFn   lua.Hook
	hookOn   bool // the count hook runs every hookEvery instructions on s.l
	// matchSteps are pattern-matching steps not yet charged
	matchSteps int
	ms         *matchState
	modules    map[string]bool // modules being loaded (require cycles)

	mem memState // memory accounting (memory.go)
	// droppedBig: a State over its memory limit was dropped since
	droppedBig bool
	owned      [ownCacheLen]string // copies of message strings (message.go)

	reCache      map[string]*regexp.Regexp
	builtins     map[string]bool
	logLevel     int
	moduleLevels map[string]int

	// Go-backed state (state.go)
	states   []weak.Pointer[stateObj]
	stateSeq int
	clock    func() int64
	// the last function name Call looked up, boxed once (see pushGlobal)
	lastFn    string
	lastBoxed any
}

// New prepares a sandbox for the script src; chunkName names it in error
// messages (usually the file name). setup runs on every fresh State, after
// the libraries are open and before the script's top level runs: plugins
// register their API there. New does no I/O and does not compile the
// script: the first call does (see Load).
func New(cfg Config, chunkName, src string, setup func(*Sandbox) error) *Sandbox {
	return &Sandbox{cfg: cfg.withDefaults(), name: "@" + chunkName, src: src, setup: setup}
}

// Config returns the effective configuration.
func (s *Sandbox) Config() Config { return s.cfg }

// State returns the current Lua State (nil before Load). Callbacks
// registered in setup receive it as their argument; plugins use it between
// calls only to read results.
func (s *Sandbox) State() *lua.State { return s.l }

// Loaded reports whether a usable State exists.
func (s *Sandbox) Loaded() bool { return s.l != nil && !s.broken }

// Load builds a fresh State if there is none or the last one was poisoned:
// it opens the libraries, runs setup and the script's top level under the
// limits. It returns whether a new State was built.
func (s *Sandbox) Load() (fresh bool, err error) {
	if s.l != nil && !s.broken {
		return false, nil
	}
	s.l, s.broken = nil, false
	s.closeStates()
	if s.memOn() {
		if _, err := goLuaLayout(); err != nil {
			return true, &Error{Kind: KindLoad, Msg: err.Error()}
		}
	}
	l := lua.NewState()
	s.start = time.Now()
	s.modules = map[string]bool{}
	s.l = l
	s.hookOn = false
	s.mem = memState{w: s.mem.w, sample: s.mem.sample}
	err = s.protect(func() error {
		if s.memOn() {
			s.measure() // go-lua's own libraries: the first debt is due at minStep
		}
		s.openLibraries(l)
		if s.setup != nil {
			if err := s.setup(s); err != nil {
				return &Error{Kind: KindLoad, Msg: err.Error()}
			}
		}
		if err := lua.LoadBuffer(l, s.src, s.name, "t"); err != nil {
			return &Error{Kind: KindLoad, Msg: loadMessage(l, err)}
		}
		s.reset()
		if err := s.pcall(0, 0); err != nil {
			return err
		}
		if s.memOn() {
			s.measure()
			if s.mem.size > s.cfg.MemoryLimit {
				return s.memoryError("the script's top level")
			}
		}
		return nil
	})
	if err != nil {
		if KindOf(err) != KindPanic {
			var e *Error
			if errors.As(err, &e) && e.Kind != KindLoad {
				err = &Error{Kind: KindLoad, Msg: e.Error()}
			}
		}
		s.l = nil
		return true, err
	}
	return true, nil
}

// loadMessage returns the detailed compile error go-lua leaves on the stack.
func loadMessage(l *lua.State, err error) string {
	if msg, ok := l.ToString(-1); ok && msg != "" {
		l.Pop(1)
		return msg
	}
	return err.Error()
}

// Call runs the global function fn with the arguments push leaves on the
// stack (push returns their count) and hands its nres results to read
// (stack indexes -nres..-1). A missing function is an *Error of kind
// KindRuntime. Any Go panic is recovered and poisons the State.
func (s *Sandbox) Call(fn string, push func(l *lua.State) int, nres int, read func(l *lua.State) error) (err error) {
	if _, err := s.Load(); err != nil {
		return err
	}
	l := s.l
	// No closure here: this is the per-message path.
	defer s.recoverPanic(&err)
	defer s.endCall(l)
	s.pushGlobal(l, fn)
	if !l.IsFunction(-1) {
		return &Error{Kind: KindRuntime, Msg: fmt.Sprintf("%s: no function %s", s.cfg.Name, fn)}
	}
	n := 0
	if push != nil {
		n = push(l)
	}
	s.reset()
	if err := s.pcall(n, nres); err != nil {
		return err
	}
	if read != nil {
		return read(l)
	}
	return nil
}

// endCall empties the stack after a call.
func (s *Sandbox) endCall(l *lua.State) {
	l.SetTop(0)
	if s.mem.w.stack > bigStack {
		s.clearStale(l)
	}
}

// HasFunction reports whether the script defines the global function fn.
func (s *Sandbox) HasFunction(fn string) bool {
	if s.l == nil {
		return false
	}
	s.l.Global(fn)
	ok := s.l.IsFunction(-1)
	s.l.Pop(1)
	return ok
}

// Close drops the State (its memory is the collector's once the plugin
// holds nothing from it) and the Go-backed states the script made; the
// next call builds a new one.
func (s *Sandbox) Close() {
	s.l = nil
	s.mem = memState{}
	s.closeStates()
}

// Release is Close for a script that will not run again (disabled): when
// its State was big, the memory goes back to the system now rather than
// over the minutes the runtime's scavenger takes (a full collection, a few
// milliseconds, once).
func (s *Sandbox) Release() {
	big := s.mem.size > releaseNow || s.droppedBig
	s.droppedBig = false
	s.Close()
	if big {
		debug.FreeOSMemory()
	}
}

// releaseNow is the State size from which Release returns memory at once.
const releaseNow = 16 << 20

// protect runs f, turning a Go panic that escaped go-lua into an error and
// marking the State for a rebuild.
func (s *Sandbox) protect(f func() error) (err error) {
	defer s.recoverPanic(&err)
	return f()
}

func (s *Sandbox) recoverPanic(err *error) {
	if p := recover(); p != nil {
		s.broken = true
		s.cfg.Logger.Error("lua: Go panic; the State will be rebuilt", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		*err = &Error{Kind: KindPanic, Msg: fmt.Sprint(p)}
	}
}

// pcall calls the function below n arguments on the stack and classifies
// what went wrong.
func (s *Sandbox) pcall(n, nres int) error {
	l := s.l
	err := l.ProtectedCall(n, nres, 0)
	if err == nil {
		if s.tripped != nil { // tripped in a Go callback that then returned
			return s.tripped
		}
		return nil
	}
	msg, _ := l.ToString(-1)
	l.Pop(1)
	if s.tripped != nil {
		if s.tripped.Kind == KindMemory && testHookMemoryTrip != nil {
			testHookMemoryTrip()
		}
		if s.tripped.Kind == KindMemory && s.overLimit() {
			// What the script holds is over its limit: every later call
			// would fail too. Drop the State so its memory is freed.
			s.tripped.Fatal = true
			s.cfg.Logger.Error("lua: the script holds more than its memory limit; its State is dropped",
				"limit", s.cfg.MemoryLimit, "held", s.mem.size)
			s.l = nil
			s.mem = memState{}
			s.droppedBig = true
		}
		return s.tripped
	}
	if !isLuaError(err) {
		s.broken = true
		s.cfg.Logger.Error("lua: Go runtime error inside the interpreter; the State will be rebuilt", "err", err.Error())
		return &Error{Kind: KindPanic, Msg: err.Error()}
	}
	if msg == "" {
		msg = err.Error()
	}
	return &Error{Kind: KindRuntime, Msg: msg}
}

// isLuaError tells errors go-lua raises itself from Go panics it recovered
// (a runtime.Error from a bug, which leave the State in doubt).
func isLuaError(err error) bool {
	switch err.(type) {
	case lua.RuntimeError:
		return true
	}
	return err == lua.SyntaxError || err == lua.MemoryError || err == lua.ErrorError
}

// reset starts the budgets of a new call.
func (s *Sandbox) reset() {
	s.used = 0
	s.limit = s.cfg.InstructionLimit
	s.deadline = time.Now().Add(s.cfg.Deadline)
	s.hooks = 0
	s.tripped = nil
	if s.hookFn == nil {
		s.hookFn = s.hook
	}
	// The hook keeps counting across calls (it is set again only after a
	// trip made it run on every instruction), so calls shorter than
	// hookEvery instructions are seen too.
	if !s.hookOn {
		lua.SetDebugHook(s.l, s.hookFn, lua.MaskCount, hookEvery)
		s.hookOn = true
	}
}

// hook is the count hook: it charges the budget, scans the running frame
// for oversized strings and, now and then, checks the clock and the heap.
func (s *Sandbox) hook(l *lua.State, _ lua.Debug) {
	if s.tripped != nil {
		lua.Errorf(l, "%s", s.tripped.Msg)
	}
	s.used += hookEvery
	s.hooks++
	switch {
	case s.limit > 0 && s.used > s.limit:
		s.trip(KindInstruction, fmt.Sprintf("instruction limit exceeded (%d)", s.limit))
	case s.hooks&7 == 0 && s.used >= minDeadlineWork && time.Now().After(s.deadline):
		s.trip(KindDeadline, fmt.Sprintf("deadline exceeded (%s)", s.cfg.Deadline))
	}
	// The running frame's registers: the result of `..` lands in one.
	big := false
	for i, n := 1, l.Top(); i <= n; i++ {
		if l.TypeOf(i) == lua.TypeString {
			if n := l.RawLength(i); n > s.cfg.StringLimit {
				s.trip(KindMemory, fmt.Sprintf("string longer than %d bytes", s.cfg.StringLimit))
			} else if n >= bigString {
				big = true
			}
		}
	}
	if s.memOn() {
		if s.mem.ticks++; s.mem.ticks >= heapEvery || big && s.mem.ticks >= bigStringEvery {
			s.observeHeap(l)
		}
	}
}

// trip records a limit breach, makes the hook fire on every instruction from
// now on (so no loop inside pcall can outrun it) and raises the error.
func (s *Sandbox) trip(kind, msg string) {
	s.tripped = &Error{Kind: kind, Msg: msg}
	lua.SetDebugHook(s.l, s.hookFn, lua.MaskCount, 1)
	s.hookOn = false
	lua.Errorf(s.l, "%s", msg)
}

// Charge adds n units of work done in Go on the script's behalf (pattern
// matching, table scans) to the instruction budget and raises the limit
// error when it is spent or the deadline passed.
func (s *Sandbox) Charge(l *lua.State, n int) {
	if s.tripped != nil {
		lua.Errorf(l, "%s", s.tripped.Msg)
	}
	s.used += n
	if s.limit > 0 && s.used > s.limit {
		s.trip(KindInstruction, fmt.Sprintf("instruction limit exceeded (%d)", s.limit))
	}
	if s.used >= minDeadlineWork && time.Now().After(s.deadline) {
		s.trip(KindDeadline, fmt.Sprintf("deadline exceeded (%s)", s.cfg.Deadline))
	}
}

// Remaining is the instruction budget left in this call (a large number
// when unlimited).
func (s *Sandbox) Remaining() int {
	if s.limit <= 0 {
		return 1 << 40
	}
	return max(s.limit-s.used, 0)
}

// CheckLen raises a memory-limit error when a string of n bytes would
// exceed the string limit.
func (s *Sandbox) CheckLen(l *lua.State, n int, what string) {
	if n > s.cfg.StringLimit || n < 0 {
		s.trip(KindMemory, fmt.Sprintf("%s: result longer than %d bytes", what, s.cfg.StringLimit))
	}
}

// Tripped returns the limit error of the current call, if any.
func (s *Sandbox) Tripped() *Error { return s.tripped }

// readModule reads <ModuleDir>/<name>.lua, refusing names that could leave
// the directory.
func (s *Sandbox) readModule(name string) (string, string, error) {
	if s.cfg.ModuleDir == "" {
		return "", "", fmt.Errorf("module %q not found: no module_directory configured", name)
	}
	if name == "" || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
		return "", "", fmt.Errorf("module %q: invalid name", name)
	}
	path := s.cfg.ModuleDir + string(os.PathSeparator) + strings.ReplaceAll(name, ".", string(os.PathSeparator)) + ".lua"
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", fmt.Errorf("module %q not found in %s", name, s.cfg.ModuleDir)
	}
	if !fi.Mode().IsRegular() || fi.Size() > 4<<20 {
		return "", "", fmt.Errorf("module %q: not a regular file under 4MiB", name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	return string(b), path, nil
}

// DoChunk compiles src (text only) and runs it in the current State under
// the call limits, handing its nres results to read. The plugins use it for
// files that sit beside the script (alert definitions, catalogs).
func (s *Sandbox) DoChunk(chunkName, src string, nres int, read func(l *lua.State) error) error {
	if _, err := s.Load(); err != nil {
		return err
	}
	return s.protect(func() error { return s.RunChunk(chunkName, src, nres, read) })
}

// RunChunk is DoChunk for use inside a setup function, where the State is
// being built (it neither loads nor recovers).
func (s *Sandbox) RunChunk(chunkName, src string, nres int, read func(l *lua.State) error) error {
	l := s.l
	top := l.Top()
	defer l.SetTop(top)
	if err := lua.LoadBuffer(l, src, "@"+chunkName, "t"); err != nil {
		return &Error{Kind: KindLoad, Msg: loadMessage(l, err)}
	}
	s.reset()
	if err := s.pcall(0, nres); err != nil {
		return err
	}
	if read != nil {
		return read(l)
	}
	return nil
}

// HasSource reports whether the script's source is known.
func (s *Sandbox) HasSource() bool { return s.src != "" }

// SetSource sets the script's source (read by the plugin on first use);
// the next Load compiles it.
func (s *Sandbox) SetSource(src string) {
	s.src = src
	s.broken = true
}
