package tail

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// R16: checkpoint durability. The input is killed at random points while a
// writer appends and rotates (also while the input is down), then started
// again on the same data directory. A kill is simulated the way a crash
// looks from the outside: deliveries and acknowledgements stop at once, the
// checkpoint files are frozen as they are at that instant (possibly in the
// middle of a save), and Close is never called.
//
// After every kill the checkpoint must parse. Over the whole run nothing
// is missing, and a line is delivered again only if it was delivered before
// a kill and lies at or after the position that kill's checkpoint holds for
// its file: duplicates are bounded by the lines since the last checkpoint.
func TestR16CrashRestart(t *testing.T) {
	cycles := 100
	if testing.Short() {
		cycles = 20
	}
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 30)
	defer w.close()
	cfg := testConfig(filepath.Join(dir, "app.log*"))
	cfg.CheckpointInterval = config.Duration(100 * time.Millisecond)
	cfg.CheckpointLines = 100
	cfg.BatchMaxCount = 32

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			writeAt(w, 100, 3000)
			if n%3 == 2 {
				w.rotateCreate()
			}
		}
	})

	base := newSink(0, 0)
	allowed := map[int]int{} // seq -> duplicates a kill allowed
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(16, seed))
	t.Logf("seed %d", seed)
	var perKill []int
	for cycle := range cycles {
		// Many batches in flight, acknowledged far out of order.
		s := base.fork(8, 25*time.Millisecond)
		h := startInput(t, data, cfg, s)
		time.Sleep(time.Duration(10+rng.IntN(100)) * time.Millisecond)

		s.crash()
		snap := freeze(t, data)
		h.stop(false)
		s.stop()
		snap.restore(t, data)

		// The checkpoint always parses.
		c := checkpointFiles{dir: data}
		gen, files, found, problems, err := c.load()
		if err != nil || (found && gen == 0 && len(problems) > 0) {
			t.Fatalf("cycle %d: checkpoint unreadable: %v %v", cycle, err, problems)
		}
		if b, err := os.ReadFile(c.current()); err == nil {
			if _, _, err := decodeCheckpoint(b); err != nil {
				t.Fatalf("cycle %d: %s does not parse: %v", cycle, ckptName, err)
			}
		}
		n := countAllowed(w, base.oracle, files, allowed)
		perKill = append(perKill, n)

		if cycle%10 == 9 {
			// Three rotations while the input is down.
			for range 3 {
				w.write(50)
				w.rotateCreate()
			}
		}
	}
	close(stop)
	wg.Wait()

	// A last, clean run delivers everything.
	s := base.fork(3, 2*time.Millisecond)
	h := startInput(t, data, cfg, s)
	all := w.all()
	if !base.waitSeqs(0, len(all), 60*time.Second) {
		m, _ := base.report(all)
		t.Errorf("missing %d lines, first %v", len(m), head(m))
	}
	time.Sleep(300 * time.Millisecond)
	h.stop(true)
	s.stop()

	missing, _ := base.report(all)
	base.mu.Lock()
	dups, excess := 0, []string{}
	for q, n := range base.count {
		if n > 1 {
			dups += n - 1
			if n-1 > allowed[q] {
				excess = append(excess, fmt.Sprintf("seq %d delivered %d times, %d allowed", q, n, 1+allowed[q]))
			}
		}
	}
	base.mu.Unlock()
	maxKill := 0
	for _, n := range perKill {
		maxKill = max(maxKill, n)
	}
	t.Logf("R16: %d kills, %d lines, %d rotations: missing %d, duplicates %d (largest replay window %d lines)",
		cycles, len(all), w.rotated, len(missing), dups, maxKill)
	if len(missing) > 0 {
		t.Errorf("missing %v", head(missing))
	}
	if len(excess) > 0 {
		t.Errorf("%d lines duplicated beyond the checkpoint bound, e.g. %s", len(excess), excess[0])
	}
}

