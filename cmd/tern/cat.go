package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/buffer"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/framing"
	"github.com/ternlog/tern/pipeline/matcher"
	"github.com/ternlog/tern/pipeline/vfs"
)

// cmdCat is heka-cat for tern: it prints the messages held in disk buffer
// directories, buffer segment files and native-framed files (or stdin) as
// canonical JSON. It only reads: a buffer may be catted while tern runs.
func cmdCat(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return cat(ctx, args, stdin, stdout, stderr)
}

// catPoll is how often -tail looks for more.
var catPoll = 200 * time.Millisecond

func cat(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("cat")
	expr := fs.String("match", "", "print only the messages the matcher `EXPR` accepts")
	count := fs.Bool("count", false, "print the number of messages instead of the messages")
	tail := fs.Bool("tail", false, "keep reading what is appended (one PATH)")
	unread := fs.Bool("unread", false, "buffer directories: start at the reader's cursor, not at the oldest record on disk")
	maxFrame := fs.Int("max-frame", framing.DefaultMaxFrame, "largest native frame payload in `BYTES`")
	if code, done := parseFlags(fs, "cat", args, stdout, stderr); done {
		return code
	}
	var m *matcher.Matcher
	if *expr != "" {
		var err error
		if m, err = matcher.Compile(*expr); err != nil {
			fmt.Fprintf(stderr, "tern cat: -match: %v\n", err)
			return 2
		}
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	if *tail && len(paths) != 1 {
		fmt.Fprintln(stderr, "tern cat: -tail follows one PATH")
		return 2
	}
	out := bufio.NewWriter(stdout)
	c := &catter{ctx: ctx, m: m, count: *count, tail: *tail, unread: *unread, maxFrame: *maxFrame, out: out, stderr: stderr}
	ok := true
	for _, p := range paths {
		if err := c.path(p, stdin); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "tern cat: %s: %v\n", p, err)
			ok = false
		}
	}
	if *count {
		fmt.Fprintln(out, c.n)
	}
	out.Flush()
	if c.skipped > 0 || c.lost > 0 {
		fmt.Fprintf(stderr, "tern cat: skipped %d corrupt bytes (%d records missing)\n", c.skipped, c.lost)
	}
	if c.bad > 0 {
		fmt.Fprintf(stderr, "tern cat: %d records did not decode\n", c.bad)
	}
	if !ok || c.skipped > 0 || c.bad > 0 {
		return 1
	}
	return 0
}

type catter struct {
	ctx      context.Context
	m        *matcher.Matcher
	count    bool
	tail     bool
	unread   bool
	maxFrame int
	out      *bufio.Writer
	stderr   io.Writer

	n, bad  int
	skipped int64
	lost    uint64
	msg     *pipeline.Message
	batch   *pipeline.Batch
	buf     []byte
}

// emit decodes one native message and prints it when it matches.
func (c *catter) emit(payload []byte) {
	if c.msg == nil || c.batch.Len() > 4096 {
		c.batch = pipeline.NewBatch()
	}
	c.msg = c.batch.Add()
	if err := codec.DecodeMsgpackBytes(payload, c.msg, c.batch); err != nil {
		c.bad++
		return
	}
	if c.m != nil && !c.m.Match(c.msg) {
		return
	}
	c.n++
	if !c.count {
		c.buf = append(codec.AppendJSON(c.buf[:0], c.msg), '\n')
		c.out.Write(c.buf)
		if c.tail {
			c.out.Flush()
		}
	}
}

