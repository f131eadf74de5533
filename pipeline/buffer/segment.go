package buffer

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/ternlog/tern/pipeline/vfs"
)

// SegmentReader reads the records of one segment file on its own, without
// the buffer: for `tern cat` and for tests. It never writes.
type SegmentReader struct {
	sc      *scanner
	hdr     SegmentHeader
	skipped int64
	lost    uint64
	expect  uint64
}

// NewSegmentReader reads the segment in r, whose readable size is size.
// With follow, an incomplete record at the end is waited for (Grow) rather
// than treated as a torn tail.
func NewSegmentReader(r io.ReaderAt, size int64, follow bool) (*SegmentReader, error) {
	p := make([]byte, SegmentHeaderSize)
	if _, err := r.ReadAt(p, 0); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrNotSegment
		}
		return nil, err
	}
	hdr, err := ParseSegmentHeader(p)
	if err != nil {
		return nil, err
	}
	return &SegmentReader{
		sc:  newScanner(r, hdr.FirstSeq, SegmentHeaderSize, size, !follow),
		hdr: hdr, expect: hdr.FirstSeq,
	}, nil
}

// Header is the segment's header.
func (r *SegmentReader) Header() SegmentHeader { return r.hdr }

// Next returns the next valid record, skipping (and counting) corrupt
// bytes. At the end it returns io.EOF; a following reader may call Grow
// and try again.
func (r *SegmentReader) Next() (Record, error) {
	rec, skipped, err := r.sc.next()
	r.skipped += skipped
	if err != nil {
		return Record{}, err
	}
	if rec.Seq > r.expect {
		r.lost += rec.Seq - r.expect
	}
	r.expect = rec.Seq + 1
	return rec, nil
}

// Grow tells a following reader that the file now holds size bytes.
func (r *SegmentReader) Grow(size int64) {
	if size > r.sc.end {
		r.sc.end = size
	}
}

// Offset is where the next record starts.
func (r *SegmentReader) Offset() int64 { return r.sc.off }

// Skipped is the number of corrupt bytes passed so far.
func (r *SegmentReader) Skipped() int64 { return r.skipped }

// Lost is the number of records missing between valid ones so far.
func (r *SegmentReader) Lost() uint64 { return r.lost }

// Segments lists the segment files of a buffer directory, oldest first.
func Segments(fsys vfs.FS, dir string) ([]string, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type seg struct {
		id   uint64
		name string
	}
	var segs []seg
	for _, n := range names {
		if id, ok := ParseSegmentName(n); ok {
			segs = append(segs, seg{id, n})
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].id < segs[j].id })
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = filepath.Join(dir, s.name)
	}
	return out, nil
}

// IsSegment reports whether the file at path starts with a segment header.
func IsSegment(fsys vfs.FS, path string) bool {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	p := make([]byte, SegmentHeaderSize)
	if _, err := f.ReadAt(p, 0); err != nil {
		return false
	}
	_, err = ParseSegmentHeader(p)
	return err == nil
}