// countAllowed adds to allowed the lines a restart after this kill may
// deliver again: those delivered so far that start at or after the
// checkpointed position of their file. It returns how many there are.
func countAllowed(w *logWriter, o *oracle, files []fileRecord, allowed map[int]int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	pos := map[int]int64{} // writer generation -> checkpointed offset
	for _, r := range files {
		fp, _ := parseHash(r.FP)
		for g, content := range w.gens {
			if int64(len(content)) >= r.FPLen && sum16(content[:r.FPLen]) == fp && r.Offset > pos[g] {
				pos[g] = r.Offset
			}
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for q, c := range o.count {
		if c > 0 && w.offOf[q] >= pos[w.genOf[q]] {
			allowed[q]++
			n++
		}
	}
	return n
}

// frozen holds the checkpoint files as they were at one instant.
type frozen map[string][]byte

func freeze(t *testing.T, dir string) frozen {
	f := frozen{}
	for _, n := range []string{ckptName, ckptName + ".prev", ckptName + ".tmp"} {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			f[n] = b
		}
	}
	return f
}

func (f frozen) restore(t *testing.T, dir string) {
	for _, n := range []string{ckptName, ckptName + ".prev", ckptName + ".tmp"} {
		p := filepath.Join(dir, n)
		if b, ok := f[n]; ok {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		} else {
			os.Remove(p)
		}
	}
}

// A save interrupted at each of its steps leaves a checkpoint that loads,
// at the previous or the new generation, never nothing.
func TestCheckpointCrashMidSave(t *testing.T) {
	for _, step := range []string{"open", "synced", "kept"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			c := checkpointFiles{dir: dir}
			rec := func(off int64) []fileRecord {
				return []fileRecord{{FP: strings.Repeat("ab", 16), FPLen: 10, Offset: off, Anchor: strings.Repeat("cd", 16)}}
			}
			if err := c.store(encodeCheckpoint(1, rec(100))); err != nil {
				t.Fatal(err)
			}
			if err := c.store(encodeCheckpoint(2, rec(200))); err != nil {
				t.Fatal(err)
			}
			saveHook = func(s string) bool { return s == step }
			err := c.store(encodeCheckpoint(3, rec(300)))
			saveHook = nil
			if err != nil {
				t.Fatal(err)
			}
			gen, files, _, _, err := c.load()
			if err != nil || gen < 2 || len(files) != 1 || files[0].Offset != int64(gen)*100 {
				t.Fatalf("after a crash at %q: generation %d, files %+v, err %v", step, gen, files, err)
			}
		})
	}
}

// A damaged checkpoint falls back to the previous generation; with both
// damaged, the read_from policy applies, with an ERROR log.
func TestCheckpointFallback(t *testing.T) {
	setup := func(t *testing.T) (dir, data string, w *logWriter) {
		dir, data = t.TempDir(), t.TempDir()
		w = newLogWriter(t, dir, "app.log", 20)
		w.write(50)
		s := newSink(0, 0)
		cfg := testConfig(filepath.Join(dir, "*.log"))
		h := startInput(t, data, cfg, s)
		if !s.waitSeqs(0, 50, 10*time.Second) {
			t.Fatal("timeout")
		}
		h.stop(true)
		gen50, err := os.ReadFile(filepath.Join(data, ckptName)) // all 50 lines
		if err != nil {
			t.Fatal(err)
		}
		w.write(50)
		h = startInput(t, data, cfg, s)
		if !s.waitSeqs(0, 100, 10*time.Second) {
			t.Fatal("timeout")
		}
		h.stop(true)
		// The previous generation is the one with 50 lines.
		if err := os.WriteFile(filepath.Join(data, ckptName+".prev"), gen50, 0o600); err != nil {
			t.Fatal(err)
		}
		w.write(10)
		return dir, data, w
	}
	damage := map[string]func([]byte) []byte{
		"empty":     func([]byte) []byte { return nil },
		"zeros":     func(b []byte) []byte { return make([]byte, len(b)) },
		"truncated": func(b []byte) []byte { return b[:len(b)/2] },
		"garbage":   func(b []byte) []byte { return []byte("{\"files\":[]}\n") },
		"bitflip": func(b []byte) []byte {
			c := append([]byte(nil), b...)
			c[len(c)-5] ^= 0x20
			return c
		},
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			dir, data, w := setup(t)
			defer w.close()
			p := filepath.Join(data, ckptName)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, f(b), 0o600)
			s := newSink(0, 0)
			h := startInput(t, data, testConfig(filepath.Join(dir, "*.log")), s)
			if !s.waitSeqs(100, 110, 10*time.Second) {
				t.Fatal("timeout")
			}
			time.Sleep(200 * time.Millisecond)
			h.stop(true)
			// The previous generation holds 50 lines: 50..109 come again.
			missing, dups := s.report(seqs(110)[50:])
			if len(missing)+len(dups) > 0 {
				t.Fatalf("missing %v duplicates %v", head(missing), head(dups))
			}
			if n := s.totalDelivered(); n != 60 {
				t.Fatalf("delivered %d lines, want the 60 after the previous generation", n)
			}
		})
	}
	for _, readFrom := range []string{"beginning", "end"} {
		t.Run("both_damaged_"+readFrom, func(t *testing.T) {
			dir, data, w := setup(t)
			defer w.close()
			for _, n := range []string{ckptName, ckptName + ".prev"} {
				os.WriteFile(filepath.Join(data, n), []byte("\x00\x00\x00"), 0o600)
			}
			var logs strings.Builder
			cfg := testConfig(filepath.Join(dir, "*.log"))
			cfg.ReadFrom = readFrom
			s := newSink(0, 0)
			set := pipelinetest.Settings(t, "inputs.tail")
			set.DataDir = data
			set.Now = time.Now
			set.Logger = newTextLogger(&logs)
			in, _ := New(set, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- in.Run(ctx, s) }()
			if readFrom == "beginning" {
				if !s.waitSeqs(0, 110, 10*time.Second) {
					t.Fatal("timeout")
				}
			} else {
				waitFor(t, func() bool { return len(in.snapshot()) == 1 }, "first scan")
				appendFile(t, w.path(), string(w.line(110)))
				if !s.waitSeqs(110, 111, 10*time.Second) {
					t.Fatal("timeout")
				}
				if n := s.totalDelivered(); n != 1 {
					t.Errorf("read_from=end delivered %d lines", n)
				}
			}
			cancel()
			<-done
			in.Close(context.Background())
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "checkpoint unreadable") {
				t.Errorf("no ERROR log for the unreadable checkpoint:\n%s", logs.String())
			}
		})
	}
}

