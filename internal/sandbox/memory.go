package sandbox

import (
	"errors"
	"fmt"
	"runtime/metrics"
	"unsafe"

	lua "github.com/Shopify/go-lua"
)

// Memory accounting: what a script holds counts against memory_limit.
//
// The API for Go code that holds memory on a script's behalf (the Go-backed
// primitives a script keeps as userdata):
//
//   - implement Sized on the userdata's value: every measurement of the
//     State adds MemSize() of each one the script can still reach, so memory
//     stops counting once the script drops the primitive;
//   - call ChargeMemory(n, what) before growing by n bytes: it refuses (and
//     charges nothing) when the script would go over its limit, so the
//     primitive evicts or fails the call with Raise before it allocates;
//   - call ReleaseMemory(n) for bytes charged and freed before the next
//     measurement (a primitive that evicts as it inserts).
//
// All of them run on the goroutine that runs the script (inside a call into
// the script or in the setup function), like every other use of the State.
// A charge may measure the State (time in proportion to what it holds, once
// per that many bytes charged or allocated: O(1) amortised), which calls
// MemSize of every Sized value the script reaches.

// Sized is implemented by Go values a script holds as userdata whose memory
// counts against the script's memory_limit. MemSize returns the bytes the
// value holds now, itself included; it must be cheap (O(1)).
type Sized interface {
	MemSize() int64
}

// ChargeMemory counts n more bytes held on the script's behalf, checking
// before the caller allocates them that the script stays within its
// memory_limit. Over the limit it returns an *Error of kind KindMemory
// ("memory limit of N bytes exceeded in <what>") and charges nothing; the
// caller must then not grow (evict instead, or fail the call with Raise).
// With memory accounting off (a negative MemoryLimit) it always succeeds.
func (s *Sandbox) ChargeMemory(n int64, what string) error {
	if e := s.chargeMem(n, what); e != nil {
		return e
	}
	return nil
}

// ReleaseMemory gives back n bytes charged with ChargeMemory since the
// last measurement.
func (s *Sandbox) ReleaseMemory(n int64) {
	if n > 0 {
		s.mem.debt = max(s.mem.debt-n, 0)
	}
}

// MemoryUsed is the script's memory as the sandbox knows it now: the last
// measurement of its State plus what was allocated since.
func (s *Sandbox) MemoryUsed() int64 { return s.mem.size + s.mem.debt }

// CheckMemory measures what the script holds now and returns a KindMemory
// error when that is over its memory_limit. It is for use between calls,
// after work the accounting did not follow as it went (restoring preserved
// data runs a chunk too short to be watched).
func (s *Sandbox) CheckMemory() error {
	if s.l == nil || !s.memOn() {
		return nil
	}
	s.measure()
	if s.mem.size > s.cfg.MemoryLimit {
		return &Error{Kind: KindMemory, Msg: fmt.Sprintf("memory limit of %d bytes exceeded: the script holds %d bytes", s.cfg.MemoryLimit, s.mem.size)}
	}
	return nil
}

// MemoryLimit is the script's memory_limit in bytes (negative: no limit).
func (s *Sandbox) MemoryLimit() int64 { return s.cfg.MemoryLimit }

// Raise fails the running call with err. A limit error (an *Error of kind
// KindMemory, KindInstruction or KindDeadline, as ChargeMemory returns)
// cannot be caught by pcall: the call fails with that kind. Other errors
// are ordinary Lua errors. Raise does not return.
func (s *Sandbox) Raise(l *lua.State, err error) {
	var e *Error
	if errors.As(err, &e) {
		switch e.Kind {
		case KindMemory, KindInstruction, KindDeadline:
			s.trip(e.Kind, e.Msg)
		}
	}
	lua.Errorf(l, "%s", err.Error())
}

func (s *Sandbox) memoryError(what string) *Error {
	return &Error{Kind: KindMemory, Msg: fmt.Sprintf("memory limit of %d bytes exceeded in %s", s.cfg.MemoryLimit, what)}
}

// How the accounting works. Between two measurements of the State (walk.go)
// the sandbox adds up what the script may have allocated, its debt: the
// sizes library functions charge before they allocate (alloc), what Go
// code charges (ChargeMemory), and the growth of the process's cumulative
// allocation counter seen by the count hook every heapEvery hook runs,
// less what was charged in the meantime. The counter catches what VM
// instructions allocate (table sets, `..`, closures); it also counts other
// goroutines' allocations, which only makes measurements come sooner.
//
// The State is measured again when the debt reaches walkAt: half the last
// measurement (so a measurement, which costs time in proportion to what it
// walks, comes once per that many allocated bytes: O(1) amortised per
// byte, like the collector's pacing), but never more than the room left
// under the limit and never less than minStep. A library allocation that
// the room cannot take, a measurement over the limit or a charge refused
// fails the call with KindMemory.
//
// So what the script holds goes past memory_limit by at most minStep
// (limit/16) plus what VM instructions allocate between two looks at the
// counter (heapEvery × hookEvery instructions; a few when the running frame
// holds a string of bigString bytes or more).

const (
	// bigString is the length from which a string in the running frame
	// makes the hook look at the allocation counter more often: `..` on
	// such strings allocates much per instruction.
	bigString = 64 << 10
	// bigStringEvery is how many hook runs pass between two looks at the
	// allocation counter while such a string is about.
	bigStringEvery = 4
	// bigStack is the stack size (slots) beyond which stale slots are
	// cleared after each call, so a stack once grown does not keep what a
	// past call left there.
	bigStack = 1 << 14
)

