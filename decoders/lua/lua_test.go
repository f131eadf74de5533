package lua

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ternlog/tern/internal/sandbox"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCases(t *testing.T) { pipelinetest.RunDecoderCases(t, Factory()) }

func newDecoder(t testing.TB, file string, mod func(*Config)) *Decoder {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Filename = file
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := New(pipelinetest.Settings(t, "decoders.test"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The sshd script then the rfc1918 one, as decoder = ["sshd", "rfc1918"].
func TestChainMarksRFC1918(t *testing.T) {
	sshd := newDecoder(t, "scripts/sshd.lua", nil)
	mark := newDecoder(t, "scripts/rfc1918.lua", nil)
	for _, tc := range []struct {
		line string
		want string
	}{
		{"sshd[1]: Failed password for root from 198.51.100.23 port 46170 ssh2", `{"name":"src_ip_rfc1918","type":"bool","value":[false]}`},
		{"sshd[1]: Accepted publickey for bob from 10.1.2.27 port 49486 ssh2", `{"name":"src_ip_rfc1918","type":"bool","value":[true]}`},
		{"sshd[1]: Accepted publickey for bob from 172.20.0.1 port 49486 ssh2", `{"name":"src_ip_rfc1918","type":"bool","value":[true]}`},
		{"sshd[1]: Accepted publickey for bob from 172.32.0.1 port 49486 ssh2", `{"name":"src_ip_rfc1918","type":"bool","value":[false]}`},
		{"sshd[1]: Accepted publickey for bob from 192.168.1.1 port 49486 ssh2", `{"name":"src_ip_rfc1918","type":"bool","value":[true]}`},
		{"sshd[1]: session closed for user carol", `"fields":[{"name":"sshd.event","type":"string","value":["session_closed"]},{"name":"user","type":"string","value":["carol"]}]`},
	} {
		b := pipeline.NewBatch()
		if err := sshd.Decode(pipeline.Record{Data: []byte(tc.line)}, b); err != nil {
			t.Fatal(err)
		}
		keep, err := mark.Transform(b.Msgs[0], b)
		if err != nil || !keep {
			t.Fatalf("%s: keep=%v err=%v", tc.line, keep, err)
		}
		if got := string(codec.AppendJSON(nil, b.Msgs[0])); !strings.Contains(got, tc.want) {
			t.Errorf("%s:\nwant %s\nin   %s", tc.line, tc.want, got)
		}
	}
}

func TestWriteMessage(t *testing.T) {
	dir := t.TempDir()
	src := `
function process_message()
  write_message("Type", "shaped")
  write_message("Severity", 3)
  write_message("Timestamp", "1795161629339123456")
  write_message("Fields[keep]", "k")
  write_message("Fields[n]", 1.5, "s")
  write_message("Fields[n]", 2.5, "", 0, 1)   -- append a value
  write_message("Fields[i]", {value = "9007199254740993", value_type = 2})
  write_message("Fields[drop]", nil)          -- delete an existing field
  write_message("Fields[arr]", nil, "", 0, 1) -- delete one value
  return 0
end`
	if err := os.WriteFile(filepath.Join(dir, "w.lua"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDecoder(t, filepath.Join(dir, "w.lua"), nil)
	m := pipeline.NewMessage()
	m.Payload = "x"
	m.AddString("drop", "gone")
	m.AddField(pipeline.NewField("arr", pipeline.TypeString, "", pipeline.StringValue("a"), pipeline.StringValue("b"), pipeline.StringValue("c")))
	keep, err := d.Transform(m, pipeline.NewBatch())
	if err != nil || !keep {
		t.Fatal(keep, err)
	}
	got := string(codec.AppendJSON(nil, m))
	want := `{"uuid":"00000000-0000-0000-0000-000000000000","timestamp":"2026-11-20T08:00:29.339123456Z","type":"shaped","logger":"","severity":3,"payload":"x","env_version":"","pid":0,"hostname":"","fields":[{"name":"arr","type":"string","value":["a","c"]},{"name":"keep","type":"string","value":["k"]},{"name":"n","type":"double","value":[1.5,2.5],"representation":"s"},{"name":"i","type":"integer","value":[9007199254740993]}]}`
	if got != want {
		t.Fatalf("\nwant %s\ngot  %s", want, got)
	}
}

func TestFailurePolicies(t *testing.T) {
	rec := pipeline.Record{Data: []byte("oops")}
	t.Run("pass", func(t *testing.T) {
		d := newDecoder(t, "testdata/errors/script.lua", func(c *Config) { c.FailurePolicy = "pass" })
		b := pipeline.NewBatch()
		if err := d.Decode(rec, b); err != nil || b.Len() != 1 || b.Msgs[0].Payload != "oops" || len(b.Msgs[0].Fields) != 0 {
			t.Fatalf("pass keeps the record as a bare message: err=%v n=%d", err, b.Len())
		}
		m := pipeline.NewMessage()
		m.Payload = "oops"
		m.AddString("from", "syslog")
		keep, err := d.Transform(m, b)
		if err != nil || !keep || len(m.Fields) != 1 {
			t.Fatalf("pass keeps the message unchanged: keep=%v err=%v %v", keep, err, m.Fields)
		}
	})
	t.Run("count", func(t *testing.T) {
		d := newDecoder(t, "testdata/errors/script.lua", func(c *Config) { c.FailurePolicy = "count" })
		b := pipeline.NewBatch()
		if err := d.Decode(rec, b); err != nil || b.Len() != 0 {
			t.Fatalf("count drops the message: err=%v n=%d", err, b.Len())
		}
		if d.set.Telemetry.(*pipelinetest.Telemetry).Dropped("lua_error") != 1 {
			t.Fatal("the drop is counted")
		}
	})
	t.Run("disable", func(t *testing.T) {
		d := newDecoder(t, "testdata/errors/script.lua", func(c *Config) { c.MaxFailures = 3 })
		for range 3 {
			_ = d.Decode(rec, pipeline.NewBatch())
		}
		err := d.Decode(pipeline.Record{Data: []byte("fine")}, pipeline.NewBatch())
		if err == nil || !d.Failures().Disabled() {
			t.Fatalf("want the script disabled after 3 failures, got %v", err)
		}
	})
}

// Decoders are shared by all connections of an input.
func TestConcurrentDecode(t *testing.T) {
	d := newDecoder(t, "scripts/sshd.lua", nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				b := pipeline.NewBatch()
				line := "Failed password for root from 198.51.100.23 port 4617" + string(rune('0'+(g+i)%10)) + " ssh2"
				if err := d.Decode(pipeline.Record{Data: []byte(line)}, b); err != nil {
					t.Error(err)
					return
				}
				if v, _ := b.Msgs[0].FieldString("sshd.event"); v != "failed_password" {
					t.Errorf("got %q", v)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := d.Failures().Total(""); n != 0 {
		t.Fatalf("%d failures", n)
	}
	_ = sandbox.KindOf(nil)
}

func FuzzDecode(f *testing.F) {
	in, _ := os.ReadFile("testdata/sshd/input.txt")
	for _, l := range strings.Split(string(in), "\n") {
		f.Add([]byte(l))
	}
	f.Add([]byte("Accepted  for  from  port 1"))
	f.Add([]byte("PAM 99999999999999999999 more authentication failures; user=x rhost=y"))
	d := newDecoder(f, "scripts/sshd.lua", func(c *Config) { c.MaxFailures = 0; c.Deadline = config.Duration(time.Second) })
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		b := pipeline.NewBatch()
		if err := d.Decode(pipeline.Record{Data: data}, b); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if b.Len() != 1 || b.Msgs[0].Payload != string(data) {
			t.Fatalf("%q: the record must come back as one message", data)
		}
		if b.Msgs[0].Size() > 4*len(data)+64<<10 {
			t.Fatalf("%q: message of %d bytes", data, b.Msgs[0].Size())
		}
	})
}

func BenchmarkSSHD(b *testing.B) {
	d := newDecoder(b, "scripts/sshd.lua", nil)
	rec := pipeline.Record{Data: []byte("Nov 20 10:14:02 bastion1 sshd[4502]: Failed password for root from 198.51.100.23 port 46170 ssh2")}
	batch := pipeline.NewBatch()
	b.ReportAllocs()
	for b.Loop() {
		batch.Truncate(0)
		if err := d.Decode(rec, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// The house rules CheckKind enforces, for this directory only (the decoders
// kind test lives with the payload decoder's owner).
func TestConventions(t *testing.T) {
	pipelinetest.CheckSample(t, "decoders", Factory())
	sample, _ := os.ReadFile("sample.toml")
	readme, _ := os.ReadFile("README.md")
	if Factory().Sample != string(sample) || !strings.Contains(string(readme), "```toml\n"+string(sample)+"```") {
		t.Fatal("README.md must quote the embedded sample.toml verbatim")
	}
}

// The shipped scripts carry Heka's documentation header.
func TestScriptHeaders(t *testing.T) {
	files, _ := filepath.Glob("scripts/*.lua")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		head, _, ok := strings.Cut(string(b), "--]]")
		if !strings.HasPrefix(head, "--[[") || !ok || !strings.Contains(head, "Example") || !strings.Contains(head, `type = "lua"`) {
			t.Errorf("%s: needs a --[[ … --]] header with a description and an Example TOML section", f)
		}
	}
}

// Go-backed state in a decoder counts in the message's time.
func TestDecoderStateClock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.lua")
	if err := os.WriteFile(path, []byte(`
local w = require("tern.window").new{span = 10}
function process_message()
  write_message("Fields[n]", w:add(read_message("Payload")))
  return 0
end`), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDecoder(t, path, nil)
	var got []string
	for _, sec := range []int64{0, 5, 11} {
		m := pipeline.NewMessage()
		m.Payload = "k"
		m.Timestamp = (1795175404 + sec) * int64(time.Second)
		if _, err := d.Transform(m, pipeline.NewBatch()); err != nil {
			t.Fatal(err)
		}
		got = append(got, strconv.FormatFloat(m.Field("n", 0).Value(0).Double(), 'g', -1, 64))
	}
	if strings.Join(got, " ") != "1 2 2" {
		t.Fatalf("%v", got)
	}
}
