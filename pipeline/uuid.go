package pipeline

import (
	"encoding/binary"
	"math/rand/v2"
)

// NewUUID returns a random version 4 UUID. It draws on the runtime's
// per-thread ChaCha8 generator (seeded from the OS), which is unpredictable
// and costs a few nanoseconds, unlike a crypto/rand read per message.
func NewUUID() (u [16]byte) {
	binary.LittleEndian.PutUint64(u[0:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:16], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}

// SeededUUIDs returns a deterministic UUID source for tests and golden files.
func SeededUUIDs(seed uint64) func() [16]byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() (u [16]byte) {
		binary.LittleEndian.PutUint64(u[0:8], r.Uint64())
		binary.LittleEndian.PutUint64(u[8:16], r.Uint64())
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		return u
	}
}