// testHookMemoryTrip, when set by a test, runs when a call fails for its
// memory, before the State is measured again (and maybe dropped).
var testHookMemoryTrip func()

// memState is the accounting of one State.
type memState struct {
	w       walker
	size    int64  // bytes the State held at the last measurement
	debt    int64  // bytes allocated since, by the estimates above
	walkAt  int64  // debt that triggers the next measurement
	allocs  uint64 // the allocation counter at the last look
	charged int64  // bytes charged since that look
	ticks   int    // hook runs since that look
	walks   int    // measurements, for tests
	sample  []metrics.Sample
}

func (s *Sandbox) memOn() bool { return s.cfg.MemoryLimit >= 0 }

// minStep is the least debt between two measurements.
func (s *Sandbox) minStep() int64 { return max(s.cfg.MemoryLimit/16, 64<<10) }

// measure walks the State and starts a new debt.
func (s *Sandbox) measure() {
	m := &s.mem
	if m.w.lay == nil {
		m.w.lay, _ = goLuaLayout() // Load checked the error
	}
	m.size = m.w.measure(s.l)
	m.walks++
	m.debt = 0
	room := s.cfg.MemoryLimit - m.size
	m.walkAt = max(min(m.size/2, room), s.minStep())
	// The walk's own allocations are not the script's.
	m.allocs = s.allocCounter()
	m.charged = 0
}

// allocCounter reads the process's cumulative heap allocation in bytes.
func (s *Sandbox) allocCounter() uint64 {
	if s.mem.sample == nil {
		s.mem.sample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	}
	metrics.Read(s.mem.sample)
	if s.mem.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s.mem.sample[0].Value.Uint64()
}

// chargeMem adds n bytes to the debt, measuring the State when the debt is
// due; it returns the error of a charge that would put the State over its
// limit (then nothing is charged).
func (s *Sandbox) chargeMem(n int64, what string) *Error {
	if n <= 0 || !s.memOn() || s.l == nil {
		return nil
	}
	m := &s.mem
	if m.debt+n < m.walkAt {
		m.debt += n
		m.charged += n
		return nil
	}
	s.measure()
	if m.size+n > s.cfg.MemoryLimit {
		return s.memoryError(what)
	}
	m.debt = n
	m.charged = n
	return nil
}

// alloc is chargeMem for library functions: over the limit it fails the
// call (pcall cannot catch it).
func (s *Sandbox) alloc(l *lua.State, n int64, what string) {
	if e := s.chargeMem(n, what); e != nil {
		s.trip(e.Kind, e.Msg)
	}
}

// allocStr is alloc for a string of n bytes that a library function is
// about to build: the string limit first, then its memory.
func (s *Sandbox) allocStr(l *lua.State, n int, what string) {
	s.CheckLen(l, n, what)
	s.alloc(l, int64(n)+sizeStrHeader+sizeSlot, what)
}

// observeHeap is the count hook's look at the allocation counter.
func (s *Sandbox) observeHeap(l *lua.State) {
	m := &s.mem
	a := s.allocCounter()
	if m.allocs != 0 && a > m.allocs {
		if d := int64(a-m.allocs) - m.charged; d > 0 {
			m.debt += d
		}
	}
	m.allocs, m.charged, m.ticks = a, 0, 0
	if m.debt >= m.walkAt {
		s.measure()
		if m.size > s.cfg.MemoryLimit {
			s.trip(KindMemory, fmt.Sprintf("memory limit of %d bytes exceeded: the script holds %d bytes", s.cfg.MemoryLimit, m.size))
		}
	}
}

// overLimit measures the State after a failed call and reports whether it
// holds more than its limit (then it cannot be used any more).
func (s *Sandbox) overLimit() bool {
	if !s.memOn() || s.l == nil {
		return false
	}
	s.measure()
	return s.mem.size > s.cfg.MemoryLimit
}

// clearStale empties the stack slots above the top after a call when the
// stack grew big, so what a past call left there can be collected.
func (s *Sandbox) clearStale(l *lua.State) {
	lay := s.mem.w.lay
	if lay == nil {
		return
	}
	p := unsafe.Pointer(l)
	stack := *(*[]any)(unsafe.Add(p, lay.stStack))
	if len(stack) <= bigStack {
		return
	}
	// SetTop above the top fills the slots in between with nil.
	l.SetTop(0)
	top := *(*int)(unsafe.Add(p, lay.stTop))
	last := *(*int)(unsafe.Add(p, lay.stStackLast))
	l.SetTop(last - top)
	l.SetTop(0)
}

// growth charges a string a library function builds piece by piece (gsub,
// table.concat, json.encode): need(n) comes before the string grows to n
// bytes; it checks the string limit and charges memory a chunk ahead.
type growth struct {
	what    string
	charged int
}

const growthChunk = 64 << 10

func (g *growth) need(s *Sandbox, l *lua.State, n int) {
	if n <= g.charged {
		return
	}
	s.CheckLen(l, n, g.what)
	next := max(n, min(g.charged+growthChunk, s.cfg.StringLimit))
	s.alloc(l, int64(next-g.charged), g.what)
	g.charged = next
}
