package alert

import (
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/ternlog/tern/pipeline"
)

// Alert ids are UUIDs of version 7 (RFC 9562) in their 36-character text
// form, e.g. 019a8c3e-5b40-7c2d-9f1e-3a4b5c6d7e8f: 48 bits of Unix
// milliseconds, then 74 random bits. docs/alerts.md argues the choice: an
// id is unique without a counter to persist or a router name to trust, it
// sorts by time, and it fits CEF's 40-character externalId.

// IDs makes alert ids. It is not safe for concurrent use; each producer
// (one filter instance) has its own.
type IDs struct {
	rnd func() uint64
}

// NewIDs returns the ids of a producer, random from the runtime's ChaCha8
// generator (seeded from the OS, like message UUIDs).
func NewIDs() *IDs { return &IDs{rnd: rand.Uint64} }

// SeededIDs returns a deterministic id source for tests and golden files.
func SeededIDs(seed uint64) *IDs {
	r := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	return &IDs{rnd: r.Uint64}
}

// New returns the id of an alert raised at now.
func (g *IDs) New(now time.Time) string {
	var u [16]byte
	ms := uint64(now.UnixMilli())
	a, b := g.rnd(), g.rnd()
	binary.BigEndian.PutUint64(u[8:], b)
	// u[0:6] is the timestamp: write it over the top of a's bytes.
	binary.BigEndian.PutUint64(u[0:8], ms<<16|a&0xffff)
	u[6] = 0x70 | u[6]&0x0f // version 7, 12 random bits follow
	u[8] = 0x80 | u[8]&0x3f // RFC 9562 variant, 62 random bits follow
	return string(pipeline.AppendUUID(make([]byte, 0, 36), u))
}

// ValidID reports whether s is an id in the form New writes: a UUID in
// lower-case canonical text.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}
