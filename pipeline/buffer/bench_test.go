package buffer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/queue"
)

// BenchmarkBuffer measures events of 300 bytes through a disk buffer on the
// real filesystem: pushers that each wait for their acknowledgement before
// pushing again (as HTTP clients do), and one reader that commits what it
// reads, as the output runner does. With sync = "always" every ack follows
// an fsync; the pushers share them (group commit).
//
//	go test -run '^$' -bench Buffer -benchtime 3s ./pipeline/buffer/
func BenchmarkBuffer(b *testing.B) {
	for _, c := range []struct {
		sync            string
		pushers, perEnt int
	}{
		{SyncAlways, 1, 1}, {SyncAlways, 8, 64}, {SyncAlways, 32, 64}, {SyncInterval, 8, 64},
	} {
		b.Run(fmt.Sprintf("sync=%s/pushers=%d/entry=%d", c.sync, c.pushers, c.perEnt), func(b *testing.B) {
			benchBuffer(b, c.sync, c.pushers, c.perEnt)
		})
	}
}

func benchBuffer(b *testing.B, policy string, pushers, perEntry int) {
	opt := testOptions(nil)
	opt.Sync, opt.MaxFileSize, opt.MaxBufferSize = policy, 64<<20, 1<<30
	opt.SyncInterval = time.Second
	set := pipeline.Settings{Name: "outputs.bench", Telemetry: pipeline.NopTelemetry{}}
	buf, err := New(b.TempDir(), opt, set)
	if err != nil {
		b.Fatal(err)
	}
	if err := buf.Open(); err != nil {
		b.Fatal(err)
	}
	msgs := make([]*pipeline.Message, perEntry)
	for i := range msgs {
		msgs[i] = msg(i, 300)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			l, err := buf.Next(ctx, 1024, 4<<20, 0, 0)
			if err != nil {
				return
			}
			l.Commit()
		}
	})
	work := make(chan struct{}, 1024)
	var pushersWG sync.WaitGroup
	for range pushers {
		pushersWG.Go(func() {
			o := &chanOwner{ch: make(chan bool, 1)}
			for range work {
				if err := buf.Push(ctx, &queue.Entry{Msgs: msgs, Owner: o}); err != nil {
					b.Error(err)
					return
				}
				<-o.ch
			}
		})
	}
	b.SetBytes(int64(300 * perEntry))
	b.ReportAllocs()
	t0 := time.Now()
	n := 0
	for b.Loop() {
		work <- struct{}{}
		n++
	}
	close(work)
	pushersWG.Wait()
	el := time.Since(t0)
	b.ReportMetric(float64(n*perEntry)/el.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
	cancel()
	readers.Wait()
	buf.Close()
}

type chanOwner struct{ ch chan bool }

func (o *chanOwner) Done()    { o.ch <- true }
func (o *chanOwner) Abandon() { o.ch <- false }
