package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/buffer"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
	"github.com/ternlog/tern/pipeline/framing"
	"github.com/ternlog/tern/pipeline/pipelinetest"
	"github.com/ternlog/tern/pipeline/queue"
	"github.com/ternlog/tern/pipeline/vfs"
)

func catMsg(i int) *pipeline.Message {
	m := pipeline.NewMessage()
	m.UUID = [16]byte{byte(i)}
	m.Timestamp = pipelinetest.Now.UnixNano() + int64(i)
	m.Type = []string{"auth", "web"}[i%2]
	m.Logger = "lines"
	m.Hostname = "h1"
	m.Payload = fmt.Sprintf("event %d %s", i, strings.Repeat(".", 150))
	m.AddInt("n", int64(i))
	return m
}

// writeBuffer makes a buffer directory holding messages 0..n-1 in small
// segments, and commits the first `read` of them.
func writeBuffer(t *testing.T, n, read int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "buffer", "out")
	opt := buffer.Options{MaxBufferSize: 1 << 20, MaxFileSize: 1 << 10, FullAction: "block", Sync: "always", SyncInterval: time.Second}
	b, err := buffer.New(dir, opt, pipeline.Settings{Telemetry: pipeline.NopTelemetry{}})
	require.NoError(t, err)
	require.NoError(t, b.Open())
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		require.NoError(t, b.Push(context.Background(), &queue.Entry{Msgs: []*pipeline.Message{catMsg(i)}, Owner: wgOwner{&wg}}))
	}
	wg.Wait()
	for read > 0 {
		l, err := b.Next(context.Background(), read, 1<<20, 0, time.Second)
		require.NoError(t, err)
		read -= len(l.Msgs())
		l.Commit()
	}
	require.NoError(t, b.Close())
	return dir
}

type wgOwner struct{ wg *sync.WaitGroup }

func (o wgOwner) Done()    { o.wg.Done() }
func (o wgOwner) Abandon() { o.wg.Done() }

func runCat(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"cat"}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestCatBuffer(t *testing.T) {
	dir := writeBuffer(t, 6, 2)
	segs, err := buffer.Segments(vfs.OS, dir)
	require.NoError(t, err)
	require.Greater(t, len(segs), 1, "several segments")

	out, errOut, code := runCat(t, dir)
	require.Equal(t, 0, code, errOut)
	pipelinetest.Golden(t, "testdata/cat/buffer.jsonl", []byte(out))

	out, _, code = runCat(t, "-count", dir)
	assert.Equal(t, 0, code)
	assert.Equal(t, "6\n", out, "consumed records still on disk are shown unless -unread")

	out, _, _ = runCat(t, "-unread", "-count", dir)
	assert.Equal(t, "4\n", out)

	out, _, _ = runCat(t, "-match", "Type == 'auth' && Fields[n] >= 2", dir)
	assert.Equal(t, 2, strings.Count(out, "\n"))
	assert.Contains(t, out, `"payload":"event 2 `)
	assert.Contains(t, out, `"payload":"event 4 `)

	out, _, _ = runCat(t, "-count", segs[len(segs)-1])
	assert.NotEqual(t, "0\n", out, "a single segment file")
}

func TestCatFrames(t *testing.T) {
	var b []byte
	for i := range 3 {
		b = framing.AppendMessageFrame(b, catMsg(i))
	}
	b = framing.AppendFrame(b, 'A', []byte("an ack frame is skipped"))
	p := filepath.Join(t.TempDir(), "msgs.tern")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	out, errOut, code := runCat(t, p)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, 3, strings.Count(out, "\n"))
	assert.Contains(t, out, `"payload":"event 0 `)

	var stdout, stderr bytes.Buffer
	code = run([]string{"cat", "-count"}, bytes.NewReader(b), &stdout, &stderr)
	assert.Equal(t, 0, code, stderr.String())
	assert.Equal(t, "3\n", stdout.String())
}

// A corrupt record is skipped and reported; the others print; exit 1.
func TestCatCorrupt(t *testing.T) {
	dir := writeBuffer(t, 6, 0)
	segs, _ := buffer.Segments(vfs.OS, dir)
	data, err := os.ReadFile(segs[0])
	require.NoError(t, err)
	data[len(data)-5] ^= 0xff
	require.NoError(t, os.WriteFile(segs[0], data, 0o640))
	out, errOut, code := runCat(t, "-count", dir)
	assert.Equal(t, 1, code)
	assert.Equal(t, "5\n", out)
	assert.Contains(t, errOut, "corrupt bytes")
}

