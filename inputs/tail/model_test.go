package tail

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternlog/tern/internal/testutil/testscale"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// R18 (reliability.md): a model-based test of the tail input, after
// Vector's file_watcher model tests, with restarts added. Each case is a
// random sequence of operations on a log directory (glob app.log*): write
// lines (sometimes leaving the last one unfinished), rotate by rename and
// create or by copytruncate, delete a file, truncate the live file in place,
// catch up (Read), pause, stall the output, and restart the input abruptly,
// sometimes with operations while it is down. The real input runs against
// real files; the model (logWriter's record of the file and offset of every
// line, plus the files that exist) says what must come out.
//
// Per case:
//   - missing = 0: every complete line is delivered unless the model excused
//     it because an operation destroyed it before it could be read (below);
//   - spurious = corrupt = 0: every record is a line that was written,
//     whole, with its own byte offset;
//   - duplicates only after a restart, and only of lines delivered before
//     the crash at or after the position the crash's checkpoint held for
//     their file (countAllowed, as in R16): bounded by what was not yet
//     checkpointed. The one other case is a documented limit: the copy of
//     a copytruncate shorter than fingerprint_bytes, with lines written
//     between copy and truncation (see check);
//   - every catch-up ends within 10 s while scan_interval is a minute:
//     changes are noticed through notifications or polling, never left to
//     the periodic scan;
//   - after the final clean stop, a new input delivers nothing again.
//
// Excused lines, only where the data is really gone:
//   - Truncate in place: the lines of the old content not yet delivered;
//   - Delete of a file the input does not hold open: its lines not yet
//     delivered (an open file is read to its end through its descriptor, so
//     deleting it excuses nothing);
//   - Restart: lines not yet delivered of deleted files that only the
//     crashed process held open;
//   - copytruncate: lines written between the copy and the truncation (the
//     method's own window, as in R14).
//
// Three destructive operations in four are preceded by a catch-up, so most
// lines are held to the strict property; the log reports how many lines
// were excused and how many of those were in fact lost.
//
// A restart is an in-process kill -9: deliveries and acknowledgements stop
// at once, the checkpoint files are frozen as they are at that instant
// (between saves) and restored once Run has returned, and Close is never
// called. The checkpoint uses os directly, not pipeline/vfs, so there is no
// fault layer to drop unsynced data, and a kill -9 loses none anyway (the
// page cache survives); saves torn by a crash are R16's subject.
//
// A failure prints the case's seed, its operations and the input's log;
// TERN_TAIL_SEED=<seed> replays one case (the interleaving with the input's
// goroutines is not replayed, the operations and configuration are).
func TestR18Model(t *testing.T) {
	cases := testscale.N(5000, 300)
	base := uint64(time.Now().UnixNano())
	workers := 4 // cases mostly wait on the input: run a few at once
	if s := os.Getenv("TERN_TAIL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		base, cases, workers = v, 1, 1
	}
	root := t.TempDir()
	var (
		mu     sync.Mutex
		st     modelStats
		failed atomic.Bool
	)
	t0 := time.Now()
	t.Run("cases", func(t *testing.T) {
		for w := range workers {
			t.Run(strconv.Itoa(w), func(t *testing.T) {
				t.Parallel()
				for i := w; i < cases && !failed.Load(); i += workers {
					m := runModelCase(t, base+uint64(i), root, &failed)
					mu.Lock()
					st.add(m)
					mu.Unlock()
				}
			})
		}
	})
	t.Logf("R18: %d cases in %v (base seed %d, %d at once): %s", st.cases, time.Since(t0).Round(time.Millisecond), base, workers, st)
}

// runModelCase plays one case. On a failure (also a t.Fatal in a helper)
// it stops the case's input, reports the case and tells the others to stop.
func runModelCase(t *testing.T, seed uint64, root string, failed *atomic.Bool) *tailModel {
	m := newTailModel(t, seed, root)
	defer func() {
		if t.Failed() {
			failed.Store(true)
			t.Logf("%s", m.report())
			m.abort()
		}
		m.cleanup()
	}()
	if err := m.run(); err != nil {
		t.Fatalf("%v", err) // the deferred function reports the case
	}
	return m
}

type modelStats struct {
	cases, ops, lines, restarts, rotations, copytruncates, truncations, deletes, heldDeletes, reads int
	excused, lost, dups, allowed, copyAgain                                                         int
	poll                                                                                            int
}

