package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternlog/tern/internal/testutil/faultfs"
	"github.com/ternlog/tern/internal/testutil/testscale"
	"github.com/ternlog/tern/pipeline/pipelinetest"
	"github.com/ternlog/tern/pipeline/queue"
)

// R4: crash-consistency model test. Random sequences of Write, WaitAck,
// Read, Commit, Fault and Crash+Reopen run against the faultfs crash model
// (unsynced data and directory entries dropped or torn). The properties:
//
//   - every record whose entry was acknowledged (Owner.Done) is delivered,
//     before or after any number of crashes (recovered ⊇ acknowledged);
//   - nothing is delivered that was not written, and every payload is
//     intact (no spurious or corrupt records);
//   - between crashes, records come out in the order they went in;
//   - Reopen never fails and finishes in bounded time;
//   - once drained, Len and Bytes are zero.
//
// A failure prints its seed; TERN_BUFFER_SEED=<seed> replays one case.
func TestCrashConsistencyModel(t *testing.T) {
	cases := testscale.N(10000, 400)
	base := uint64(time.Now().UnixNano())
	if s := os.Getenv("TERN_BUFFER_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		base, cases = v, 1
	}
	var stats modelStats
	t0 := time.Now()
	for i := range cases {
		seed := base + uint64(i)
		m := &model{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x7e4))}
		if err := m.run(); err != nil {
			t.Fatalf("seed %d (replay: TERN_BUFFER_SEED=%d go test -run TestCrashConsistencyModel ./pipeline/buffer/): %v\nlog:\n%s", seed, seed, err, strings.Join(m.log, "\n"))
		}
		stats.add(m)
	}
	t.Logf("%d cases in %v: %s", cases, time.Since(t0).Round(time.Millisecond), stats)
}

type modelStats struct {
	cases, crashes, acked, delivered, dups, faults, lost int
}

func (s *modelStats) add(m *model) {
	s.cases++
	s.crashes += m.crashes
	s.acked += len(m.acked)
	s.delivered += len(m.delivered)
	s.dups += m.dups
	s.faults += m.faults
	s.lost += m.lostCounted
}

func (s modelStats) String() string {
	return fmt.Sprintf("crashes=%d acknowledged=%d delivered=%d duplicates=%d faults=%d corrupt_counted=%d",
		s.crashes, s.acked, s.delivered, s.dups, s.faults, s.lost)
}

type model struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	log   []string
	logMu sync.Mutex

	fs   *faultfs.FS
	opt  Options
	buf  *Buffer
	tel  *pipelinetest.Telemetry
	next int // next id to write

	mu        sync.Mutex
	acked     map[int]bool
	owners    []*modelOwner
	delivered map[int]int
	leases    []queue.Lease
	lastID    int // last id delivered by this buffer instance
	crashes   int
	dups      int
	faults    int
	faultOn   atomic.Int32 // remaining injected failures
	faultErr  atomic.Value // error
	freeSpace *time.Timer

	lostCounted int
}

type modelOwner struct {
	m    *model
	ids  []int
	once sync.Once
	done atomic.Bool
	end  chan struct{}
}

func (o *modelOwner) Done() {
	o.once.Do(func() {
		o.done.Store(true)
		o.m.mu.Lock()
		for _, id := range o.ids {
			o.m.acked[id] = true
		}
		o.m.mu.Unlock()
		close(o.end)
	})
}

func (o *modelOwner) Abandon() { o.once.Do(func() { close(o.end) }) }

type logWriter struct{ m *model }

func (w logWriter) Write(p []byte) (int, error) {
	w.m.logMu.Lock()
	defer w.m.logMu.Unlock()
	w.m.log = append(w.m.log, "    "+strings.TrimSpace(string(p)))
	return len(p), nil
}

func (m *model) logf(format string, args ...any) {
	m.logMu.Lock()
	defer m.logMu.Unlock()
	m.log = append(m.log, fmt.Sprintf(format, args...))
}

