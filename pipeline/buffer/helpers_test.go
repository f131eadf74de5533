package buffer

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
	"github.com/ternlog/tern/pipeline/queue"
	"github.com/ternlog/tern/pipeline/vfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// owner records the fate of one entry.
type owner struct {
	mu        sync.Mutex
	done, abd int
	ch        chan struct{}
}

func newOwner() *owner { return &owner{ch: make(chan struct{})} }

func (o *owner) Done() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done++
	if o.done+o.abd == 1 {
		close(o.ch)
	}
}

func (o *owner) Abandon() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.abd++
	if o.done+o.abd == 1 {
		close(o.ch)
	}
}

func (o *owner) state() (done, abandoned int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.done, o.abd
}

func (o *owner) wait(t testing.TB, d time.Duration) bool {
	t.Helper()
	select {
	case <-o.ch:
		return true
	case <-time.After(d):
		return false
	}
}

// msg returns a message whose payload names its id, padded to size bytes.
func msg(id int, size int) *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "test"
	m.Timestamp = int64(id)
	p := "id=" + strconv.Itoa(id) + " "
	if size > len(p) {
		p += strings.Repeat("x", size-len(p))
	}
	m.Payload = p
	m.AddInt("id", int64(id))
	return m
}

func idOf(t testing.TB, m *pipeline.Message) int {
	t.Helper()
	id, ok := m.FieldInt("id")
	require.True(t, ok, "message without id: %+v", m)
	want := msg(int(id), 0).Payload
	require.True(t, strings.HasPrefix(m.Payload, want), "payload %q does not match id %d", m.Payload, id)
	return int(id)
}

func entry(o queue.Owner, ids ...int) *queue.Entry {
	e := &queue.Entry{Owner: o}
	for _, id := range ids {
		e.Msgs = append(e.Msgs, msg(id, 64))
	}
	return e
}

func testOptions(fs vfs.FS) Options {
	return Options{
		MaxBufferSize: 64 << 20, MaxFileSize: 1 << 20, FullAction: FullBlock,
		Sync: SyncAlways, SyncInterval: 50 * time.Millisecond, FS: fs,
	}
}

func open(t testing.TB, dir string, opt Options) *Buffer {
	t.Helper()
	b, tel := openTel(t, dir, opt)
	_ = tel
	return b
}

func openTel(t testing.TB, dir string, opt Options) (*Buffer, *pipelinetest.Telemetry) {
	t.Helper()
	set := pipelinetest.Settings(t, "outputs.test")
	tel := set.Telemetry.(*pipelinetest.Telemetry)
	b, err := New(dir, opt, set)
	require.NoError(t, err)
	require.NoError(t, b.Open())
	return b, tel
}

// drain reads and commits until nothing arrives for quiet, returning ids in
// order.
func drain(t testing.TB, b *Buffer, quiet time.Duration) []int {
	t.Helper()
	var ids []int
	for {
		l, err := b.Next(context.Background(), 100, 1<<20, 0, quiet)
		require.NoError(t, err)
		if l == nil {
			return ids
		}
		for _, m := range l.Msgs() {
			ids = append(ids, idOf(t, m))
		}
		l.Commit()
	}
}

func seq(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}
