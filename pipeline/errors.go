package pipeline

import (
	"errors"
	"fmt"
	"time"
)

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (a record too large for the broker,
// an HTTP 400): the engine sends the affected messages to the dead-letter route.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// PartialError reports per-record outcomes of an Output.Write: Errs[i] is the
// error of batch[i], nil for records that were delivered.
type PartialError struct {
	Errs []error
}

func (e *PartialError) Error() string {
	n := 0
	var first error
	for _, err := range e.Errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	return fmt.Sprintf("%d of %d records failed, first: %v", n, len(e.Errs), first)
}

// ErrStopped is given to an AckFunc whose records were not delivered before
// the engine stopped; their source should offer them again.
var ErrStopped = errors.New("tern: stopped before delivery")

// ErrEndOfInput is returned by Input.Run when its source is exhausted (stdin
// reached EOF, a one-shot file was read). The engine does not restart the
// input; when every input has ended, it drains and stops as on SIGTERM.
var ErrEndOfInput = errors.New("tern: end of input")

type retryAfterError struct {
	err error
	d   time.Duration
}

func (e retryAfterError) Error() string { return e.err.Error() }
func (e retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks a retriable err with the wait the peer asked for (an
// HTTP Retry-After, a broker's throttle time). Outputs return it instead of
// sleeping in Write: the engine waits the longer of d and its own backoff,
// and stops waiting at shutdown.
func RetryAfter(err error, d time.Duration) error {
	if err == nil || d <= 0 {
		return err
	}
	return retryAfterError{err, d}
}

// RetryDelay reports the wait err asks for, if it was marked by RetryAfter.
func RetryDelay(err error) (time.Duration, bool) {
	var r retryAfterError
	if errors.As(err, &r) {
		return r.d, true
	}
	return 0, false
}
