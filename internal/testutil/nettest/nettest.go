// Package nettest holds helpers for tests of the network plugins: running
// an input until the test ends, a real rsyslogd as a peer, a stand-in for
// a receiving tern (Router), free ports.
// Import it from tests only.
package nettest

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
)

// RunInput runs in until the test ends and waits for addr to report the
// bound address, which it returns. At cleanup it cancels Run and fails the
// test unless Run returned nil.
func RunInput(t testing.TB, in pipeline.Input, out pipeline.Emitter, addr func() net.Addr) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if a := addr(); a != nil {
			return a.String()
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatal("the input never listened")
	return ""
}

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago
// (rsyslog's imudp cannot report the port it bound).
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// Rsyslog is a real rsyslogd started for one test.
type Rsyslog struct {
	Dir     string
	TCPPort int // imtcp's port, when the config has the standard receiver
	cmd     *exec.Cmd
}

// ReceiverConf is an rsyslog config body that listens on imtcp (random
// port, written to tcp.port) and, when udpPort > 0, imudp, and writes every
// message as %jsonmesg% to out.jsonl.
func ReceiverConf(dir string, udpPort int) string {
	var b strings.Builder
	b.WriteString("module(load=\"imtcp\")\n")
	b.WriteString("input(type=\"imtcp\" address=\"127.0.0.1\" port=\"0\" listenPortFileName=\"" + filepath.Join(dir, "tcp.port") + "\")\n")
	if udpPort > 0 {
		b.WriteString("module(load=\"imudp\")\n")
		b.WriteString("input(type=\"imudp\" address=\"127.0.0.1\" port=\"" + strconv.Itoa(udpPort) + "\")\n")
	}
	b.WriteString("template(name=\"json\" type=\"string\" string=\"%jsonmesg%\\n\")\n")
	b.WriteString("*.* action(type=\"omfile\" file=\"" + filepath.Join(dir, "out.jsonl") + "\" template=\"json\")\n")
	return b.String()
}

// StartRsyslog runs rsyslogd in the foreground with the config body conf
// (built for dir, see ReceiverConf) and stops it when the test ends. The
// test is skipped when rsyslogd is not installed. When waitTCP is set it
// waits for imtcp's port file.
func StartRsyslog(t testing.TB, dir, conf string, waitTCP bool) *Rsyslog {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/rsyslogd", "/sbin/rsyslogd"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		t.Skip("rsyslogd is not installed (apt-get install rsyslog)")
	}
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "rsyslog.conf")
	full := "global(workDirectory=\"" + work + "\")\n" + conf
	if err := os.WriteFile(cfg, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-N1", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("rsyslogd rejects the config: %v\n%s\n%s", err, out, full)
	}
	cmd := exec.Command(bin, "-n", "-iNONE", "-f", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test binary
	logf, err := os.Create(filepath.Join(dir, "rsyslogd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &Rsyslog{Dir: dir, cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	if waitTCP {
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, err := os.ReadFile(filepath.Join(dir, "tcp.port"))
			if err == nil {
				if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 0 {
					r.TCPPort = p
					break
				}
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(filepath.Join(dir, "rsyslogd.log"))
				t.Fatalf("rsyslogd did not write its port file:\n%s", log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return r
}

// Messages polls out.jsonl until it holds at least n messages (or the
// timeout passes) and returns them decoded.
func (r *Rsyslog) Messages(t testing.TB, n int, timeout time.Duration) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var out []map[string]any
		if f, err := os.Open(filepath.Join(r.Dir, "out.jsonl")); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 16<<20)
			for sc.Scan() {
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatalf("rsyslog wrote a line that is not JSON: %v: %q", err, sc.Text())
				}
				out = append(out, m)
			}
			f.Close()
		}
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FormatRecords renders records for golden files, one line each: the data
// Go-quoted (every byte visible), the Source with its port masked, then
// the fields as name=value.
func FormatRecords(recs []pipeline.Record) []byte {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(strconv.Quote(string(r.Data)))
		src := r.Source
		if i := strings.LastIndexByte(src, ':'); i > 0 && strings.Contains(src, "://") {
			src = src[:i] + ":*"
		}
		b.WriteString(" source=" + src)
		for _, f := range r.Fields {
			b.WriteString(" " + f.Name + "=" + strconv.Quote(f.Value(0).Str()))
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Quiet waits until count stops changing for settle (or timeout passes):
// for golden tests that cannot know how many records to expect.
func Quiet(count func() int, settle, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	last, since := count(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(settle / 10)
		if n := count(); n != last {
			last, since = n, time.Now()
		} else if n > 0 && time.Since(since) >= settle {
			return
		}
	}
}