func (s *modelStats) add(m *tailModel) {
	s.cases++
	s.ops += m.ops
	s.lines += m.w.seq
	s.restarts += m.restarts
	s.rotations += m.rotations
	s.copytruncates += m.copytruncates
	s.truncations += m.truncations
	s.deletes += m.deletes
	s.heldDeletes += m.heldDeletes
	s.reads += m.reads
	s.excused += len(m.excused)
	s.lost += m.lost
	s.dups += m.dups
	s.allowed += m.allowedN
	s.copyAgain += m.copyAgain
	if m.cfg.Poll {
		s.poll++
	}
}

func (s modelStats) String() string {
	return fmt.Sprintf("%d operations (%d restarts, %d rotations, %d copytruncates, %d truncations, "+
		"%d deletes of which %d of open files, %d catch-ups; %d cases polling), %d lines: "+
		"missing 0 of the %d held to delivery; %d excused (destroyed before they could be read), %d of them lost; "+
		"%d duplicates, all after restarts (%d lines allowed again by the checkpoints) or of short copies (%d)",
		s.ops, s.restarts, s.rotations, s.copytruncates, s.truncations, s.deletes, s.heldDeletes, s.reads, s.poll,
		s.lines, s.lines-s.excused, s.excused, s.lost, s.dups, s.allowed, s.copyAgain)
}

// shortCopy is a copytruncate: the copy of generation gen, its size, the
// lines written between the copy and the truncation, and the restarts
// before it.
type shortCopy struct {
	gen      int
	size     int64
	window   []int
	restarts int
}

// tailModel is one case: the files, what the model expects of them, and the
// input under test. Only the test goroutine touches its fields, except
// through modelEmitter (the checks of delivered records) and w (under w.mu).
type tailModel struct {
	t         *testing.T
	seed      uint64
	rng       *rand.Rand
	dir, data string
	cfg       Config
	sinkWork  int           // the sink's workers (acknowledging out of order)
	sinkDelay time.Duration // their longest delay
	varPad    bool          // lines of random length

	w          *logWriter
	files      map[string]int // the log files that exist: path -> writer generation
	pending    []byte         // the unwritten end of the last line of the live file
	pendingSeq int            // its seq, -1 when none
	held       map[int]bool   // generations deleted while the input held them open
	excused    map[int]string // seq -> why it may be missing
	copies     []shortCopy    // what copytruncate made
	allowed    map[int]int    // seq -> duplicates the restarts allowed
	low        int            // every seq below is delivered or excused

	base    *sink // the oracle shared by every process of the case
	s       *sink // the current process's sink
	h       *harness
	em      *modelEmitter
	stalled bool
	logs    *pipelinetest.SyncBuffer
	lastIn  *Input // for the failure report

	oplog                                                                      []string
	ops, restarts, rotations, copytruncates, truncations, deletes, heldDeletes int
	reads, lost, dups, allowedN, copyAgain                                     int
}

func newTailModel(t *testing.T, seed uint64, root string) *tailModel {
	m := &tailModel{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x18)),
		files: map[string]int{}, held: map[int]bool{}, excused: map[int]string{}, allowed: map[int]int{},
		pendingSeq: -1, logs: &pipelinetest.SyncBuffer{},
	}
	var err error
	if m.dir, err = os.MkdirTemp(root, "logs"); err != nil {
		t.Fatal(err)
	}
	if m.data, err = os.MkdirTemp(root, "data"); err != nil {
		t.Fatal(err)
	}
	pick := func(vs ...int) int { return vs[m.rng.IntN(len(vs))] }
	ms := func(vs ...int) config.Duration { return config.Duration(time.Duration(pick(vs...)) * time.Millisecond) }
	c := testConfig(filepath.Join(m.dir, "app.log*"))
	c.OffsetField = "offset"
	// The periodic scan is only a safety net: every change must be noticed
	// through file notifications or polling, well before it.
	c.ScanInterval = config.Duration(time.Minute)
	c.Poll = m.rng.IntN(5) == 0
	c.PollInterval = config.Duration(50 * time.Millisecond)
	// Short fingerprints and files shorter than one: identity by content is
	// weakest there.
	c.FingerprintBytes = config.Size(pick(16, 64, 1024))
	c.CheckpointInterval = ms(10, 50, 1000)
	c.CheckpointLines = pick(1, 10, 1000)
	c.BatchMaxCount = pick(1, 3, 1024)
	if m.rng.IntN(4) == 0 {
		// Files idle for longer are closed and reopened when they grow.
		c.CloseInactive = ms(20)
	} else {
		c.CloseInactive = config.Duration(5 * time.Minute)
	}
	m.cfg = c
	m.sinkWork, m.sinkDelay = pick(0, 3), time.Duration(pick(0, 2))*time.Millisecond
	m.varPad = m.rng.IntN(2) == 0
	m.w = newLogWriter(t, m.dir, "app.log", 20)
	m.files[m.w.path()] = 0
	m.base = newSink(0, 0)
	m.logf("config: poll=%v fingerprint=%d checkpoint=%v/%d lines batch=%d close_inactive=%v workers=%d delay=%v varpad=%v",
		c.Poll, c.FingerprintBytes, c.CheckpointInterval.D(), c.CheckpointLines, c.BatchMaxCount, c.CloseInactive.D(), m.sinkWork, m.sinkDelay, m.varPad)
	return m
}

