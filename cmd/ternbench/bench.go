package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// benchSpec is one measured run.
type benchSpec struct {
	Label   string
	Data    string        // workload file, one event a line
	Addr    string        // where the daemon listens
	Out     string        // the file the daemon writes, one event a line
	Expect  int           // lines Out must hold; 0: the lines of Data
	Timeout time.Duration // for the whole run
	Stall   time.Duration // give up when Out stops growing this long
	Log     io.Writer     // the daemon's stdout and stderr; nil: kept for errors
	Env     []string      // more of the daemon's environment (KEY=value)
	Cmd     []string
}

// benchResult is the JSON line bench prints. The window runs from the
// first byte sent to the last line seen in Out; CPU and RSS are the
// daemon's own.
type benchResult struct {
	Label      string  `json:"label"`
	Events     int     `json:"events"`
	Seconds    float64 `json:"seconds"`
	EPS        float64 `json:"eps"`
	CPUSeconds float64 `json:"cpu_s"`       // user+sys in the window
	CPUPerM    float64 `json:"cpu_s_per_M"` // CPU seconds per million events
	RSSMiB     float64 `json:"rss_mib"`     // peak RSS (VmHWM)
	StartupS   float64 `json:"startup_s"`   // start until the port accepts
	HarnessCPU float64 `json:"harness_cpu_s"`
}

func cmdBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ternbench bench -label L -data FILE -addr HOST:PORT -out FILE [flags] -- CMD ARGS…

Starts CMD with TERN_BENCH_ADDR and TERN_BENCH_OUT set to -addr and -out
(bench/w*.toml read them), waits until it accepts on -addr, streams -data
over one TCP connection, waits until -out holds as many lines (or -expect;
more is fine), stops CMD with SIGTERM and prints one JSON line: events/s,
the daemon's CPU seconds (and per million events) in that window and its
peak RSS. -out is removed first.

