package luamem

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ternlog/tern/internal/testutil/oracle"
	"github.com/ternlog/tern/internal/testutil/supervisor"
)

func TestMain(m *testing.M) {
	defer supervisor.Cleanup()
	goleak.VerifyTestMain(m)
}

const config = `
[tern]
data_dir = %q
metrics_address = %q
shutdown_timeout = "10s"

[inputs.lines]
type = "tcp"
address = %q
decoder = "line"

[decoders.line]
type = "payload"
message_type = "line"

[filters.bomb]
type = "lua"
message_matcher = "Type == 'line'"
filename = "bomb.lua"
%s
[outputs.out]
type = "file"
message_matcher = "Type == 'line'"
encoder = "payload"
path = %q
`

// The two bombs, each in a router of its own with the default
// memory_limit (64 MiB): 30,000 lines go to a file output and to the bomb.
// The bomb is stopped by its memory limit, counted and disabled; every line
// reaches the file; the router's peak RSS (VmHWM) stays under the limit
// plus 64 MiB.
//
// What a script holds stays within its limit but for one step a VM
// instruction takes (the global table's array doubling from 16 to 32 MiB
// puts it 8 MiB over), and Go's collector lets the heap grow to twice what
// is live: without a soft limit the growing-global router peaked at 146 to
// 156 MiB. So the router sets Go's soft memory limit itself from what the
// config allows (the script's memory_limit, its queues, 8 MiB: [tern]
// memory_limit in README.md); TERN_LUAMEM_NO_MEMLIMIT=1 runs it with
// GOMEMLIMIT=off, to see the difference.
func TestMemoryBombsInTheRouter(t *testing.T) {
	bin := supervisor.Build(t)
	const lines = 30_000
	const limit = 64 << 20
	for _, bomb := range []struct{ name, script, limits string }{
		{"byte_tables", `
local s = string.rep("b", 990000)
G = {}
function process_message()
  for i = 1, 40 do G[#G+1] = {string.byte(s, 1, -1)} end
  return 0
end`, ""},
		// 100,000 concatenations a message: no instruction limit and a
		// long deadline, so that only memory_limit can stop it.
		{"global_growth", `
G = {}
function process_message()
  for i = 1, 100000 do G[#G+1] = "v" .. i end
  return 0
end`, "instruction_limit = 0\ndeadline = \"10s\"\n"},
	} {
		t.Run(bomb.name, func(t *testing.T) {
			dir := t.TempDir()
			in, err := supervisor.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			metrics, err := supervisor.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out.txt")
			cfg := filepath.Join(dir, "tern.toml")
			src := fmt.Sprintf(config, filepath.Join(dir, "data"), metrics, in, bomb.limits, out)
			if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "bomb.lua"), []byte(bomb.script), 0o644); err != nil {
				t.Fatal(err)
			}
			r := supervisor.NewRunner(bin, cfg, dir)
			if os.Getenv("TERN_LUAMEM_NO_MEMLIMIT") != "" {
				r.Env = []string{"GOMEMLIMIT=off"}
			}
			if err := r.Start(); err != nil {
				t.Fatal(err)
			}
			defer r.Term(10 * time.Second)
			if err := r.WaitPort(in, 30*time.Second); err != nil {
				t.Fatal(err)
			}
			sampler := supervisor.Sample(r.Pid(), 20*time.Millisecond)
			start := time.Now()
			conn, err := net.Dial("tcp", in)
			if err != nil {
				t.Fatal(err)
			}
			w := bufio.NewWriter(conn)
			for i := range lines {
				fmt.Fprintf(w, "line %d of the normal path\n", i)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			conn.Close()

			var got int
			for {
				b, _ := os.ReadFile(out)
				got = bytes.Count(b, []byte("\n"))
				if got >= lines || time.Since(start) > 3*time.Minute {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			delivered := time.Since(start)
			var m oracle.Metrics
			for {
				m, err = oracle.Scrape(context.Background(), metrics)
				if err == nil && m.Sum("tern_lua_disabled", nil) == 1 || time.Since(start) > 3*time.Minute {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			hwm, _ := sampler.Stop()
			now, _ := supervisor.ReadMem(r.Pid())
			memFailures := m.Sum("tern_lua_failures_total", map[string]string{"kind": "memory_limit"})
			t.Logf("%d of %d lines delivered in %s; %v memory_limit failures, disabled %v; peak RSS %d MiB, RSS now %d MiB (%v)",
				got, lines, delivered.Round(time.Millisecond), memFailures, m.Sum("tern_lua_disabled", nil), hwm>>20, now.RSS>>20, r.Env)
			if got != lines {
				t.Errorf("the normal path delivered %d of %d lines", got, lines)
			}
			if memFailures < 1 || m.Sum("tern_lua_disabled", nil) != 1 {
				t.Errorf("the bomb must be counted as a memory_limit failure and disabled\n%s", r.Tail(20))
			}
			// The router sets the soft limit itself, from the config.
			if r.Env == nil && !strings.Contains(r.Tail(1000), `msg="soft memory limit set" bytes=83886080 derived=true`) {
				t.Errorf("no derived soft memory limit (64 MiB script, two 4 MiB queues, 8 MiB)\n%s", r.Tail(20))
			}
			if hwm > limit+64<<20 {
				t.Errorf("peak RSS %d MiB over memory_limit + 64 MiB\n%s", hwm>>20, r.Tail(10))
			}
		})
	}
}