func (m *tailModel) logf(format string, args ...any) {
	m.oplog = append(m.oplog, fmt.Sprintf(format, args...))
}

func (m *tailModel) report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "R18 case seed %d (replay: TERN_TAIL_SEED=%d go test -run 'TestR18Model$' ./inputs/tail/)\noperations:\n", m.seed, m.seed)
	for _, l := range m.oplog {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	fmt.Fprintf(&b, "files:\n")
	for _, p := range slices.Sorted(maps.Keys(m.files)) {
		if fi, err := os.Stat(p); err == nil {
			_, ino, _ := fileID(fi)
			fmt.Fprintf(&b, "  %s: gen %d, %d bytes, inode %d\n", filepath.Base(p), m.files[p], fi.Size(), ino)
		}
	}
	if m.lastIn != nil {
		fmt.Fprintf(&b, "the input's entries:\n")
		for _, e := range m.lastIn.snapshot() {
			fmt.Fprintf(&b, "  %s: fp %x/%d next %d acked %d size %d inode %d open %v truncated %v\n",
				filepath.Base(e.path), e.fp[:4], e.fpLen, e.next, e.ackedOff(), e.size, e.ino, e.h != nil, e.truncated)
		}
	}
	logs := m.logs.String()
	if len(logs) > 20000 {
		logs = "...\n" + logs[len(logs)-20000:]
	}
	fmt.Fprintf(&b, "input log:\n%s", logs)
	return b.String()
}

// run plays the case: 10 to 40 random operations, then the final checks.
func (m *tailModel) run() error {
	m.start()
	for n := 10 + m.rng.IntN(31); n > 0; n-- {
		m.ops++
		if err := m.step(); err != nil {
			return err
		}
	}
	return m.finish()
}

func (m *tailModel) step() error {
	switch r := m.rng.IntN(100); {
	case r < 34:
		m.opWrite()
	case r < 42:
		m.opRotate()
	case r < 50:
		m.opCopyTruncate()
	case r < 56:
		return m.opTruncate()
	case r < 63:
		return m.opDelete()
	case r < 75:
		return m.opRead()
	case r < 84:
		d := time.Duration(m.rng.IntN(10)) * time.Millisecond
		m.logf("pause %v", d)
		time.Sleep(d) // time passing is the operation
	case r < 88:
		m.logf("stall the output")
		m.s.setHold(true)
		m.stalled = true
	default:
		return m.opRestart()
	}
	return nil
}

// ---- operations on the files

// live returns the writer generation of the live file.
func (m *tailModel) live() int { return len(m.w.gens) - 1 }

