package sandbox

import (
	"errors"
	"fmt"

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
	if n <= 0 || s.cfg.MemoryLimit < 0 {
		return nil
	}
	if s.memUsed+n > s.cfg.MemoryLimit {
		return s.memoryError(what)
	}
	s.memUsed += n
	return nil
}

// ReleaseMemory gives back n bytes charged with ChargeMemory.
func (s *Sandbox) ReleaseMemory(n int64) {
	if n > 0 {
		s.memUsed = max(s.memUsed-n, 0)
	}
}

// MemoryUsed is the script's memory as the sandbox knows it now: the last
// measurement of its State plus what was charged since.
func (s *Sandbox) MemoryUsed() int64 { return s.memUsed }

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
