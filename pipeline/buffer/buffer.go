package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/queue"
	"github.com/ternlog/tern/pipeline/vfs"
)

// Full actions and sync policies ([outputs.x.buffering] keys, Heka's names).
const (
	FullBlock      = "block"
	FullDropNewest = "drop_newest"
	FullShutdown   = "shutdown"
	SyncAlways     = "always"
	SyncInterval   = "interval"
)

// ErrShutdown is returned by Push on a full buffer with full_action =
// "shutdown": the entry is refused (its source is told to offer it again)
// and Options.Shutdown has been called.
var ErrShutdown = errors.New("buffer full: shutting down (full_action = \"shutdown\")")

// Options configure a Buffer.
type Options struct {
	// MaxBufferSize caps the bytes of the segment files plus what waits to
	// be written.
	MaxBufferSize int64
	// MaxFileSize is the size at which a segment is sealed and the next
	// one started (a single larger record gets a segment of its own).
	MaxFileSize int64
	// FullAction is what Push does at MaxBufferSize: FullBlock waits,
	// FullDropNewest refuses (the engine counts and acknowledges the
	// drop), FullShutdown refuses and calls Shutdown.
	FullAction string
	// Sync is SyncAlways (entries are acknowledged after fsync; pushes that
	// arrive while one fsync runs share the next) or SyncInterval
	// (acknowledged after write(2): safe across a crash of tern, and across
	// a crash of the machine except for the last SyncInterval).
	Sync string
	// SyncInterval is the fsync period with SyncInterval, and how often
	// the reader's cursor is made durable with either policy.
	SyncInterval time.Duration
	// FS is the filesystem; default vfs.OS.
	FS vfs.FS
	// Shutdown is called once when the buffer fills with FullShutdown.
	Shutdown func()
}

// OptionsFrom maps an output's [name.buffering] table.
func OptionsFrom(b config.Buffering) Options {
	return Options{
		MaxBufferSize: int64(b.MaxBufferSize), MaxFileSize: int64(b.MaxFileSize),
		FullAction: b.FullAction, Sync: b.Sync, SyncInterval: b.SyncInterval.D(),
	}
}

// Validate checks the options; keys are those of [name.buffering].
func (o Options) Validate() error {
	var errs []error
	switch o.FullAction {
	case FullBlock, FullDropNewest, FullShutdown:
	default:
		errs = append(errs, fmt.Errorf("full_action: must be block, drop_newest or shutdown, not %q", o.FullAction))
	}
	switch o.Sync {
	case SyncAlways, SyncInterval:
	default:
		errs = append(errs, fmt.Errorf("sync: must be always or interval, not %q", o.Sync))
	}
	if o.MaxFileSize < 1<<10 {
		errs = append(errs, errors.New("max_file_size: must be at least 1KiB"))
	}
	if o.MaxBufferSize < o.MaxFileSize {
		errs = append(errs, errors.New("max_buffer_size: must be at least max_file_size"))
	}
	if o.SyncInterval <= 0 {
		errs = append(errs, errors.New("sync_interval: must be positive"))
	}
	return errors.Join(errs...)
}

// Buffer is a disk-backed queue.Queue for one output. See the package
// comment for the format and the guarantees.
type Buffer struct {
	dir   string
	opt   Options
	fs    vfs.FS
	log   *slog.Logger
	set   pipeline.Settings
	met   metrics
	pmax  int64 // bytes waiting for the flusher before Push waits
	limit *logLimiter
	// Backoff between write attempts on a failing disk.
	retryMin, retryMax time.Duration

	mu         sync.Mutex
	opened     bool
	closed     bool
	segs       []*segment // on disk, ascending ids; the last may be the writer's
	nextID     uint64
	nextSeq    uint64 // seq of the next record pushed
	pend       []byte // records pushed, not yet taken by the flusher
	owners     []ownerMark
	diskBytes  int64 // segment files plus pending records: what the cap bounds
	unconsumed int64 // bytes not yet committed by the reader: Bytes()
	ioFailing  bool  // the flusher's last attempt failed
	// Record counts for Len: pushed by this process, made readable, read
	// back from segments this process created; and an estimate of what
	// recovered segments hold unread (exact counts would need a scan of
	// every segment at startup).
	pushRecs, visRecs, readNew int64
	recovUnread                int64
	recovLastID                uint64 // segments up to this id were recovered
	recovering                 bool   // the reader has not finished them
	rollReq                    bool   // seal the writer's segment so consumed space can go
	dataCh                     chan struct{}
	kick                       chan struct{}
	flushDone                  chan struct{}
	stopOnce                   sync.Once
	lock                       io.Closer
	// waiters are the pushes blocked on a full buffer (or on pmax), oldest
	// first. Room goes to them in that order and a new push queues behind
	// them: with a broadcast whichever goroutine ran first won, and Go runs
	// the one woken last first, so the oldest could starve for seconds (one
	// Kafka partition stalled behind the others).
	waiters []*waiter

	// Reader state, guarded by mu; rmu serialises Next.
	rmu      sync.Mutex
	rseg     *segment
	roff     int64
	rprevID  uint64 // id of the last segment the reader left
	rseq     uint64 // seq the next record should carry; 0 before any is known
	rsc      *scanner
	rscSeg   *segment
	rbytes   int64 // bytes the reader has passed, for lease accounting
	leases   []*lease
	cur      Cursor // committed
	curBytes int64  // rbytes at cur

	// Ledger I/O and segment deletion, after mu when both are held.
	lmu      sync.Mutex
	led      *ledger
	lastSync time.Time
	doomed   []*segment // consumed; deleted once the ledger says so durably
}