// opWrite appends 1 to 8 lines to the live file in one write; one write in
// five leaves the end of its last line for the next write (an application
// caught in the middle of a line).
func (m *tailModel) opWrite() {
	n := 1 + m.rng.IntN(8)
	w := m.w
	w.mu.Lock()
	defer w.mu.Unlock()
	g := len(w.gens) - 1
	buf := m.pending
	m.pending, m.pendingSeq = nil, -1
	first := w.seq
	for range n {
		if m.varPad {
			w.pad = strings.Repeat("x", m.rng.IntN(80))
		}
		line := w.line(w.seq)
		w.genOf[w.seq] = g
		w.offOf[w.seq] = int64(len(w.gens[g]))
		w.gens[g] = append(w.gens[g], line...)
		buf = append(buf, line...)
		w.seq++
	}
	if m.rng.IntN(5) == 0 {
		last := w.gens[g][w.offOf[w.seq-1]:]
		cut := 1 + m.rng.IntN(len(last)-1) // leave at least one byte of it
		m.pending = slices.Clone(buf[len(buf)-cut:])
		m.pendingSeq = w.seq - 1
		buf = buf[:len(buf)-cut]
	}
	if _, err := w.f.Write(buf); err != nil {
		m.t.Fatal(err)
	}
	m.logf("write seq %d..%d to gen %d (last %d bytes held back)", first, w.seq-1, g, len(m.pending))
}

// finishLine writes the held-back end of the last line: applications end
// their line before the file is rotated, truncated or deleted.
func (m *tailModel) finishLine() {
	if m.pendingSeq < 0 {
		return
	}
	m.w.mu.Lock()
	_, err := m.w.f.Write(m.pending)
	m.w.mu.Unlock()
	if err != nil {
		m.t.Fatal(err)
	}
	m.logf("finish line %d", m.pendingSeq)
	m.pending, m.pendingSeq = nil, -1
}

// opRotate renames app.log to app.log.<n> and creates a new app.log; one
// time in three the application writes a few lines to the renamed file
// before it reopens.
func (m *tailModel) opRotate() {
	m.finishLine()
	g := m.live()
	late := 0
	if m.rng.IntN(3) == 0 {
		late = 1 + m.rng.IntN(3)
	}
	m.w.rotateCreateLate(late)
	rotated := fmt.Sprintf("%s.%d", m.w.path(), m.w.rotated)
	m.files[rotated] = g
	m.files[m.w.path()] = m.live()
	m.rotations++
	m.logf("rotate (create) gen %d to %s, %d late lines", g, filepath.Base(rotated), late)
}

// opCopyTruncate copies app.log to app.log.<n> and truncates it; one time
// in four the application writes a line or two in between, which the
// method loses unless the input read them first.
func (m *tailModel) opCopyTruncate() {
	m.finishLine()
	g := m.live()
	window := 0
	if m.rng.IntN(4) == 0 {
		window = 1 + m.rng.IntN(2)
	}
	lost := m.w.copyTruncate(window)
	for _, q := range lost {
		m.excuse(q, "written between copy and truncation")
	}
	rotated := fmt.Sprintf("%s.%d", m.w.path(), m.w.rotated)
	fi, err := os.Stat(rotated)
	if err != nil {
		m.t.Fatal(err)
	}
	m.copies = append(m.copies, shortCopy{gen: g, size: fi.Size(), window: lost, restarts: m.restarts})
	m.files[rotated] = g
	m.files[m.w.path()] = m.live()
	m.copytruncates++
	m.logf("copytruncate gen %d to %s, window %v", g, filepath.Base(rotated), lost)
}

// opTruncate truncates the live file in place (an application that starts
// its log over); the writer goes on at offset 0.
func (m *tailModel) opTruncate() error {
	if err := m.maybeCatchUp(); err != nil {
		return err
	}
	m.finishLine()
	g := m.live()
	n := m.excuseUndelivered(g, "truncated before it was read")
	m.w.truncate()
	m.files[m.w.path()] = m.live()
	m.truncations++
	m.logf("truncate gen %d in place (%d lines not delivered yet)", g, n)
	return nil
}

// opDelete removes a random file; the live one is created again, empty.
func (m *tailModel) opDelete() error {
	paths := slices.Sorted(maps.Keys(m.files))
	p := paths[m.rng.IntN(len(paths))]
	if err := m.maybeCatchUp(); err != nil {
		return err
	}
	isLive := p == m.w.path()
	if isLive {
		m.finishLine()
	}
	g := m.files[p]
	held := m.inputHolds(p)
	n := 0
	if held {
		m.held[g] = true
		m.heldDeletes++
	} else {
		n = m.excuseUndelivered(g, "deleted before it was read")
	}
	m.w.mu.Lock()
	if err := os.Remove(p); err != nil {
		m.t.Fatal(err)
	}
	delete(m.files, p)
	if isLive {
		m.w.f.Close()
		m.w.open()
		m.files[p] = len(m.w.gens) - 1
	}
	m.w.mu.Unlock()
	m.deletes++
	m.logf("delete %s (gen %d, open in the input: %v, %d lines not delivered yet)", filepath.Base(p), g, held, n)
	return nil
}