func TestCatErrors(t *testing.T) {
	_, errOut, code := runCat(t, "-match", "Type ==", "x")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "-match")
	_, errOut, code = runCat(t, "-tail", "a", "b")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "one PATH")
	_, errOut, code = runCat(t, filepath.Join(t.TempDir(), "missing"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no such file")
}

// -tail follows a buffer while records are added, across segments.
func TestCatTailBuffer(t *testing.T) {
	defer func(d time.Duration) { catPoll = d }(catPoll)
	catPoll = 10 * time.Millisecond
	dir := filepath.Join(t.TempDir(), "buf")
	opt := buffer.Options{MaxBufferSize: 1 << 20, MaxFileSize: 1 << 10, FullAction: "block", Sync: "always", SyncInterval: time.Second}
	b, err := buffer.New(dir, opt, pipeline.Settings{Telemetry: pipeline.NopTelemetry{}})
	require.NoError(t, err)
	require.NoError(t, b.Open())
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out pipelinetest.SyncBuffer
	done := make(chan int, 1)
	var catErr pipelinetest.SyncBuffer
	defer func() {
		if t.Failed() {
			t.Log("tern cat stderr: ", catErr.String())
		}
	}()
	go func() { done <- cat(ctx, []string{"-tail", dir}, nil, &out, &catErr) }()
	for i := range 20 {
		var wg sync.WaitGroup
		wg.Add(1)
		require.NoError(t, b.Push(context.Background(), &queue.Entry{Msgs: []*pipeline.Message{catMsg(i)}, Owner: wgOwner{&wg}}))
		wg.Wait()
	}
	assert.Eventually(t, func() bool { return strings.Count(out.String(), "\n") == 20 }, 10*time.Second, 10*time.Millisecond, out.String())
	cancel()
	assert.Equal(t, 0, <-done)
	assert.Contains(t, out.String(), `"payload":"event 19 `)
}

// -tail follows a native-framed file, including a frame written in two
// pieces.
func TestCatTailFrames(t *testing.T) {
	defer func(d time.Duration) { catPoll = d }(catPoll)
	catPoll = 10 * time.Millisecond
	p := filepath.Join(t.TempDir(), "f.tern")
	f, err := os.Create(p)
	require.NoError(t, err)
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out pipelinetest.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- cat(ctx, []string{"-tail", p}, nil, &out, &bytes.Buffer{}) }()
	frame := framing.AppendMessageFrame(nil, catMsg(1))
	_, _ = f.Write(frame[:10])
	time.Sleep(30 * time.Millisecond)
	_, _ = f.Write(frame[10:])
	_, _ = f.Write(framing.AppendMessageFrame(nil, catMsg(2)))
	assert.Eventually(t, func() bool { return strings.Count(out.String(), "\n") == 2 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	assert.Equal(t, 0, <-done)
}

// `tern check` builds disk buffers without touching the disk.
func TestCheckBufferTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "plugins.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
[tern]
data_dir = "data"

[inputs.in]
type = "stdin"
decoder = "payload"

[outputs.out]
type = "stdout"
encoder = "payload"
message_matcher = "TRUE"
use_buffering = true
[outputs.out.buffering]
max_buffer_size = "8MiB"
max_file_size = "1MiB"
sync = "always"
`), 0o644))
	var out, errOut bytes.Buffer
	code := run([]string{"check", "-config", cfg}, nil, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	_, err := os.Stat(filepath.Join(dir, "data"))
	assert.True(t, os.IsNotExist(err), "check created the data directory")
}

// When engine.New fails after a disk buffer was opened, the buffer is
// closed: its lock is released, so the next start can open it. (tern run
// checks the config before it builds the engine that opens buffers, so it
// starts nothing on this config; see TestRunRefusesWhatCheckRejects.)
func TestFailedBuildReleasesBuffers(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "plugins.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
[tern]
data_dir = "data"

[inputs.in]
type = "stdin"
decoder = ["payload", "payload"]

[outputs.out]
type = "stdout"
encoder = "payload"
message_matcher = "TRUE"
use_buffering = true
`), 0o644))
	reg := registry()
	plan, err := config.Load(cfg, reg, config.Options{})
	require.NoError(t, err)
	_, err = engine.New(plan, reg, engine.Options{NewBuffer: bufferOpener(func() {})})
	require.ErrorContains(t, err, "cannot follow another decoder")
	bdir := filepath.Join(dir, "data", "buffer", "out")
	_, err = os.Stat(bdir)
	require.NoError(t, err, "the buffer was opened before the failure")
	b, err := buffer.New(bdir, buffer.Options{MaxBufferSize: 1 << 20, MaxFileSize: 1 << 10, FullAction: "block", Sync: "always", SyncInterval: time.Second}, pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, b.Open(), "the lock of the failed build was released")
	require.NoError(t, b.Close())
}
