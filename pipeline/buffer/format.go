package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// On-disk format, version 1. All integers are little-endian.
//
//	segment = header record*
//	header  = "tern.seg" | version uint32 | crc32c uint32 | id uint64 | first_seq uint64   (32 bytes)
//	record  = length uint32 | crc32c uint32 | seq uint64 | payload (length bytes)
//
// The header's CRC covers its other 28 bytes; a record's covers its length,
// its seq and its payload. The payload is one message in tern's native
// msgpack form (codec.AppendMsgpack). Sequence numbers start at 1, grow
// by one per record across segments and are never reused, so a reader can
// tell a lost record (a gap) from a replayed one (a seq it has passed), and
// zeroed space never parses as a record. Within a segment every record's
// seq is at least the header's first_seq and at most first_seq plus the
// number of minimal records that fit before it: resynchronisation after
// corruption only accepts candidates in that window, so random bytes that
// happen to pass the CRC are not taken for records.
const (
	segMagic          = "tern.seg"
	segVersion        = 1
	SegmentHeaderSize = 32
	RecordHeaderSize  = 16
	// SegmentExt ends every segment file name: %016x.seg of its id.
	SegmentExt = ".seg"
	minRecord  = RecordHeaderSize + 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors reading the format.
var (
	ErrNotSegment = errors.New("buffer: not a segment (bad header)")
	errShort      = errors.New("buffer: incomplete record")
)

// SegmentName is the file name of segment id.
func SegmentName(id uint64) string { return fmt.Sprintf("%016x%s", id, SegmentExt) }

// ParseSegmentName returns the id in a segment file name.
func ParseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, SegmentExt)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 64)
	return id, err == nil && id > 0
}

// SegmentHeader is the fixed start of a segment file.
type SegmentHeader struct {
	ID       uint64
	FirstSeq uint64
}

func appendSegHeader(dst []byte, h SegmentHeader) []byte {
	start := len(dst)
	dst = append(dst, segMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, segVersion)
	dst = append(dst, 0, 0, 0, 0) // crc
	dst = binary.LittleEndian.AppendUint64(dst, h.ID)
	dst = binary.LittleEndian.AppendUint64(dst, h.FirstSeq)
	hdr := dst[start:]
	binary.LittleEndian.PutUint32(hdr[12:], headerCRC(hdr))
	return dst
}

func headerCRC(hdr []byte) uint32 {
	c := crc32.Update(0, castagnoli, hdr[:12])
	return crc32.Update(c, castagnoli, hdr[16:SegmentHeaderSize])
}

// ParseSegmentHeader checks and decodes the first SegmentHeaderSize bytes of
// a segment.
func ParseSegmentHeader(b []byte) (SegmentHeader, error) {
	if len(b) < SegmentHeaderSize || string(b[:8]) != segMagic {
		return SegmentHeader{}, ErrNotSegment
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != segVersion {
		return SegmentHeader{}, fmt.Errorf("buffer: segment version %d, this build reads %d", v, segVersion)
	}
	if binary.LittleEndian.Uint32(b[12:]) != headerCRC(b) {
		return SegmentHeader{}, ErrNotSegment
	}
	h := SegmentHeader{ID: binary.LittleEndian.Uint64(b[16:]), FirstSeq: binary.LittleEndian.Uint64(b[24:])}
	if h.ID == 0 || h.FirstSeq == 0 {
		return SegmentHeader{}, ErrNotSegment
	}
	return h, nil
}

// recordCRC is the CRC of a record whose header is hdr.
func recordCRC(hdr, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, hdr[0:4])
	c = crc32.Update(c, castagnoli, hdr[8:16])
	return crc32.Update(c, castagnoli, payload)
}

// sealRecord writes seq and the CRC into the record that starts rec (its
// length and payload already in place).
func sealRecord(rec []byte, seq uint64) {
	binary.LittleEndian.PutUint64(rec[8:], seq)
	n := binary.LittleEndian.Uint32(rec)
	binary.LittleEndian.PutUint32(rec[4:], recordCRC(rec, rec[RecordHeaderSize:RecordHeaderSize+int(n)]))
}

func recLen(b []byte) int { return RecordHeaderSize + int(binary.LittleEndian.Uint32(b)) }

func recSeq(b []byte) uint64 { return binary.LittleEndian.Uint64(b[8:]) }

// Record is one record read from a segment.
type Record struct {
	Seq     uint64
	Offset  int64  // of the record header in the segment file
	Payload []byte // valid until the next read
}

// scanner reads the records of one segment between off and end. It
// resynchronises after corrupt bytes by looking for the next record whose
// seq is plausible and whose CRC holds.
type scanner struct {
	r        io.ReaderAt
	first    uint64 // the segment's first_seq
	off      int64  // next record
	end      int64  // readable bytes
	final    bool   // end will not grow: an incomplete record is garbage
	lastSeq  uint64 // seq of the last record returned (0: none yet)
	buf      []byte
	bufOff   int64
	readSize int
}