// inputHolds reports whether the running input has the file open, so its
// content stays readable through the descriptor after the name is gone.
// With a short close_inactive the input may close it in between (at its
// end, but possibly just before the last lines arrived): not counted.
func (m *tailModel) inputHolds(p string) bool {
	if m.h == nil || m.cfg.CloseInactive.D() < time.Minute {
		return false
	}
	fi, err := os.Stat(p)
	if err != nil {
		m.t.Fatal(err)
	}
	dev, ino, _ := fileID(fi)
	for _, e := range m.h.in.snapshot() {
		if e.h != nil && e.dev == dev && e.ino == ino {
			return true
		}
	}
	return false
}

// excuse records that q may legitimately be missing.
func (m *tailModel) excuse(q int, why string) {
	if _, ok := m.excused[q]; !ok {
		m.excused[q] = why
	}
}

// excuseUndelivered excuses the lines of generation g not delivered yet
// and returns how many there are.
func (m *tailModel) excuseUndelivered(g int, why string) int {
	o := m.base.oracle
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for q := range m.w.seq {
		if m.w.genOf[q] == g && o.count[q] == 0 && q != m.pendingSeq {
			m.excuse(q, why)
			n++
		}
	}
	return n
}

// ---- operations on the input

func (m *tailModel) settings() pipeline.Settings {
	return pipeline.Settings{
		Name:      "inputs.tail",
		Logger:    slog.New(slog.NewTextHandler(m.logs, nil)),
		Now:       time.Now,
		Hostname:  "test-host",
		ConfigDir: "/",
		DataDir:   m.data,
		Telemetry: &pipelinetest.Telemetry{},
	}
}

func (m *tailModel) start() {
	m.s = m.base.fork(m.sinkWork, m.sinkDelay)
	m.em = &modelEmitter{m: m, next: m.s}
	m.h = startInputWith(m.t, m.settings(), m.cfg, m.em)
	m.em.in.Store(m.h.in)
	m.lastIn = m.h.in
	m.stalled = false
}

// opRead waits until the input caught up: every complete line not excused
// is delivered.
func (m *tailModel) opRead() error {
	m.reads++
	m.logf("read (catch up)")
	return m.catchUp()
}

// maybeCatchUp gives the input the chance to read everything before a
// destructive operation, three times in four.
func (m *tailModel) maybeCatchUp() error {
	if m.h == nil || m.rng.IntN(4) == 0 {
		return nil
	}
	return m.opRead()
}

func (m *tailModel) catchUp() error {
	if m.stalled {
		m.s.setHold(false)
		m.stalled = false
	}
	timeout := 10 * time.Second
	if missing := m.waitDelivered(timeout); len(missing) > 0 {
		return fmt.Errorf("after %v, %d lines not delivered, first %v (%s)", timeout, len(missing), head(missing), m.where(missing[0]))
	}
	return nil
}

// where describes a line's place for failure reports.
func (m *tailModel) where(q int) string {
	g := m.w.genOf[q]
	name := "no file"
	for p, fg := range m.files {
		if fg == g {
			name = filepath.Base(p)
		}
	}
	return fmt.Sprintf("seq %d: gen %d offset %d, now in %s, held open after deletion %v", q, g, m.w.offOf[q], name, m.held[g])
}

// waitDelivered waits until every complete line not excused was delivered
// and returns those that were not, if the timeout came first.
func (m *tailModel) waitDelivered(timeout time.Duration) []int {
	o := m.base.oracle
	deadline := time.Now().Add(timeout)
	for {
		o.mu.Lock()
		for m.low < m.w.seq && (o.count[m.low] > 0 || m.excused[m.low] != "") {
			m.low++
		}
		var missing []int
		for q := m.low; q < m.w.seq; q++ {
			if o.count[q] == 0 && m.excused[q] == "" && q != m.pendingSeq {
				missing = append(missing, q)
			}
		}
		if len(missing) == 0 {
			o.mu.Unlock()
			return nil
		}
		if o.notify == nil {
			o.notify = make(chan struct{})
		}
		ch := o.notify
		o.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			return missing
		}
		tm := time.NewTimer(left)
		select {
		case <-ch:
		case <-tm.C:
		}
		tm.Stop()
	}
}

