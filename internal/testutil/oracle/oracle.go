// Package oracle is the bookkeeping of tern's fault suite
// (docs/reliability.md §5.1): a generator stamps every event with
// a run id, a sequence number and a checksum of its payload; sources record
// what they sent and what tern acknowledged; sinks record what reached them;
// the report says what was sent, acknowledged, delivered, missing,
// duplicated, spurious or corrupt, next to tern's own drop counters.
//
// The properties follow rsyslog's chkseq and Vector's Antithesis checks: an
// acknowledged event is an obligation, and the test fails if any obligation
// is missing, if anything arrives that was never sent, or if a payload does
// not match its checksum. Duplicates are counted and bounded, not failed.
package oracle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Generator makes the events of one run. Event seq is a line of exactly
// size bytes (at least 64):
//
//	tern-oracle run=<run> seq=<seq> sum=<8 hex> <padding>
//
// The padding is derived from the seed and the seq, and sum covers run, seq
// and padding, so any changed byte is caught.
type Generator struct {
	Run  string
	Seed uint64
	Size int
}

// NewGenerator returns a generator; run is made from the seed.
func NewGenerator(seed uint64, size int) *Generator {
	return &Generator{Run: fmt.Sprintf("r%x", seed&0xffffffffff), Seed: seed, Size: max(size, 64)}
}

const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// Event appends event seq to dst.
func (g *Generator) Event(dst []byte, seq int) []byte {
	start := len(dst)
	dst = append(dst, "tern-oracle run="...)
	dst = append(dst, g.Run...)
	dst = append(dst, " seq="...)
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, " sum=00000000 "...)
	sumAt := len(dst) - 9
	rng := rand.New(rand.NewPCG(g.Seed, uint64(seq)))
	for len(dst)-start < g.Size {
		dst = append(dst, alphabet[rng.IntN(len(alphabet))])
	}
	s := sum(dst[start:sumAt-5], dst[sumAt+9:])
	hex.Encode(dst[sumAt:sumAt+8], s[:4])
	return dst
}

func sum(head, pad []byte) [32]byte {
	h := sha256.New()
	h.Write(head)
	h.Write(pad)
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// Parse reads an event line: its run and seq, and whether its checksum
// holds. ok is false for a line that is not an event at all.
func Parse(line []byte) (run string, seq int, intact, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte("tern-oracle run="))
	if !found {
		return "", 0, false, false
	}
	runB, rest, found := bytes.Cut(rest, []byte(" seq="))
	if !found {
		return "", 0, false, false
	}
	seqB, rest, found := bytes.Cut(rest, []byte(" sum="))
	if !found || len(rest) < 9 || rest[8] != ' ' {
		return string(runB), 0, false, false
	}
	n, err := strconv.Atoi(string(seqB))
	if err != nil || n < 0 {
		return string(runB), 0, false, false
	}
	head := line[:len(line)-len(rest)-5]
	s := sum(head, rest[9:])
	want := make([]byte, 8)
	hex.Encode(want, s[:4])
	return string(runB), n, bytes.Equal(want, rest[:8]), true
}

// Oracle tracks the events of one run.
type Oracle struct {
	Gen *Generator

	mirrors   []*Oracle // get Sent and Acked too: one source, several sinks
	mu        sync.Mutex
	sent      []bool
	acked     []bool
	delivered []uint16
	distinct  int // events delivered at least once
	spurious  int
	corrupt   int
	samples   []string // first spurious or corrupt lines, for the failure message
}

// New returns an oracle for events made by gen.
func New(gen *Generator) *Oracle { return &Oracle{Gen: gen} }

func grow[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	return append(s, make([]T, n-len(s))...)
}

// Mirror makes o pass what its source sent and got acknowledged on to
// others (one per sink when tern fans out to several).
func (o *Oracle) Mirror(others ...*Oracle) { o.mirrors = append(o.mirrors, others...) }

// Sent records that events were offered to tern.
func (o *Oracle) Sent(seqs ...int) {
	for _, m := range o.mirrors {
		m.Sent(seqs...)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range seqs {
		o.sent = grow(o.sent, s+1)
		o.sent[s] = true
	}
}

// Acked records that tern acknowledged events: they are obligations now.
func (o *Oracle) Acked(seqs ...int) {
	for _, m := range o.mirrors {
		m.Acked(seqs...)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range seqs {
		o.acked = grow(o.acked, s+1)
		o.acked[s] = true
	}
}

// Received records one line a sink got.
func (o *Oracle) Received(line []byte) {
	run, seq, intact, ok := Parse(line)
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case !ok || run != o.Gen.Run || seq >= len(o.sent) || !o.sent[seq]:
		o.spurious++
		o.sample("spurious", line)
	case !intact:
		o.corrupt++
		o.sample("corrupt", line)
	default:
		o.delivered = grow(o.delivered, seq+1)
		if o.delivered[seq] == 0 {
			o.distinct++
		}
		if o.delivered[seq] < 1<<16-1 {
			o.delivered[seq]++
		}
	}
}

func (o *Oracle) sample(kind string, line []byte) {
	if len(o.samples) < 5 {
		if len(line) > 120 {
			line = line[:120]
		}
		o.samples = append(o.samples, kind+": "+strconv.Quote(string(line)))
	}
}

// Delivered reports whether event seq arrived at least once.
func (o *Oracle) Delivered(seq int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return seq < len(o.delivered) && o.delivered[seq] > 0
}

// DeliveredCount is the number of distinct events delivered so far.
func (o *Oracle) DeliveredCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.distinct
}