func (m *model) run() error {
	m.acked, m.delivered = map[int]bool{}, map[int]int{}
	m.fs = faultfs.New()
	m.opt = Options{
		MaxBufferSize: 1 << 20, MaxFileSize: int64(1+m.rng.IntN(4)) << 10, FullAction: FullBlock,
		Sync: SyncAlways, SyncInterval: time.Duration(5+m.rng.IntN(20)) * time.Millisecond,
	}
	m.fs.Fault(m.inject)
	m.logf("max_file_size=%d", m.opt.MaxFileSize)
	if err := m.reopen(); err != nil {
		return err
	}
	steps := 20 + m.rng.IntN(60)
	for range steps {
		var err error
		switch r := m.rng.IntN(100); {
		case r < 35:
			err = m.write()
		case r < 45:
			m.waitAcks(false)
		case r < 65:
			err = m.read()
		case r < 80:
			m.commit()
		case r < 86:
			m.fault()
		case r < 94:
			err = m.crash()
		default:
			m.logf("pause")
			time.Sleep(time.Duration(m.rng.IntN(3)) * time.Millisecond)
		}
		if err != nil {
			return err
		}
	}
	// Quiet phase: faults stop, everything pending settles, drain.
	m.faultOn.Store(0)
	if m.freeSpace != nil {
		m.freeSpace.Stop()
	}
	m.fs.SetCapacity(0)
	m.waitAcks(true)
	m.logf("final drain")
	for _, l := range m.leases {
		m.deliver(l)
		l.Commit()
	}
	m.leases = nil
	if err := m.drain(); err != nil {
		return err
	}
	// Recovered ⊇ acknowledged.
	var missing []int
	for id := range m.acked {
		if m.delivered[id] == 0 {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("acknowledged records never delivered: %v\nfs:\n%s", missing, m.fs)
	}
	if n, b := m.buf.Len(), m.buf.Bytes(); n != 0 || b != 0 {
		bb := m.buf
		bb.mu.Lock()
		defer bb.mu.Unlock()
		return fmt.Errorf("drained buffer reports Len %d Bytes %d (pushed %d, visible %d, read %d, recovering %v %d, last recovered id %d, reader at %d/%d after %d)",
			n, b, bb.pushRecs, bb.visRecs, bb.readNew, bb.recovering, bb.recovUnread, bb.recovLastID, segID(bb.rseg), bb.roff, bb.rprevID)
	}
	m.lostCounted = m.tel.Dropped("corrupt_record")
	return m.buf.Close()
}

// inject fails operations while a fault is armed.
func (m *model) inject(op faultfs.Op, path string) error {
	if op != faultfs.OpWrite && op != faultfs.OpSync && op != faultfs.OpSyncDir && op != faultfs.OpOpen {
		return nil
	}
	if strings.Contains(path, "/quarantine") {
		return nil
	}
	if m.faultOn.Load() > 0 && m.faultOn.Add(-1) >= 0 {
		return m.faultErr.Load().(error)
	}
	return nil
}

func (m *model) reopen() error {
	set := pipelinetest.Settings(m.t, "outputs.model")
	set.Logger = slog.New(slog.NewTextHandler(logWriter{m}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m.tel = set.Telemetry.(*pipelinetest.Telemetry)
	opt := m.opt
	opt.FS = m.fs
	b, err := New("/data/buffer/out", opt, set)
	if err != nil {
		return err
	}
	b.retryMin, b.retryMax = time.Millisecond, 4*time.Millisecond
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- b.Open() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		return errors.New("Open did not finish within 10s")
	}
	if err != nil {
		return fmt.Errorf("reopen: %w\nfs:\n%s", err, m.fs)
	}
	m.logf("reopen in %v: len=%d", time.Since(t0).Round(time.Microsecond), b.Len())
	m.buf = b
	m.lastID = -1
	return nil
}

func (m *model) write() error {
	n := 1 + m.rng.IntN(5)
	o := &modelOwner{m: m, end: make(chan struct{})}
	e := &queue.Entry{Owner: o}
	for range n {
		o.ids = append(o.ids, m.next)
		e.Msgs = append(e.Msgs, msg(m.next, 40+m.rng.IntN(300)))
		m.next++
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := m.buf.Push(ctx, e)
	m.logf("write %v: %v", o.ids, err)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil // the disk is failing; the entry was refused
		}
		return fmt.Errorf("push: %w", err)
	}
	m.owners = append(m.owners, o)
	return nil
}

// waitAcks waits for pending entries to settle (all of them when final).
func (m *model) waitAcks(final bool) {
	d := 20 * time.Millisecond
	if final {
		d = 10 * time.Second
	}
	deadline := time.After(d)
	for _, o := range m.owners {
		select {
		case <-o.end:
		case <-deadline:
			m.logf("wait acks: timed out")
			return
		}
	}
	m.logf("wait acks: all settled")
}

func (m *model) read() error {
	max := 1 + m.rng.IntN(12)
	l, err := m.buf.Next(context.Background(), max, 1<<20, 0, time.Millisecond)
	if err != nil {
		return fmt.Errorf("next: %w", err)
	}
	if l == nil {
		m.logf("read: nothing")
		return nil
	}
	if err := m.deliver(l); err != nil {
		return err
	}
	m.leases = append(m.leases, l)
	return nil
}

// deliver checks a lease's messages and records them.
func (m *model) deliver(l queue.Lease) error {
	var ids []int
	for _, msgv := range l.Msgs() {
		id, ok := msgv.FieldInt("id")
		if !ok || int(id) >= m.next || id < 0 {
			return fmt.Errorf("spurious message %+v", msgv)
		}
		want := msg(int(id), 0).Payload
		if !strings.HasPrefix(msgv.Payload, want) || strings.Trim(msgv.Payload[len(want):], "x") != "" || msgv.Timestamp != id {
			return fmt.Errorf("corrupt message %d: %q", id, msgv.Payload)
		}
		if int(id) <= m.lastID {
			return fmt.Errorf("record %d delivered after %d by the same buffer", id, m.lastID)
		}
		m.lastID = int(id)
		if m.delivered[int(id)] > 0 {
			m.dups++
		}
		m.delivered[int(id)]++
		ids = append(ids, int(id))
	}
	m.logf("read %v", ids)
	return nil
}

func (m *model) commit() {
	if len(m.leases) == 0 {
		return
	}
	k := 1 + m.rng.IntN(len(m.leases))
	for _, l := range m.leases[:k] {
		l.Commit()
	}
	m.leases = m.leases[k:]
	m.logf("commit %d leases", k)
}

func (m *model) fault() {
	m.faults++
	switch m.rng.IntN(3) {
	case 0:
		m.faultErr.Store(faultfs.EIO)
		m.faultOn.Store(int32(1 + m.rng.IntN(4)))
		m.logf("fault: EIO on the next write/sync/open ops")
	case 1:
		m.faultErr.Store(faultfs.ENOSPC)
		m.faultOn.Store(int32(1 + m.rng.IntN(4)))
		m.logf("fault: ENOSPC on the next ops")
	default:
		used := m.fs.Used()
		m.fs.SetCapacity(used + int64(m.rng.IntN(2048)) + 1)
		m.logf("fault: disk nearly full (capacity %d)", used)
		fs := m.fs
		if m.freeSpace != nil {
			m.freeSpace.Stop()
		}
		m.freeSpace = time.AfterFunc(time.Duration(1+m.rng.IntN(20))*time.Millisecond, func() { fs.SetCapacity(0) })
	}
}

func (m *model) crash() error {
	modes := []faultfs.CrashMode{faultfs.KeepNone, faultfs.KeepPrefix, faultfs.KeepSubset, faultfs.KeepAll}
	mode := modes[m.rng.IntN(len(modes))]
	m.crashes++
	m.logf("crash mode %d", mode)
	old := m.buf
	m.fs = m.fs.Crash(m.rng, mode)
	m.fs.Fault(m.inject)
	m.faultOn.Store(0)
	// The dead process: its goroutines must stop, its writes go nowhere.
	closed := make(chan struct{})
	go func() { old.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		return errors.New("Close of the crashed buffer hung")
	}
	// Settled after the crash means durable before it; the rest never will be.
	m.waitAcks(true)
	m.owners = nil
	m.leases = nil
	return m.reopen()
}

func (m *model) drain() error {
	empty := 0
	for empty < 2 {
		l, err := m.buf.Next(context.Background(), 50, 1<<20, 0, 5*time.Millisecond)
		if err != nil {
			return err
		}
		if l == nil {
			empty++
			continue
		}
		if err := m.deliver(l); err != nil {
			return err
		}
		l.Commit()
	}
	return nil
}

func segID(s *segment) uint64 {
	if s == nil {
		return 0
	}
	return s.id
}