// opRestart kills the input (in process, see TestR18Model), sometimes
// changes the files while it is down, and starts a new one on the same data
// directory.
func (m *tailModel) opRestart() error {
	if err := m.crash(); err != nil {
		return err
	}
	for k := m.rng.IntN(4); k > 0; k-- {
		m.ops++
		var err error
		switch r := m.rng.IntN(10); {
		case r < 4:
			m.opWrite()
		case r < 6:
			m.opRotate()
		case r < 7:
			m.opCopyTruncate()
		case r < 8:
			err = m.opTruncate()
		default:
			err = m.opDelete()
		}
		if err != nil {
			return err
		}
	}
	m.start()
	m.logf("start")
	return nil
}

func (m *tailModel) crash() error {
	m.restarts++
	in := m.h.in
	// Between two saves: the checkpoint as a kill -9 would leave it.
	in.saveMu.Lock()
	m.s.crash()
	snap := freeze(m.t, m.data)
	in.saveMu.Unlock()
	m.h.stop(false)
	m.s.stop()
	m.h = nil
	snap.restore(m.t, m.data)
	gen, files, found, problems, err := checkpointFiles{dir: m.data}.load()
	if err != nil || (found && gen == 0) || len(problems) > 0 {
		return fmt.Errorf("checkpoint after the crash: generation %d, %v, %v", gen, problems, err)
	}
	n := countAllowed(m.w, m.base.oracle, files, m.allowed)
	m.allowedN += n
	// Deleted files die with the descriptors of the process that held them.
	lost := 0
	for g := range m.held {
		lost += m.excuseUndelivered(g, "deleted, and held open only by a crashed process")
	}
	clear(m.held)
	m.logf("crash at checkpoint generation %d (%d lines may come again, %d lines of deleted files gone)", gen, n, lost)
	return nil
}

// finish ends the case: it finishes the last line, lets the input settle,
// stops it cleanly, checks the counts, and starts a new input that must
// deliver nothing again.
func (m *tailModel) finish() error {
	m.finishLine()
	if m.h == nil {
		m.start()
	}
	m.logf("final catch-up")
	if err := m.settle(); err != nil {
		return err
	}
	m.stopClean()
	clear(m.held)
	if err := m.check(); err != nil {
		return err
	}
	// A clean stop replays nothing: a new input delivers the new lines only.
	before := m.base.totalDelivered()
	m.start()
	m.logf("clean restart")
	first := m.w.seq
	if err := m.settle(); err != nil {
		return err
	}
	m.stopClean()
	if n := m.base.totalDelivered() - before; n != m.w.seq-first {
		var again []int
		m.base.mu.Lock()
		for _, d := range m.base.recs[before:] {
			if d.seq < first {
				again = append(again, d.seq)
			}
		}
		m.base.mu.Unlock()
		where := ""
		if len(again) > 0 {
			where = m.where(again[0])
		}
		return fmt.Errorf("after a clean stop, a new input delivered %d lines, want the %d new ones; again: %v (%s)",
			n, m.w.seq-first, again, where)
	}
	return m.check()
}