func (c *catter) path(p string, stdin io.Reader) error {
	if p == "-" {
		return c.frames(stdin, nil)
	}
	_, isDir, err := vfs.OS.Stat(p)
	if err != nil {
		return err
	}
	if isDir {
		return c.bufferDir(p)
	}
	if buffer.IsSegment(vfs.OS, p) {
		return c.segment(p, 0, false)
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.frames(f, f)
}

// frames reads native frames; with -tail and a file it waits for more at
// the end (and past a frame still being written).
func (c *catter) frames(r io.Reader, f *os.File) error {
	var off int64
	for {
		fr := framing.NewFrameReader(r, c.maxFrame)
		for {
			kind, payload, err := fr.Next()
			if err != nil {
				if (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && c.tail && f != nil {
					break
				}
				if errors.Is(err, io.EOF) {
					return nil
				}
				return fmt.Errorf("offset %d: %w", off, err)
			}
			off += framing.FrameHeaderLen + int64(len(payload))
			if kind == framing.FrameMessage {
				c.emit(payload)
			}
		}
		if err := c.wait(); err != nil {
			return err
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return err
		}
		r = f
	}
}

func (c *catter) wait() error {
	c.out.Flush()
	select {
	case <-c.ctx.Done():
		return c.ctx.Err()
	case <-time.After(catPoll):
		return nil
	}
}

// segment prints the records of one segment file from offset from. With
// follow it waits at the end until the segment is sealed, which it learns
// from a newer segment appearing in the directory.
func (c *catter) segment(p string, from int64, follow bool) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	r, err := buffer.NewSegmentReader(f, st.Size(), follow)
	for follow && errors.Is(err, buffer.ErrNotSegment) && st.Size() < buffer.SegmentHeaderSize {
		// tern has just created the segment: its header comes next.
		if err := c.wait(); err != nil {
			return err
		}
		if st, err = f.Stat(); err != nil {
			return err
		}
		r, err = buffer.NewSegmentReader(f, st.Size(), follow)
	}
	if err != nil {
		return err
	}
	for r.Offset() < from {
		if _, err := r.Next(); err != nil {
			break
		}
	}
	defer func() { c.skipped += r.Skipped(); c.lost += r.Lost() }()
	final := false
	for {
		rec, err := r.Next()
		if err == nil {
			c.emit(rec.Payload)
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		if !follow || final {
			return nil
		}
		if c.sealed(p) {
			// Records appended after the end just seen and before the
			// newer segment appeared are read in one last pass.
			final = true
		} else if err := c.wait(); err != nil {
			return err
		}
		if st, err := f.Stat(); err == nil {
			r.Grow(st.Size())
		}
	}
}

// sealed reports whether a segment newer than p exists: then p gets no
// more records.
func (c *catter) sealed(p string) bool {
	segs, err := buffer.Segments(vfs.OS, filepath.Dir(p))
	if err != nil {
		return true
	}
	return len(segs) > 0 && segs[len(segs)-1] != p
}

// bufferDir prints every segment of a buffer directory, oldest first; with
// -tail it keeps following new records and segments. Segments that tern
// deletes meanwhile (consumed) are skipped.
func (c *catter) bufferDir(dir string) error {
	var cur buffer.Cursor
	if c.unread {
		var ok bool
		if cur, ok = buffer.ReadLedger(vfs.OS, dir); !ok {
			fmt.Fprintln(c.stderr, "tern cat: no readable ledger: printing everything")
		}
	}
	var last uint64
	for {
		segs, err := buffer.Segments(vfs.OS, dir)
		if err != nil {
			return err
		}
		progressed := false
		for i, p := range segs {
			id, _ := buffer.ParseSegmentName(filepath.Base(p))
			if id <= last || id < cur.Segment {
				continue
			}
			var from int64
			if id == cur.Segment {
				from = cur.Offset
			}
			follow := c.tail && i == len(segs)-1
			err := c.segment(p, from, follow)
			if errors.Is(err, fs.ErrNotExist) {
				err = nil // consumed and deleted by tern meanwhile
			}
			if err != nil {
				return err
			}
			last, progressed = id, true
		}
		if !c.tail {
			return nil
		}
		if !progressed {
			if err := c.wait(); err != nil {
				return err
			}
		}
	}
}