// Copies returns a snapshot of how often each event arrived, indexed by seq
// (shorter than the highest seq sent when the last ones never arrived).
func (o *Oracle) Copies() []uint16 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]uint16(nil), o.delivered...)
}

// Pending is the number of acknowledged events not delivered yet.
func (o *Oracle) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for s, a := range o.acked {
		if a && (s >= len(o.delivered) || o.delivered[s] == 0) {
			n++
		}
	}
	return n
}

// Report summarises a run.
type Report struct {
	Scenario string
	Seed     uint64
	Sent     int // events offered to tern
	Acked    int // events tern acknowledged: obligations
	// Delivered counts distinct events that reached a sink.
	Delivered int
	// Missing counts acknowledged events that never arrived: must be 0.
	Missing int
	// Unacked counts events sent but never acknowledged nor delivered: the
	// sender was told to retry (or the run ended); allowed.
	Unacked int
	// Duplicates counts extra copies; MaxCopies is the most of one event.
	Duplicates, MaxCopies int
	Spurious, Corrupt     int
	// Drops are tern's own tern_dropped_total, summed by reason.
	Drops map[string]float64
	// Notes are scenario facts (kills, restarts, RSS, throughput).
	Notes   []string
	Samples []string
	missing []int
}

// Report computes the summary.
func (o *Oracle) Report(scenario string) Report {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := Report{Scenario: scenario, Seed: o.Gen.Seed, Spurious: o.spurious, Corrupt: o.corrupt, Drops: map[string]float64{}}
	r.Samples = append(r.Samples, o.samples...)
	for s, sent := range o.sent {
		if !sent {
			continue
		}
		r.Sent++
		acked := s < len(o.acked) && o.acked[s]
		n := 0
		if s < len(o.delivered) {
			n = int(o.delivered[s])
		}
		if acked {
			r.Acked++
		}
		if n > 0 {
			r.Delivered++
			r.Duplicates += n - 1
			r.MaxCopies = max(r.MaxCopies, n)
		} else if acked {
			r.Missing++
			if len(r.missing) < 20 {
				r.missing = append(r.missing, s)
			}
		} else {
			r.Unacked++
		}
	}
	return r
}

// Note adds a scenario fact to the report.
func (r *Report) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (seed %d): sent=%d acked=%d delivered=%d missing=%d unacked=%d duplicates=%d (max copies %d) spurious=%d corrupt=%d",
		r.Scenario, r.Seed, r.Sent, r.Acked, r.Delivered, r.Missing, r.Unacked, r.Duplicates, r.MaxCopies, r.Spurious, r.Corrupt)
	if len(r.Drops) > 0 {
		reasons := make([]string, 0, len(r.Drops))
		for k := range r.Drops {
			reasons = append(reasons, k)
		}
		sort.Strings(reasons)
		b.WriteString(" drops{")
		for i, k := range reasons {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "%s=%g", k, r.Drops[k])
		}
		b.WriteString("}")
	}
	for _, n := range r.Notes {
		b.WriteString("; ")
		b.WriteString(n)
	}
	return b.String()
}

// Check logs the report and fails t unless acknowledged-missing, spurious
// and corrupt are 0 and duplicates are at most maxDup. The seed is in every
// failure message.
func (r Report) Check(t testing.TB, maxDup int) {
	t.Helper()
	t.Log("oracle: " + r.String())
	if r.Missing > 0 {
		t.Errorf("seed %d: %d acknowledged events never delivered (first: %v)", r.Seed, r.Missing, r.missing)
	}
	if r.Spurious > 0 || r.Corrupt > 0 {
		t.Errorf("seed %d: spurious=%d corrupt=%d: %v", r.Seed, r.Spurious, r.Corrupt, r.Samples)
	}
	if r.Duplicates > maxDup {
		t.Errorf("seed %d: %d duplicates, bound %d", r.Seed, r.Duplicates, maxDup)
	}
	if r.Acked == 0 {
		t.Errorf("seed %d: nothing was acknowledged: the run proved nothing", r.Seed)
	}
}
