package tail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ternlog/tern/internal/watermark"
)

// anchorLen is how many bytes before a position its anchor hashes. The
// anchor tells a file rewritten in place from the one we were reading,
// even when both start alike (Heka's last_hash).
const anchorLen = 64

type hash16 [16]byte

// emptyAnchor is the anchor of offset 0.
var emptyAnchor = sum16(nil)

func sum16(p []byte) hash16 {
	s := sha256.Sum256(p)
	var h hash16
	copy(h[:], s[:16])
	return h
}

// entry is what the input knows of one file, identified by its content.
// Fields are guarded by Input.mu; the Run loop is the only writer of all but
// acked, which acknowledgements move.
type entry struct {
	fp       hash16 // hash of the first fpLen bytes
	fpLen    int64
	dev, ino uint64 // hint only: inodes are reused
	path     string // where it was seen last
	size     int64  // file size when last seen (compressed size for gzip)
	mtime    int64
	gz       bool
	done     bool // a gzip file read to its end: it will not change
	// truncated: the file was truncated or rewritten in place after we
	// read it here. Only then can a shorter file with this content be a
	// copy taken earlier (copytruncate) rather than a new file.
	truncated bool

	// next is where reading resumes: just after the last line handed on.
	next       int64
	nextAnchor hash16
	// acked is the position every byte before which has been delivered,
	// with the batches handed on and not yet passed (internal/watermark).
	acked watermark.Line[position]

	seen time.Time // last scan that found it
	h    *harvester
}

// position is a place in a file: the offset, and the anchor (a hash of
// the bytes just before it) that proves on reopening that the file is
// still the one read.
type position struct {
	off    int64
	anchor hash16
}

// ackedAt starts an entry's acknowledged position at off.
func (e *entry) ackedAt(off int64, anchor hash16) { e.acked.Set(position{off, anchor}) }

// ackedOff is the offset before which every byte is delivered.
func (e *entry) ackedOff() int64 { return e.acked.Pos().off }

// settle records the fate of a batch and advances the acknowledged
// position over the contiguous prefix of delivered batches. A failed batch
// (the engine stopped first) stops the advance for the rest of this
// process: a restart replays from there.
func (t *Input) settle(e *entry, m *watermark.Mark[position], err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m.Settled() {
		return
	}
	t.inflight--
	lines, _ := e.acked.Settle(m, err)
	if lines > 0 || e.acked.Idle() {
		t.markDirty()
	}
	t.unsaved += lines
	if t.unsaved >= t.cfg.CheckpointLines {
		t.kickSaver()
	}
	if t.inflight == 0 {
		select {
		case t.settled <- struct{}{}:
		default:
		}
	}
}

// markDirty notes that positions changed; the first change since the last
// save wakes the checkpoint writer. t.mu is held.
func (t *Input) markDirty() {
	if !t.dirty {
		t.dirty = true
		t.kickSaver()
	}
}

func (t *Input) kickSaver() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// handOn registers a batch of lines of e ending at end, handed on.
func (t *Input) handOn(e *entry, end position, lines int) *watermark.Mark[position] {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inflight++
	return e.acked.Add(end, lines)
}

// skip lets the acknowledged position pass bytes consumed without a line,
// at once when nothing is in flight before them.
func (t *Input) skip(e *entry, end position) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.acked.Skip(end) {
		t.markDirty()
	}
}

// ---- the checkpoint file