var _ queue.Queue = (*Buffer)(nil)

// segment is one segment file.
type segment struct {
	id, firstSeq uint64
	size         int64 // bytes in the file (written, header included)
	visible      int64 // bytes the reader may read
	synced       int64 // bytes known durable (flusher only)
	sealed       bool  // nothing more will be appended
	wf           vfs.File
	rf           vfs.File
}

type ownerMark struct {
	o   queue.Owner
	end uint64 // the entry's records are those with seq < end
}

// New returns a buffer in dir. It does no I/O: Open recovers the directory
// and starts the writer; until then the buffer is only good for `tern
// check`.
func New(dir string, opt Options, set pipeline.Settings) (*Buffer, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if opt.FS == nil {
		opt.FS = vfs.OS
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if set.Telemetry == nil {
		set.Telemetry = pipeline.NopTelemetry{}
	}
	b := &Buffer{
		dir: dir, opt: opt, fs: opt.FS, log: set.Logger, set: set, met: newMetrics(set),
		pmax:   min(max(opt.MaxBufferSize/4, 1<<20), 16<<20),
		limit:  &logLimiter{every: 10 * time.Second, last: map[string]time.Time{}},
		dataCh: make(chan struct{}), kick: make(chan struct{}, 1),
		flushDone: make(chan struct{}),
		retryMin:  50 * time.Millisecond, retryMax: time.Second,
	}
	return b, nil
}

// Dir is the buffer's directory.
func (b *Buffer) Dir() string { return b.dir }

// Durable reports that what this queue holds survives a restart (the
// engine words its shutdown log by it).
func (b *Buffer) Durable() bool { return true }

func (b *Buffer) path(id uint64) string { return filepath.Join(b.dir, SegmentName(id)) }

func join(dir, name string) string { return filepath.Join(dir, name) }

// notify closes and replaces a broadcast channel; mu is held.
func notify(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}

// waiter is a push blocked in line.
type waiter struct {
	recs  []byte
	msgs  int
	owner queue.Owner
	wake  chan struct{} // buffered: admitted, or look again
	in    bool          // admitted by admitWaiting; mu guards
}

func (w *waiter) signal() {
	select {
	case w.wake <- struct{}{}:
	default: // already told
	}
}

// blocked reports whether a push of n bytes must wait or be refused: the
// buffer is full, or the flusher is pmax behind. mu is held.
func (b *Buffer) blocked(n int64) (full, slow bool) {
	full = b.diskBytes+n+SegmentHeaderSize > b.opt.MaxBufferSize && b.unconsumed > 0
	slow = int64(len(b.pend)) >= b.pmax
	return full, slow
}

// admitWaiting lets blocked pushes in, oldest first, as long as they fit,
// doing their push for them; the head that does not fit is woken to look
// again (it asks for a roll, or gives up per full_action). Called wherever
// room may have freed; mu is held. Admitting them here, in one go, keeps
// group commit: woken one after another to let themselves in, they
// trickled into separate rounds (two to three times the fsyncs, measured).
func (b *Buffer) admitWaiting() {
	k := 0
	for k < len(b.waiters) {
		w := b.waiters[k]
		if full, slow := b.blocked(int64(len(w.recs))); b.closed || full || slow {
			break
		}
		b.admit(w.recs, w.msgs, w.owner)
		w.in = true
		k++
	}
	if k > 0 {
		// Kicked before the pushers are woken: Go runs the goroutine
		// readied last first, so they push again before the flusher takes
		// pend and share its round (the other order measured 1.7 times
		// the fsyncs with 6 pushers on a full buffer).
		b.wakeFlusher()
	}
	for _, w := range b.waiters[:k] {
		w.signal()
	}
	if k < len(b.waiters) {
		b.waiters[k].signal()
	}
	clear(b.waiters[:k])
	b.waiters = b.waiters[k:]
}

// leave takes w out of the line; the next may fit now. mu is held.
func (b *Buffer) leave(w *waiter) {
	if w == nil {
		return
	}
	if i := slices.Index(b.waiters, w); i >= 0 {
		b.waiters = slices.Delete(b.waiters, i, i+1)
	}
	b.admitWaiting()
}

func (b *Buffer) wakeFlusher() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

var scratchPool = sync.Pool{New: func() any { p := make([]byte, 0, 64<<10); return &p }}

// encode appends a record (seq and CRC left blank) per message.
func encode(dst []byte, msgs []*pipeline.Message) []byte {
	for _, m := range msgs {
		start := len(dst)
		dst = append(dst, make([]byte, RecordHeaderSize)...)
		dst = codec.AppendMsgpack(dst, m)
		binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-RecordHeaderSize))
	}
	return dst
}

