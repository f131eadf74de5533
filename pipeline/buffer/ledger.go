package buffer

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"

	"github.com/ternlog/tern/pipeline/vfs"
)

// The ledger holds the reader's cursor: every record before it was
// delivered. It is one small file written in place, never renamed, with two
// slots in different sectors; each write goes to the slot the previous one
// did not use and carries a generation number, so a torn write leaves the
// other slot intact and the newer valid slot wins.
//
//	slot = "tern.led" | version uint32 | crc32c uint32 | generation uint64 | segment uint64 | offset uint64 | next_seq uint64
//
// A cursor may lag what was delivered (then records are delivered again
// after a crash: duplicates, never loss); it never runs ahead, because it
// is written only after the output's commit.
const (
	ledgerName    = "ledger"
	ledgerMagic   = "tern.led"
	ledgerVersion = 1
	ledgerSlot    = 512 // bytes between slots: one sector each
	ledgerRecLen  = 48
)

// Cursor is a reader position: the next record to read is the one at Offset
// in segment Segment, and it should carry sequence number Seq.
type Cursor struct {
	Segment uint64
	Offset  int64
	Seq     uint64
}

type ledger struct {
	f   vfs.File
	gen uint64
	cur Cursor
}

func encodeSlot(gen uint64, c Cursor) []byte {
	b := make([]byte, 0, ledgerRecLen)
	b = append(b, ledgerMagic...)
	b = binary.LittleEndian.AppendUint32(b, ledgerVersion)
	b = append(b, 0, 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, gen)
	b = binary.LittleEndian.AppendUint64(b, c.Segment)
	b = binary.LittleEndian.AppendUint64(b, uint64(c.Offset))
	b = binary.LittleEndian.AppendUint64(b, c.Seq)
	binary.LittleEndian.PutUint32(b[12:], slotCRC(b))
	return b
}

func slotCRC(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b[:12])
	return crc32.Update(c, castagnoli, b[16:ledgerRecLen])
}

func decodeSlot(b []byte) (gen uint64, c Cursor, ok bool) {
	if len(b) < ledgerRecLen || string(b[:8]) != ledgerMagic ||
		binary.LittleEndian.Uint32(b[8:]) != ledgerVersion || binary.LittleEndian.Uint32(b[12:]) != slotCRC(b) {
		return 0, Cursor{}, false
	}
	gen = binary.LittleEndian.Uint64(b[16:])
	c = Cursor{
		Segment: binary.LittleEndian.Uint64(b[24:]),
		Offset:  int64(binary.LittleEndian.Uint64(b[32:])),
		Seq:     binary.LittleEndian.Uint64(b[40:]),
	}
	if gen == 0 || c.Offset < 0 || c.Seq == 0 {
		return 0, Cursor{}, false
	}
	return gen, c, true
}

// parseLedger returns the newest valid cursor in a ledger's bytes.
func parseLedger(b []byte) (gen uint64, c Cursor, ok bool) {
	for i := 0; i < 2; i++ {
		if len(b) < i*ledgerSlot+ledgerRecLen {
			break
		}
		g, cc, good := decodeSlot(b[i*ledgerSlot:])
		if good && g > gen {
			gen, c, ok = g, cc, true
		}
	}
	return gen, c, ok
}

// ReadLedger returns the cursor stored in a buffer directory's ledger.
func ReadLedger(fsys vfs.FS, dir string) (Cursor, bool) {
	f, err := fsys.OpenFile(join(dir, ledgerName), 0, 0)
	if err != nil {
		return Cursor{}, false
	}
	defer f.Close()
	b := make([]byte, ledgerSlot+ledgerRecLen)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Cursor{}, false
	}
	_, c, ok := parseLedger(b[:n])
	return c, ok
}

// write stores c in the next slot. It does not sync.
func (l *ledger) write(c Cursor) error {
	l.gen++
	_, err := l.f.WriteAt(encodeSlot(l.gen, c), int64(l.gen%2)*ledgerSlot)
	if err == nil {
		l.cur = c
	}
	return err
}

// writeBoth stores c in both slots and syncs, so no older cursor survives
// any crash: required before unlinking a segment an older cursor names.
func (l *ledger) writeBoth(c Cursor) error {
	if err := l.write(c); err != nil {
		return err
	}
	if err := l.write(c); err != nil {
		return err
	}
	return l.f.Sync()
}