// The checkpoint is a header line then a JSON body:
//
//	tern-tail-checkpoint 1 <generation> <body length> <crc32c of body>\n
//	{"files":[...]}
//
// The CRC and the length catch torn and zero-filled files (Filebeat #3537);
// the generation picks the newest valid copy among the current file, the
// previous generation and a temp file a crash left behind.
const (
	ckptName   = "checkpoint.json"
	ckptMagic  = "tern-tail-checkpoint"
	ckptFormat = 1
	// maxCheckpointBytes caps what is read back; a checkpoint of a million
	// files is far below it.
	maxCheckpointBytes = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type checkpointFiles struct{ dir string }

func (c checkpointFiles) current() string { return filepath.Join(c.dir, ckptName) }
func (c checkpointFiles) prev() string    { return filepath.Join(c.dir, ckptName+".prev") }
func (c checkpointFiles) temp() string    { return filepath.Join(c.dir, ckptName+".tmp") }

type fileRecord struct {
	FP     string `json:"fp"`
	FPLen  int64  `json:"fp_len"`
	Offset int64  `json:"offset"`
	Anchor string `json:"anchor"`
	Path   string `json:"path"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Size   int64  `json:"size"`
	MTime  int64  `json:"mtime"`
	Gzip   bool   `json:"gzip,omitempty"`
	Done   bool   `json:"done,omitempty"`
	Trunc  bool   `json:"truncated,omitempty"`
	Seen   int64  `json:"seen"`
}

type checkpointBody struct {
	Files []fileRecord `json:"files"`
}

// encodeCheckpoint renders a checkpoint of generation gen.
func encodeCheckpoint(gen uint64, files []fileRecord) []byte {
	if files == nil {
		files = []fileRecord{}
	}
	body, _ := json.Marshal(checkpointBody{Files: files})
	head := fmt.Sprintf("%s %d %d %d %08x\n", ckptMagic, ckptFormat, gen, len(body), crc32.Checksum(body, castagnoli))
	return append([]byte(head), body...)
}

// decodeCheckpoint parses and verifies a checkpoint. Any damage is an error:
// the caller falls back to another generation.
func decodeCheckpoint(b []byte) (gen uint64, files []fileRecord, err error) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 || nl > 200 {
		return 0, nil, errors.New("no header line")
	}
	f := bytes.Fields(b[:nl])
	if len(f) != 5 || string(f[0]) != ckptMagic {
		return 0, nil, errors.New("bad header")
	}
	if v, err := strconv.Atoi(string(f[1])); err != nil || v != ckptFormat {
		return 0, nil, fmt.Errorf("unsupported format %q", f[1])
	}
	gen, err = strconv.ParseUint(string(f[2]), 10, 64)
	if err != nil {
		return 0, nil, errors.New("bad generation")
	}
	n, err := strconv.ParseInt(string(f[3]), 10, 64)
	body := b[nl+1:]
	if err != nil || n != int64(len(body)) {
		return 0, nil, fmt.Errorf("body is %d bytes, header says %s", len(body), f[3])
	}
	crc, err := strconv.ParseUint(string(f[4]), 16, 32)
	if err != nil || uint32(crc) != crc32.Checksum(body, castagnoli) {
		return 0, nil, errors.New("checksum mismatch")
	}
	var cb checkpointBody
	if err := json.Unmarshal(body, &cb); err != nil {
		return 0, nil, fmt.Errorf("body: %v", err)
	}
	for i, r := range cb.Files {
		if _, ok := parseHash(r.FP); !ok || r.FPLen < 1 || r.FPLen > 1<<20 || r.Offset < 0 {
			return 0, nil, fmt.Errorf("file %d: bad record", i)
		}
		if _, ok := parseHash(r.Anchor); !ok {
			return 0, nil, fmt.Errorf("file %d: bad anchor", i)
		}
	}
	return gen, cb.Files, nil
}

func parseHash(s string) (hash16, bool) {
	var h hash16
	if len(s) != 32 {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, false
	}
	return h, true
}

// load reads the newest valid generation. found reports whether any
// checkpoint file existed at all; problems names those that did not parse.
func (c checkpointFiles) load() (gen uint64, files []fileRecord, found bool, problems []string, err error) {
	best := -1
	for i, p := range []string{c.current(), c.prev(), c.temp()} {
		b, rerr := readCapped(p, maxCheckpointBytes)
		if errors.Is(rerr, os.ErrNotExist) {
			continue
		}
		found = true
		if rerr != nil {
			if errors.Is(rerr, os.ErrPermission) {
				return 0, nil, true, nil, rerr
			}
			problems = append(problems, fmt.Sprintf("%s: %v", filepath.Base(p), rerr))
			continue
		}
		g, fs, derr := decodeCheckpoint(b)
		if derr != nil {
			if i != 2 { // a torn temp file is the expected leftover of a crash
				problems = append(problems, fmt.Sprintf("%s: %v", filepath.Base(p), derr))
			}
			continue
		}
		if best < 0 || g > gen {
			best, gen, files = i, g, fs
		}
	}
	if best < 0 {
		return 0, nil, found, problems, nil
	}
	if best != 0 {
		problems = append(problems, fmt.Sprintf("using %s (generation %d)", filepath.Base([]string{c.current(), c.prev(), c.temp()}[best]), gen))
	}
	return gen, files, found, problems, nil
}

func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}

// saveHook lets tests stop a save between its steps, the way a crash would.
var saveHook func(step string) bool

// store writes data as the next generation: temp file, fsync, keep the
// current file as the previous generation, rename, fsync the directory.
func (c checkpointFiles) store(data []byte) error {
	tmp := c.temp()
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if saveHook != nil && saveHook("open") {
		// A crash right after creating the temp file leaves part of it.
		_, _ = f.Write(data[:len(data)/2])
		return f.Close()
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if saveHook != nil && saveHook("synced") {
		return nil
	}
	if err := os.Rename(c.current(), c.prev()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if saveHook != nil && saveHook("kept") {
		return nil
	}
	if err := os.Rename(tmp, c.current()); err != nil {
		return err
	}
	return syncDir(c.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// save writes the acknowledged positions if they changed.
func (t *Input) save() error {
	t.saveMu.Lock()
	defer t.saveMu.Unlock()
	t.mu.Lock()
	if !t.dirty {
		t.mu.Unlock()
		return nil
	}
	t.gen++
	gen := t.gen
	files := make([]fileRecord, 0, len(t.entries))
	for _, e := range t.entries {
		acked := e.acked.Pos()
		if acked.off <= 0 || e.fpLen <= 0 {
			continue // offset 0 is what an unknown file gets anyway
		}
		files = append(files, fileRecord{
			FP: hex.EncodeToString(e.fp[:]), FPLen: e.fpLen, Offset: acked.off,
			Anchor: hex.EncodeToString(acked.anchor[:]), Path: e.path, Dev: e.dev, Ino: e.ino,
			Size: e.size, MTime: e.mtime, Gzip: e.gz, Done: e.done && acked.off == e.next, Trunc: e.truncated,
			Seen: e.seen.Unix(),
		})
	}
	t.dirty = false
	lines := t.unsaved
	t.unsaved = 0
	t.mu.Unlock()

	if err := t.ckpt.store(encodeCheckpoint(gen, files)); err != nil {
		t.mu.Lock()
		t.markDirty()
		t.unsaved += lines
		t.mu.Unlock()
		t.set.Error("checkpoint")
		t.warnLimited("checkpoint", "saving the checkpoint failed; positions are kept in memory and saved again", "dir", t.ckpt.dir, "err", err)
		return err
	}
	return nil
}

// loadState reads the checkpoint once per process. An unreadable checkpoint
// is not fatal: the read_from policy applies, loudly.
func (t *Input) loadState() error {
	t.mu.Lock()
	loaded := t.loaded
	t.mu.Unlock()
	if loaded {
		return nil
	}
	gen, files, found, problems, err := t.ckpt.load()
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	now := t.set.Now()
	var entries []*entry
	for _, r := range files {
		fp, _ := parseHash(r.FP)
		an, _ := parseHash(r.Anchor)
		seen := time.Unix(r.Seen, 0)
		if seen.After(now) {
			seen = now
		}
		size := int64(-1) // reopen once: what was in flight at the stop is read again
		if r.Done {
			size = r.Size
		}
		e := &entry{
			fp: fp, fpLen: r.FPLen, dev: r.Dev, ino: r.Ino, path: r.Path, size: size, mtime: r.MTime,
			gz: r.Gzip, done: r.Done, truncated: r.Trunc, next: r.Offset, nextAnchor: an, seen: seen,
		}
		e.ackedAt(r.Offset, an)
		entries = append(entries, e)
	}
	switch {
	case gen == 0 && found && len(problems) > 0:
		t.log.Error("checkpoint unreadable; falling back to read_from", "read_from", t.cfg.ReadFrom, "dir", t.ckpt.dir, "problems", problems)
	case gen > 0 && len(problems) > 0:
		t.log.Warn("checkpoint damaged; using the newest valid generation", "generation", gen, "problems", problems)
	}
	t.mu.Lock()
	t.entries = entries
	t.gen = gen
	t.fresh = gen == 0
	t.loaded = true
	t.mu.Unlock()
	return nil
}