// Push writes e's messages to the buffer. It returns once they are handed
// to the writer; e.Owner.Done follows once they are durable (SyncAlways) or
// written (SyncInterval), Abandon if that never happens. Pushes that wait
// for room (FullBlock, or the writer behind by pmax) get in in the order
// they started waiting.
func (b *Buffer) Push(ctx context.Context, e *queue.Entry) error {
	return b.push(ctx, e, true)
}

// PushOverflow pushes without waiting: the engine uses it for dead letters
// raised by output runners, which must not block on a full buffer (the
// runner may be this buffer's own). A full buffer gives queue.ErrFull.
func (b *Buffer) PushOverflow(e *queue.Entry) error {
	return b.push(context.Background(), e, false)
}

func (b *Buffer) push(ctx context.Context, e *queue.Entry, wait bool) error {
	if len(e.Msgs) == 0 {
		if e.Owner != nil {
			e.Owner.Done()
		}
		return nil
	}
	sp := scratchPool.Get().(*[]byte)
	recs := encode((*sp)[:0], e.Msgs)
	defer func() {
		if cap(recs) <= 1<<20 {
			*sp = recs[:0]
			scratchPool.Put(sp)
		}
	}()
	n := int64(len(recs))
	b.mu.Lock()
	var w *waiter // this push's place in line while it waits
	for {
		if w != nil && w.in { // let in by whoever freed room
			b.mu.Unlock()
			return nil
		}
		if b.closed || !b.opened {
			b.leave(w)
			b.mu.Unlock()
			return queue.ErrClosed
		}
		full, slow := b.blocked(n)
		// Room goes to the oldest waiter: a push that would fit still
		// queues behind those already waiting. PushOverflow cannot wait,
		// so it takes room whenever there is some.
		first := !wait || len(b.waiters) == 0 || b.waiters[0] == w
		if !full && !slow && first {
			break
		}
		if full {
			b.rollReq = true
			b.wakeFlusher()
			switch b.opt.FullAction {
			case FullDropNewest:
				b.leave(w)
				b.mu.Unlock()
				return queue.ErrFull
			case FullShutdown:
				b.leave(w)
				b.mu.Unlock()
				b.stopOnce.Do(func() {
					b.log.Error("disk buffer full: shutting down (full_action = \"shutdown\")", "dir", b.dir, "max_buffer_size", b.opt.MaxBufferSize)
					if b.opt.Shutdown != nil {
						b.opt.Shutdown()
					}
				})
				return ErrShutdown
			}
		} else if b.ioFailing && b.opt.FullAction == FullDropNewest {
			// The disk refuses writes: shed instead of stalling inputs,
			// as the user asked.
			b.leave(w)
			b.mu.Unlock()
			return queue.ErrFull
		}
		if !wait {
			b.mu.Unlock()
			return queue.ErrFull
		}
		if w == nil {
			w = &waiter{recs: recs, msgs: len(e.Msgs), owner: e.Owner, wake: make(chan struct{}, 1)}
			b.waiters = append(b.waiters, w)
		}
		b.mu.Unlock()
		select {
		case <-w.wake:
		case <-ctx.Done():
			b.mu.Lock()
			if w.in { // too late to give up: the entry is in
				b.mu.Unlock()
				return nil
			}
			b.leave(w)
			b.mu.Unlock()
			return ctx.Err()
		}
		b.mu.Lock()
	}
	b.admit(recs, len(e.Msgs), e.Owner)
	if w != nil {
		b.leave(w) // the next in line may fit too
	}
	b.mu.Unlock()
	b.wakeFlusher()
	return nil
}