func newScanner(r io.ReaderAt, first uint64, off, end int64, final bool) *scanner {
	return &scanner{r: r, first: first, off: off, end: end, final: final, readSize: 256 << 10}
}

// window makes buf hold [off, off+n) and returns it, or errShort when the
// readable bytes end first.
func (s *scanner) window(off int64, n int) ([]byte, error) {
	if off+int64(n) > s.end {
		return nil, errShort
	}
	if off >= s.bufOff && off+int64(n) <= s.bufOff+int64(len(s.buf)) {
		return s.buf[off-s.bufOff : off-s.bufOff+int64(n)], nil
	}
	want := min(max(n, s.readSize), int(s.end-off))
	if cap(s.buf) < want {
		s.buf = make([]byte, want)
	}
	s.buf = s.buf[:want]
	k, err := s.r.ReadAt(s.buf, off)
	s.buf, s.bufOff = s.buf[:k], off
	if k < n {
		if err == nil || errors.Is(err, io.EOF) {
			// The file is shorter than we were told: what is missing
			// cannot be read yet (or ever, once final).
			return nil, errShort
		}
		return nil, err
	}
	return s.buf[:n], nil
}

// plausible reports whether seq may be the seq of a record at off.
func (s *scanner) plausible(seq uint64, off int64) bool {
	if seq <= s.lastSeq || seq < s.first {
		return false
	}
	return seq-s.first <= uint64(max(off-SegmentHeaderSize, 0))/minRecord
}

// at checks the record at off: nil with its length and payload, errShort
// when it does not fit in the readable bytes, errBad otherwise.
func (s *scanner) at(off int64, strict bool) (seq uint64, payload []byte, err error) {
	hdr, err := s.window(off, RecordHeaderSize)
	if err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(hdr)
	seq = recSeq(hdr)
	if n == 0 || (strict && !s.plausible(seq, off)) {
		return 0, nil, errBad
	}
	if int64(n) > s.end-off-RecordHeaderSize {
		if s.final {
			return 0, nil, errBad
		}
		return 0, nil, errShort
	}
	rec, err := s.window(off, RecordHeaderSize+int(n))
	if err != nil {
		return 0, nil, err
	}
	if binary.LittleEndian.Uint32(rec[4:]) != recordCRC(rec, rec[RecordHeaderSize:]) {
		return 0, nil, errBad
	}
	return seq, rec[RecordHeaderSize:], nil
}

var errBad = errors.New("buffer: corrupt record")

// next returns the next good record. skipped counts the corrupt bytes it
// passed on the way. At the end of the readable bytes it returns io.EOF;
// with a final scanner the end may be preceded by skipped garbage (a torn
// tail); otherwise off stays at the incomplete record so a later call, with
// a larger end, can finish it.
func (s *scanner) next() (rec Record, skipped int64, err error) {
	for {
		if s.end-s.off < RecordHeaderSize {
			if s.final && s.off < s.end {
				skipped += s.end - s.off
				s.off = s.end
			}
			return Record{}, skipped, io.EOF
		}
		seq, payload, err := s.at(s.off, true)
		if err == nil {
			rec = Record{Seq: seq, Offset: s.off, Payload: payload}
			s.off += RecordHeaderSize + int64(len(payload))
			s.lastSeq = seq
			return rec, skipped, nil
		}
		if errors.Is(err, errShort) {
			if !s.final {
				return Record{}, skipped, io.EOF
			}
			err = errBad
		}
		if err != nil && !errors.Is(err, errBad) {
			return Record{}, skipped, err // I/O error
		}
		// Corrupt here: look for the next plausible record.
		q, err := s.resync(s.off + 1)
		if err != nil {
			return Record{}, skipped, err
		}
		skipped += q - s.off
		s.off = q
		if q >= s.end {
			return Record{}, skipped, io.EOF
		}
	}
}

// resync returns the offset of the first good record at or after from, or
// end when there is none.
func (s *scanner) resync(from int64) (int64, error) {
	for p := from; p+minRecord <= s.end; p++ {
		hdr, err := s.window(p, RecordHeaderSize)
		if err != nil {
			if errors.Is(err, errShort) {
				break
			}
			return 0, err
		}
		// Cheap checks first: nearly every offset fails the seq window.
		if !s.plausible(recSeq(hdr), p) || binary.LittleEndian.Uint32(hdr) == 0 {
			continue
		}
		_, _, err = s.at(p, true)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, errBad) && !errors.Is(err, errShort) {
			return 0, err
		}
	}
	return s.end, nil
}