// settle writes a line, waits until everything is delivered, then until
// the input has finished the loop round that handed that line on. Every
// file the input found when it started has then been read to its end, so
// what a restart had to replay is behind it and a clean stop saves it.
func (m *tailModel) settle() error {
	m.opWrite()
	m.finishLine()
	if err := m.catchUp(); err != nil {
		return err
	}
	round := m.em.round.Load()
	deadline := time.Now().Add(15 * time.Second)
	for m.h.in.rounds.Load() <= round {
		if time.Now().After(deadline) {
			return fmt.Errorf("the input did not finish its loop round")
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// check compares what was delivered with the model.
func (m *tailModel) check() error {
	if bad := m.em.bad(); len(bad) > 0 {
		return fmt.Errorf("%d spurious or corrupt records, first: %s", len(bad), bad[0])
	}
	o := m.base.oracle
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.badLines) > 0 {
		return fmt.Errorf("%d records that are not lines written, first %q", len(o.badLines), o.badLines[0])
	}
	m.lost, m.dups = 0, 0
	// The documented limit of copytruncate with a file shorter than
	// fingerprint_bytes: if the input read lines written between the copy
	// and the truncation, its fingerprint of the original grew past the
	// copy's end, and the copy, matching nothing, is read again: once, and
	// once more after each restart that came before the copy's own
	// position was saved.
	again := map[int]int{}
	for _, c := range m.copies {
		if len(c.window) == 0 || c.size >= int64(m.cfg.FingerprintBytes) {
			continue
		}
		for q := range m.w.seq {
			if m.w.genOf[q] == c.gen && m.w.offOf[q] < c.size {
				again[q] += 1 + m.restarts - c.restarts
			}
		}
	}
	m.copyAgain = 0
	for q, n := range again {
		if d := o.count[q] - 1 - m.allowed[q]; d > 0 {
			m.copyAgain += min(d, n)
		}
	}
	var missing, excess []int
	for q := range m.w.seq {
		n := o.count[q]
		switch {
		case n == 0 && m.excused[q] != "":
			m.lost++
		case n == 0:
			missing = append(missing, q)
		case n-1 > m.allowed[q]+again[q]:
			excess = append(excess, q)
		}
		if n > 1 {
			m.dups += n - 1
		}
	}
	for q := range o.count {
		if q < 0 || q >= m.w.seq {
			return fmt.Errorf("seq %d delivered, never written", q)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d lines missing, first %v (%s)", len(missing), head(missing), m.where(missing[0]))
	}
	if len(excess) > 0 {
		q := excess[0]
		var from []string
		for _, d := range o.recs {
			if d.seq == q {
				from = append(from, filepath.Base(d.source))
			}
		}
		return fmt.Errorf("%d lines duplicated beyond what the restarts allow, first %v: seq %d delivered %d times (from %v), %d allowed (%s)",
			len(excess), head(excess), q, o.count[q], from, 1+m.allowed[q]+again[q], m.where(q))
	}
	return nil
}

// stopClean stops the input the way the engine does: Run ends, the last
// acknowledgements come in, then Close saves the positions.
func (m *tailModel) stopClean() {
	m.h.stop(false)
	m.s.stop()
	if err := m.h.in.Close(context.Background()); err != nil {
		m.t.Error(err)
	}
	m.h = nil
}

// abort stops whatever still runs after a failure.
func (m *tailModel) abort() {
	if m.h != nil {
		m.s.crash()
		m.h.stop(false)
		m.s.stop()
		m.h = nil
	}
	m.w.close()
}

func (m *tailModel) cleanup() {
	m.w.close()
	os.RemoveAll(m.dir)
	os.RemoveAll(m.data)
}

// modelEmitter checks every record against the model before the sink
// counts it: a line written, whole, at the offset it was written at.
type modelEmitter struct {
	m     *tailModel
	next  pipeline.Emitter
	in    atomic.Pointer[Input]
	round atomic.Int64 // the input's loop round at the last Emit

	mu      sync.Mutex
	corrupt []string
}

func (e *modelEmitter) Emit(ctx context.Context, recs []pipeline.Record, ack pipeline.AckFunc) error {
	if in := e.in.Load(); in != nil {
		e.round.Store(in.rounds.Load())
	}
	w := e.m.w
	w.mu.Lock()
	for _, r := range recs {
		if msg := checkRecord(w, r); msg != "" {
			e.mu.Lock()
			e.corrupt = append(e.corrupt, msg)
			e.mu.Unlock()
		}
	}
	w.mu.Unlock()
	return e.next.Emit(ctx, recs, ack)
}

func (e *modelEmitter) bad() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.corrupt
}

// checkRecord returns what is wrong with r, if anything; w.mu is held.
func checkRecord(w *logWriter, r pipeline.Record) string {
	q, ok := parseSeq(r.Data)
	if !ok || q < 0 || q >= w.seq {
		return fmt.Sprintf("%q from %s: never written", r.Data, r.Source)
	}
	g, off := w.genOf[q], w.offOf[q]
	want := w.gens[g][off:]
	want = want[:bytes.IndexByte(want, '\n')]
	if !bytes.Equal(r.Data, want) {
		return fmt.Sprintf("%q from %s: want %q", r.Data, r.Source, want)
	}
	for _, f := range r.Fields {
		if f.Name == "offset" && f.Value(0).Int() != off {
			return fmt.Sprintf("seq %d from %s: offset %d, written at %d", q, r.Source, f.Value(0).Int(), off)
		}
	}
	return ""
}
