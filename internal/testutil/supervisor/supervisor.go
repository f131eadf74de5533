// Package supervisor builds the real tern binary and runs it for the fault
// suite: start, kill -9, SIGTERM with a deadline, restart, and watch its
// memory. It only ever signals the processes it started, by pid.
package supervisor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// Build compiles ./cmd/tern once per test process and returns the binary.
// Under -short the test is skipped: it runs a real binary.
func Build(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the tern binary")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "tern-faults-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "tern")
		cmd := exec.Command("go", "build", "-o", buildBin, "github.com/ternlog/tern/cmd/tern")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// Cleanup removes the built binary; call it from TestMain.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Runner runs one tern configuration, again and again.
type Runner struct {
	Bin, Config string
	// Log collects the stderr of every run.
	Log string
	// Env is added to the environment of every run (KEY=value).
	Env []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	Starts  int
	Kills   int
	Terms   int
}

// NewRunner prepares runs of bin with config, logging into dir/tern.log.
func NewRunner(bin, config, dir string) *Runner {
	return &Runner{Bin: bin, Config: config, Log: filepath.Join(dir, "tern.log")}
}

// Start starts tern; it must not be running.
func (r *Runner) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return errors.New("supervisor: already running")
	}
	logf, err := os.OpenFile(r.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "---- start %d at %s\n", r.Starts+1, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(r.Bin, "run", "-config", r.Config)
	cmd.Stdout, cmd.Stderr = logf, logf
	if len(r.Env) > 0 {
		cmd.Env = append(os.Environ(), r.Env...)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	r.Starts++
	r.cmd = cmd
	done := make(chan struct{})
	r.done = done
	go func() {
		err := cmd.Wait()
		logf.Close()
		r.mu.Lock()
		r.waitErr = err
		r.mu.Unlock()
		close(done)
	}()
	return nil
}

// Pid is the running process's id (0 when stopped).
func (r *Runner) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (r *Runner) Running() bool {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to go.
func (r *Runner) Kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	r.mu.Lock()
	r.cmd, r.done = nil, nil
	r.Kills++
	r.mu.Unlock()
}

// Term sends SIGTERM and waits up to timeout for the exit, then kills. It
// returns the exit code (-1 when it had to kill) and how long it took.
func (r *Runner) Term(timeout time.Duration) (code int, took time.Duration) {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return 0, 0
	}
	t0 := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		code = cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		code = -1
	}
	took = time.Since(t0)
	r.mu.Lock()
	r.cmd, r.done = nil, nil
	r.Terms++
	r.mu.Unlock()
	return code, took
}

// Wait waits up to timeout for the process to exit by itself and returns
// its exit code, or -1 if it is still running.
func (r *Runner) Wait(timeout time.Duration) int {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return 0
	}
	select {
	case <-done:
		r.mu.Lock()
		r.cmd, r.done = nil, nil
		r.mu.Unlock()
		return cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		return -1
	}
}

// WaitPort waits until addr accepts TCP connections, or the process exits,
// or timeout passes.
func (r *Runner) WaitPort(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if !r.Running() {
			return fmt.Errorf("tern exited before listening on %s (log: %s)", addr, r.Tail(20))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after %v", addr, timeout)
}

// Tail returns the last n lines of the log.
func (r *Runner) Tail(n int) string {
	b, err := os.ReadFile(r.Log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogContains reports whether any run's log holds s.
func (r *Runner) LogContains(s string) bool {
	return r.LogCount(s) > 0
}

// LogCount reports how many times s occurs in the logs of all runs.
func (r *Runner) LogCount(s string) int {
	b, _ := os.ReadFile(r.Log)
	return bytes.Count(b, []byte(s))
}

// Mem is a process's memory from /proc/<pid>/status, in bytes.
type Mem struct{ RSS, HWM int64 }

// ReadMem reads VmRSS and VmHWM.
func ReadMem(pid int) (Mem, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Mem{}, err
	}
	defer f.Close()
	var m Mem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) < 1 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = n << 10
		case "VmHWM":
			m.HWM = n << 10
		}
	}
	return m, sc.Err()
}

// Sampler records a process's RSS every interval until Stop.
type Sampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	at   []time.Duration
	rss  []int64
	hwm  int64
}

// Sample starts sampling pid.
func Sample(pid int, every time.Duration) *Sampler {
	s := &Sampler{stop: make(chan struct{}), done: make(chan struct{})}
	t0 := time.Now()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if m, err := ReadMem(pid); err == nil {
				s.mu.Lock()
				s.at = append(s.at, time.Since(t0))
				s.rss = append(s.rss, m.RSS)
				s.hwm = max(s.hwm, m.HWM)
				s.mu.Unlock()
			}
			select {
			case <-t.C:
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

// Series returns the samples so far: offsets from the start and RSS.
func (s *Sampler) Series() ([]time.Duration, []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.at...), append([]int64(nil), s.rss...)
}

// Stop ends sampling and returns the peak RSS (VmHWM) and the slope of RSS
// over the second half of the samples, in bytes per minute.
func (s *Sampler) Stop() (hwm int64, slopePerMin float64) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.rss)
	if n < 4 {
		return s.hwm, 0
	}
	xs, ys := s.at[n/2:], s.rss[n/2:]
	var sx, sy, sxx, sxy float64
	for i := range xs {
		x, y := xs[i].Minutes(), float64(ys[i])
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	k := float64(len(xs))
	den := k*sxx - sx*sx
	if den == 0 {
		return s.hwm, 0
	}
	return s.hwm, (k*sxy - sx*sy) / den
}

// FreePort returns a loopback address no one listens on right now.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}