// ---- R16 with a real kill -9

// TestR16KillNine runs the input in a child process (this test binary) whose
// output appends delivered lines to a file and fsyncs before acknowledging,
// kills it with SIGKILL at random moments, and restarts it, while a writer
// keeps appending and rotating.
func TestR16KillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir, data, outDir := t.TempDir(), t.TempDir(), t.TempDir()
	out := filepath.Join(outDir, "delivered.txt")
	w := newLogWriter(t, dir, "app.log", 30)
	defer w.close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			writeAt(w, 100, 3000)
			if n%4 == 3 {
				w.rotateCreate()
			}
		}
	})
	start := func(env ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTailChildProcess$")
		cmd.Env = append(os.Environ(), "TERN_TAIL_CHILD=1", "TERN_TAIL_GLOB="+filepath.Join(dir, "app.log*"),
			"TERN_TAIL_DATA="+data, "TERN_TAIL_OUT="+out)
		cmd.Env = append(cmd.Env, env...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	kills := 10
	for i := range kills {
		cmd := start()
		time.Sleep(time.Duration(150+rand.IntN(300)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if _, _, _, problems, err := (checkpointFiles{dir: data}).load(); err != nil {
			t.Fatalf("kill %d: %v", i, err)
		} else if b, err := os.ReadFile(filepath.Join(data, ckptName)); err == nil {
			if _, _, err := decodeCheckpoint(b); err != nil {
				t.Fatalf("kill %d: checkpoint does not parse: %v (%v)", i, err, problems)
			}
		}
	}
	close(stop)
	wg.Wait()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := start("TERN_TAIL_READY=" + ready)
	all := w.all()
	deadline := time.Now().Add(60 * time.Second)
	var count map[int]int
	for {
		count = readDelivered(t, out)
		done := true
		for _, q := range all {
			if count[q] == 0 {
				done = false
				break
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The lines may all be there before the child handles SIGTERM (the
	// earlier children delivered them): wait until it does.
	for _, err := os.Stat(ready); err != nil && time.Now().Before(deadline.Add(30*time.Second)); _, err = os.Stat(ready) {
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("child after SIGTERM: %v", err)
	}
	count = readDelivered(t, out)
	missing, dups := 0, 0
	for _, q := range all {
		if count[q] == 0 {
			missing++
		}
		if count[q] > 1 {
			dups += count[q] - 1
		}
	}
	// Each kill replays at most the lines after the last checkpoint: those
	// acknowledged since (checkpoint_lines, or 1 s of them) plus those in
	// flight (a few batches).
	bound := kills * (1000 + 4*1024)
	t.Logf("R16 kill -9: %d kills, %d lines, %d rotations: missing %d, duplicates %d (bound %d)", kills, len(all), w.rotated, missing, dups, bound)
	if missing > 0 || dups > bound {
		t.Fatalf("missing %d, duplicates %d", missing, dups)
	}
}

func readDelivered(t *testing.T, path string) map[int]int {
	f, err := os.Open(path)
	if err != nil {
		return map[int]int{}
	}
	defer f.Close()
	count := map[int]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if q, ok := parseSeq(sc.Bytes()); ok {
			count[q]++
		}
	}
	return count
}

// TestTailChildProcess is the child of TestR16KillNine.
func TestTailChildProcess(t *testing.T) {
	if os.Getenv("TERN_TAIL_CHILD") != "1" {
		t.Skip("helper process")
	}
	f, err := os.OpenFile(os.Getenv("TERN_TAIL_OUT"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := DefaultConfig()
	cfg.Paths = []string{os.Getenv("TERN_TAIL_GLOB")}
	set := pipelinetest.Settings(t, "inputs.tail")
	set.DataDir = os.Getenv("TERN_TAIL_DATA")
	set.Now = time.Now
	set.Logger = newTextLogger(os.Stderr)
	in, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	if p := os.Getenv("TERN_TAIL_READY"); p != "" {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.Run(ctx, &fileSink{f: f}); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// fileSink is an output with durability: a batch is acknowledged after its
// lines are written and fsynced.
type fileSink struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
}

func (s *fileSink) Emit(ctx context.Context, recs []pipeline.Record, ack pipeline.AckFunc) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = s.buf[:0]
	for _, r := range recs {
		s.buf = append(append(s.buf, r.Data...), '\n')
	}
	if _, err := s.f.Write(s.buf); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	if ack != nil {
		ack(nil)
	}
	return nil
}