// admit appends records (seqs not yet set) of msgs messages to what the
// flusher will write; mu is held.
func (b *Buffer) admit(recs []byte, msgs int, o queue.Owner) {
	for p := 0; p < len(recs); p += recLen(recs[p:]) {
		sealRecord(recs[p:], b.nextSeq)
		b.nextSeq++
	}
	b.pushRecs += int64(msgs)
	b.pend = append(b.pend, recs...)
	b.diskBytes += int64(len(recs))
	b.unconsumed += int64(len(recs))
	if o != nil {
		b.owners = append(b.owners, ownerMark{o, b.nextSeq})
	}
}

// Bytes is the size of the records not yet committed by the reader.
func (b *Buffer) Bytes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return int(b.unconsumed)
}

// Len is the number of messages not yet leased (an estimate after a
// recovery that found lost records, until the reader passes them).
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.pushRecs - b.readNew
	if b.recovering {
		n += max(b.recovUnread, 1)
	}
	return int(max(n, 0))
}

// avail estimates the records readable now; mu held.
func (b *Buffer) avail() int {
	n := b.visRecs - b.readNew
	if b.recovering {
		n += max(b.recovUnread, 1)
	}
	return int(max(n, 0))
}

// DiskBytes is what the segment files and the pending records hold.
func (b *Buffer) DiskBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.diskBytes
}

// Close writes what is pending (owners whose records cannot be made durable
// are abandoned), stores the cursor durably and releases the directory.
// Leased but uncommitted records stay on disk and are read again next time.
func (b *Buffer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	opened := b.opened
	notify(&b.dataCh)
	for _, w := range b.waiters { // each sees closed and leaves
		w.signal()
	}
	b.mu.Unlock()
	if !opened {
		return nil
	}
	b.wakeFlusher()
	<-b.flushDone
	// The reader opens and reads segment files holding rmu only; wait for
	// a Next in progress to see closed and leave before closing them.
	b.rmu.Lock()
	defer b.rmu.Unlock()
	b.lmu.Lock()
	defer b.lmu.Unlock()
	var errs []error
	if err := b.led.writeBoth(b.committed()); err != nil {
		b.ioError("ledger", err)
		errs = append(errs, err)
	} else {
		b.deleteDoomed()
	}
	errs = append(errs, b.led.f.Close())
	b.mu.Lock()
	for _, s := range b.segs {
		s.closeFiles()
	}
	for _, s := range b.doomed {
		s.closeFiles()
	}
	b.mu.Unlock()
	if b.lock != nil {
		errs = append(errs, b.lock.Close())
	}
	return errors.Join(errs...)
}

func (b *Buffer) committed() Cursor {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur
}

func (s *segment) closeFiles() {
	if s.wf != nil {
		s.wf.Close()
		s.wf = nil
	}
	if s.rf != nil {
		s.rf.Close()
		s.rf = nil
	}
}

// ioError counts and logs (rate-limited) a failed disk operation.
func (b *Buffer) ioError(op string, err error) {
	b.met.ioErrors(1, op)
	b.set.Error("buffer_io")
	if b.limit.allow(op) {
		b.log.Error("disk buffer I/O failed; not acknowledging until it recovers", "dir", b.dir, "op", op, "err", err)
	}
}

type logLimiter struct {
	mu    sync.Mutex
	every time.Duration
	last  map[string]time.Time
}

func (l *logLimiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		return false
	}
	l.last[key] = now
	return true
}

// metrics are the buffer's own series (prefix tern_, label plugin).
type metrics struct {
	ioErrors    func(float64, ...string)
	fsyncs      func(float64, ...string)
	quarantined func(float64, ...string)
	disk        func(float64, ...string)
}

// ioOps are the operations ioError names; quarantines what is moved to
// quarantine/. Their series are created at zero with the buffer.
var (
	ioOps       = []string{"create", "write", "sync", "syncdir", "read", "remove", "ledger", "quarantine"}
	quarantines = []string{"segment", "bytes"}
)

func newMetrics(set pipeline.Settings) metrics {
	t := set.Telemetry
	m := metrics{
		ioErrors:    t.Counter("buffer_io_errors_total", "Disk buffer operations that failed, by operation.", "op"),
		fsyncs:      t.Counter("buffer_fsyncs_total", "Group commits (fsync rounds) of a disk buffer."),
		quarantined: t.Counter("buffer_quarantined_total", "Corrupt segments or byte ranges moved to quarantine/.", "what"),
		disk:        t.Gauge("buffer_disk_bytes", "Bytes a disk buffer holds on disk."),
	}
	for _, op := range ioOps {
		m.ioErrors(0, op)
	}
	for _, w := range quarantines {
		m.quarantined(0, w)
	}
	set.DeclareDrops("torn_tail", "corrupt_record")
	set.DeclareErrors("buffer_io")
	return m
}
