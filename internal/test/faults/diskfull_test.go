package faults

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/internal/testutil/oracle"
	"github.com/ternlog/tern/internal/testutil/testscale"
)

// R6 end to end: a real full disk. tern's data_dir is a 16 MiB tmpfs and
// its sink is down, so the disk buffer fills the disk (its own cap is
// larger). tern must neither exit nor drop: it stops acknowledging (the
// source gets 503 once ack_timeout passes) and counts I/O errors. When the
// sink comes back the buffer drains, space frees, writing resumes, and
// every acknowledged event is delivered, none corrupt. Needs root (mount);
// skipped otherwise.
func TestR6DiskFullEndToEnd(t *testing.T) {
	seed := seedFor(t)
	r := newRig(t, seed, 1024)
	if err := os.MkdirAll(r.cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", r.cfg.DataDir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("cannot mount a tmpfs for the full disk (%v)", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(r.cfg.DataDir, syscall.MNT_DETACH) })
	r.cfg.AckTimeout = "2s"
	src := oracle.New(r.gen)
	sink, o := r.sink(src, 1)
	sink.SetMode(oracle.SinkDown)
	out := defaultOutput("sink", sink.URL())
	out.MaxBuffer, out.FileSize = "64MiB", "1MiB"
	r.cfg.Outputs = []output{out}
	r.start()

	events := testscale.Process(60_000, 30_000) // 30 MiB of 1 KiB events: twice the disk
	s := r.source(src, 100, 8)
	s.Timeout = 10 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- s.Run(ctx, 0, events) }()

	// The disk fills; acknowledgements stop; tern stays up.
	deadline := time.Now().Add(60 * time.Second)
	for s.Status503.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	require.Positive(t, s.Status503.Load(), "no 503 although the disk is full")
	require.True(t, r.run.Running(), "tern exited on a full disk:\n%s", r.run.Tail(20))
	m, err := oracle.Scrape(ctx, r.cfg.Metrics)
	require.NoError(t, err)
	ioErrs := m.Sum("tern_buffer_io_errors_total", nil)
	assert.Positive(t, ioErrs, "ENOSPC not counted")
	ackedWhileFull := o.Report("").Acked
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(r.cfg.DataDir, &st))
	free := int64(st.Bavail) * st.Bsize

	// Space frees as the sink drains the buffer.
	sink.SetMode(oracle.SinkUp)
	t0 := time.Now()
	<-done
	waitDelivered(t, 3*time.Minute, o)
	r.term(10 * time.Second)
	rep := r.report(o, "R6 full disk (16 MiB tmpfs), sink down then up")
	rep.Note("acked while full %d, free bytes at the stall %d, buffer io errors %.0f, recovered and drained in %v", ackedWhileFull, free, ioErrs, time.Since(t0).Round(time.Millisecond))
	rep.Check(t, events) // refused requests are retried: duplicates counted
	assert.Equal(t, events, rep.Acked, "every event acknowledged once space came back")
	assert.Zero(t, rep.Drops["corrupt_record"])
	_ = filepath.Join
}