`)
		fs.PrintDefaults()
	}
	var s benchSpec
	fs.StringVar(&s.Label, "label", "", "name of the run in the result")
	fs.StringVar(&s.Data, "data", "", "workload file (from ternbench gen)")
	fs.StringVar(&s.Addr, "addr", "", "the daemon's TCP address (loopback)")
	fs.StringVar(&s.Out, "out", "", "the file the daemon writes, one event a line")
	fs.IntVar(&s.Expect, "expect", 0, "lines -out must hold (default: the lines of -data)")
	fs.DurationVar(&s.Timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.DurationVar(&s.Stall, "stall", 30*time.Second, "give up when -out stops growing this long")
	logPath := fs.String("log", "", "append the daemon's output to this file (default: shown only on failure)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if s.Cmd = fs.Args(); len(s.Cmd) == 0 || s.Data == "" || s.Addr == "" || s.Out == "" {
		fmt.Fprintln(stderr, "ternbench bench: need -data, -addr, -out and a command after --")
		return 2
	}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(stderr, "ternbench bench:", err)
			return 1
		}
		defer f.Close()
		s.Log = f
	}
	res, err := runBench(s)
	if err != nil {
		fmt.Fprintln(stderr, "ternbench bench:", err)
		return 1
	}
	j, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(j))
	return 0
}

// runBench runs s.Cmd and measures it. It signals only the process it
// started, by its pid: SIGTERM at the end, SIGKILL if it does not exit.
func runBench(s benchSpec) (res benchResult, err error) {
	res.Label = s.Label
	if err := os.Remove(s.Out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, err
	}
	data, err := os.ReadFile(s.Data)
	if err != nil {
		return res, err
	}
	want := s.Expect
	if want == 0 {
		want = bytes.Count(data, []byte{'\n'})
	}
	tail := &tailBuffer{max: 8 << 10}
	logw := io.Writer(tail)
	if s.Log != nil {
		logw = io.MultiWriter(s.Log, tail)
	}
	cmd := exec.Command(s.Cmd[0], s.Cmd[1:]...)
	cmd.Env = append(os.Environ(), "TERN_BENCH_ADDR="+s.Addr, "TERN_BENCH_OUT="+s.Out)
	cmd.Env = append(cmd.Env, s.Env...)
	cmd.Stdout, cmd.Stderr = logw, logw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		if stopErr := stop(cmd, exited); err == nil && stopErr != nil {
			err = stopErr
		}
		if err != nil {
			err = fmt.Errorf("%s: %w\n--- the daemon's last output:\n%s", s.Label, err, tail.String())
		}
	}()

	conn, err := dialUntil(s.Addr, exited, 30*time.Second)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	res.StartupS = time.Since(start).Seconds()

	cpu0, err := procCPU(pid)
	if err != nil {
		return res, err
	}
	self0 := selfCPU()
	t0 := time.Now()
	sendErr := make(chan error, 1)
	go func() { sendErr <- send(conn, data) }()

	seen, err := waitLines(s.Out, want, t0, s, exited, sendErr)
	elapsed := time.Since(t0)
	if err != nil {
		return res, fmt.Errorf("%w (%d of %d lines in %s)", err, seen, want, s.Out)
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return res, err
	}
	res.RSSMiB = peakRSS(pid)
	res.Events = want
	res.Seconds = elapsed.Seconds()
	res.EPS = float64(want) / res.Seconds
	res.CPUSeconds = cpu1 - cpu0
	res.CPUPerM = res.CPUSeconds / float64(max(want, 1)) * 1e6
	res.HarnessCPU = selfCPU() - self0
	return res, nil
}

// dialUntil connects to addr, retrying while the daemon starts.
func dialUntil(addr string, exited <-chan struct{}, limit time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("the daemon exited before it listened on %s", addr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("nothing listened on %s within %s: %w", addr, limit, err)
		}
	}
}

// send writes data in 64 KiB pieces, then half-closes the connection.
func send(c net.Conn, data []byte) error {
	for len(data) > 0 {
		n := min(len(data), 64<<10)
		if _, err := c.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return nil
}

// waitLines counts the newlines of path as it grows until there are at
// least want (a detection pipeline also writes its alerts).
func waitLines(path string, want int, t0 time.Time, s benchSpec, exited <-chan struct{}, sendErr <-chan error) (int, error) {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, 1<<20)
	seen, grew := 0, time.Now()
	for seen < want {
		if f == nil {
			f, _ = os.Open(path)
		}
		n := 0
		if f != nil {
			var err error
			n, err = f.Read(buf)
			if err != nil && err != io.EOF {
				return seen, err
			}
			seen += bytes.Count(buf[:n], []byte{'\n'})
		}
		if n > 0 {
			grew = time.Now()
			continue
		}
		select {
		case <-exited:
			return seen, errors.New("the daemon exited")
		case err := <-sendErr:
			if err != nil {
				return seen, fmt.Errorf("sending: %w", err)
			}
			sendErr = nil // sent: wait for the rest
		case <-time.After(5 * time.Millisecond):
		}
		switch {
		case time.Since(t0) > s.Timeout:
			return seen, fmt.Errorf("timed out after %s", s.Timeout)
		case time.Since(grew) > s.Stall:
			return seen, fmt.Errorf("the output stopped growing for %s", s.Stall)
		}
	}
	return seen, nil
}

// stop ends the daemon: SIGTERM, then SIGKILL after 30 s, by pid.
func stop(cmd *exec.Cmd, exited <-chan struct{}) error {
	select {
	case <-exited:
		return nil
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		<-exited
		return nil
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
		return errors.New("the daemon ignored SIGTERM for 30s and was killed")
	}
}

// procCPU is a process's user+sys CPU seconds, all threads, from
// /proc/PID/stat (utime and stime, in USER_HZ = 100 ticks a second).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: count fields after its ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (utime + stime) / 100, nil
}

// peakRSS is the process's peak resident set (VmHWM) in MiB.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// selfCPU is this process's user+sys CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
