package syslog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCases(t *testing.T) { pipelinetest.RunEncoderCases(t, Factory()) }

func newEncoder(t testing.TB, mod func(*Config)) *Encoder {
	t.Helper()
	e, _ := pipelinetest.Build(t, "encoders.syslog", DefaultConfig, mod, New)
	return e
}

func TestConfig(t *testing.T) {
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Format = "rfc5425" }, "format: must be rfc5424 or rfc3164"},
		{func(c *Config) { c.Facility = "local8" }, "facility: unknown facility"},
		{func(c *Config) { c.Facility = "24" }, "facility: unknown facility"},
		{func(c *Config) { c.Timezone = "Nowhere/Special" }, "timezone: unknown time zone"},
	} {
		cfg := DefaultConfig()
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want %q", err, c.want)
		}
	}
}

// Header fields are cut at RFC 5424's lengths and never hold a space.
func TestHeaderCaps(t *testing.T) {
	e := newEncoder(t, nil)
	m := pipeline.NewMessage()
	m.Hostname = strings.Repeat("h", 300)
	m.AddString("appname", strings.Repeat("a", 60))
	m.AddString("procid", strings.Repeat("p", 200))
	m.AddString("msgid", strings.Repeat("m", 40))
	m.AddString("sd."+strings.Repeat("i", 40)+"."+strings.Repeat("n", 40), "v")
	out, err := e.Encode(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(out), " ")
	for i, want := range []int{4, 1, 255, 48, 128, 32} {
		if i > 1 && len(parts[i]) != want {
			t.Errorf("part %d is %d bytes, want %d", i, len(parts[i]), want)
		}
	}
	if want := "[" + strings.Repeat("i", 32) + " " + strings.Repeat("n", 32) + `="v"]`; parts[6]+" "+parts[7] != want {
		t.Errorf("SD = %s %s", parts[6], parts[7])
	}
}

func benchMessage() *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "syslog"
	m.Timestamp = 1795161629339000000
	m.Severity = 5
	m.Hostname = "web-3.example.com"
	m.AddInt("facility", 20)
	m.AddString("appname", "accounts")
	m.AddString("procid", "3101")
	m.AddString("msgid", "login")
	m.AddString("sd.meta@32473.sequenceId", "1")
	m.AddString("sd.meta@32473.src", "10.1.2.32")
	m.Payload = "user bob logged in from 10.1.2.32 port 51544 with publickey ED25519"
	return m
}

func TestAllocs(t *testing.T) {
	e := newEncoder(t, nil)
	m := benchMessage()
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(1000, func() { buf, _ = e.Encode(buf[:0], m) }); n != 0 {
		t.Errorf("%v allocations per message", n)
	}
}

func BenchmarkEncode5424(b *testing.B) { benchEncode(b, nil) }

func BenchmarkEncode3164(b *testing.B) {
	benchEncode(b, func(c *Config) { c.Format = "rfc3164" })
}

func benchEncode(b *testing.B, mod func(*Config)) {
	e := newEncoder(b, mod)
	m := benchMessage()
	buf, _ := e.Encode(nil, m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	for b.Loop() {
		buf, _ = e.Encode(buf[:0], m)
	}
	stop()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// rsyslogd runs a real rsyslog on a random loopback port that writes every
// message it receives as one JSON line (%jsonmesg%) to the returned file.
func rsyslogd(t *testing.T) (addr, out string) {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Skip("rsyslogd not installed")
	}
	dir := t.TempDir()
	out = filepath.Join(dir, "out.jsonl")
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName=%q)
template(name="json" type="string" string="%%jsonmesg%%\n")
*.* action(type="omfile" file=%q template="json")
`, dir, filepath.Join(dir, "port"), out)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-iNONE", "-f", filepath.Join(dir, "rsyslog.conf"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "port")); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return "127.0.0.1:" + strings.TrimSpace(string(b)), out
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLines waits for n JSON lines in path.
func waitLines(t *testing.T, path string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var recs []map[string]any
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var r map[string]any
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("rsyslog wrote %q: %v", sc.Text(), err)
				}
				recs = append(recs, r)
			}
			f.Close()
		}
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslog wrote %d of %d messages", len(recs), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIntegrationRsyslog sends what the encoder writes to a real rsyslogd
// over TCP (RFC 5424 octet-counted, RFC 3164 LF-framed with
// escape_newlines) and checks that rsyslog sees each message once, with
// the header fields, structured data and MSG we meant.
func TestIntegrationRsyslog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts rsyslogd")
	}
	addr, out := rsyslogd(t)
	// Octet counting carries MSG byte for byte; LF framing needs escapes.
	e5424 := newEncoder(t, func(c *Config) { c.EscapeNewlines = false })
	e3164 := newEncoder(t, func(c *Config) { c.Format = "rfc3164" })

	type want struct{ host, app, procid, msgid, sd, msg, fac, sev string }
	var wants []want
	var octet, lf []byte
	for i := range 20 {
		m := benchMessage()
		m.Severity = int32(i % 8)
		m.AddString("sd.x@32473.q", fmt.Sprintf(`quote " backslash \ bracket ] %d é`, i))
		m.Payload = fmt.Sprintf("message %d with \"quotes\", ] and unicode é", i)
		if i%5 == 0 {
			m.Payload = fmt.Sprintf("message %d\nwith a second line", i)
		}
		rec, err := e5424.Encode(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		octet = append(strconv.AppendInt(octet, int64(len(rec)), 10), ' ')
		octet = append(octet, rec...)
		msg := m.Payload
		if i%5 == 0 {
			msg = strings.ReplaceAll(msg, "\n", "#012") // rsyslog escapes control characters on receive
		}
		wants = append(wants, want{"web-3.example.com", "accounts", "3101", "login",
			fmt.Sprintf(`[meta@32473 sequenceId="1" src="10.1.2.32"][x@32473 q="quote \" backslash \\ bracket \] %d é"]`, i),
			msg, "20", strconv.Itoa(i % 8)})
	}
	for i := range 10 {
		m := benchMessage()
		m.Payload = fmt.Sprintf("bsd %d\nforged line: <13>Nov 22 00:00:00 evil evil: x", i)
		rec, err := e3164.Encode(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		lf = append(append(lf, rec...), '\n')
		wants = append(wants, want{"web-3.example.com", "accounts", "3101", "-", "-",
			" " + strings.ReplaceAll(m.Payload, "\n", "#012"), "20", "5"})
	}
	for _, stream := range [][]byte{octet, lf} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(stream); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	waitLines(t, out, len(wants))
	time.Sleep(200 * time.Millisecond) // nothing more may come
	recs := waitLines(t, out, len(wants))
	if len(recs) != len(wants) {
		t.Fatalf("rsyslog wrote %d messages, %d sent", len(recs), len(wants))
	}
	byMsg := map[string]map[string]any{}
	for _, r := range recs {
		byMsg[fmt.Sprint(r["msg"])] = r
	}
	for _, w := range wants {
		r, ok := byMsg[w.msg]
		if !ok {
			t.Errorf("rsyslog has no message %q", w.msg)
			continue
		}
		got := want{fmt.Sprint(r["hostname"]), fmt.Sprint(r["app-name"]), fmt.Sprint(r["procid"]), fmt.Sprint(r["msgid"]),
			fmt.Sprint(r["structured-data"]), w.msg, fmt.Sprint(r["syslogfacility"]), fmt.Sprint(r["syslogseverity"])}
		if got != w {
			t.Errorf("rsyslog read\n%+v\nwant\n%+v", got, w)
		}
	}
}
