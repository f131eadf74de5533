package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sinkCmd runs this test binary as "ternbench sink" (see TestMain).
func sinkCmd(t *testing.T, mode, addr, out string) []string {
	t.Setenv("TERNBENCH_AS_MAIN", "1")
	return []string{os.Args[0], "sink", "-mode", mode, "-addr", addr, "-out", out}
}

func addr(t *testing.T) string {
	a, err := freeAddr()
	require.NoError(t, err)
	return a
}

// checkResult: the run counted every event and measured the daemon.
func checkResult(t *testing.T, res benchResult, label string, events int) {
	t.Helper()
	assert.Equal(t, label, res.Label)
	assert.Equal(t, events, res.Events)
	assert.Positive(t, res.Seconds)
	assert.InDelta(t, float64(events)/res.Seconds, res.EPS, 1)
	assert.GreaterOrEqual(t, res.CPUSeconds, 0.0)
	assert.InDelta(t, res.CPUSeconds/float64(events)*1e6, res.CPUPerM, 1e-9)
	assert.Positive(t, res.RSSMiB, "peak RSS")
	assert.Less(t, res.RSSMiB, 4096.0)
	assert.Positive(t, res.StartupS)
}

// TestBenchSink runs the bench verb as an operator would, against the
// reference sink, and reads its JSON line.
func TestBenchSink(t *testing.T) {
	dir := t.TempDir()
	data, _ := genFile(t, dir, genConfig{Mode: "syslog", N: 5000})
	out, a := filepath.Join(dir, "out"), addr(t)
	require.NoError(t, os.WriteFile(out, []byte("left over\n"), 0o644))
	var stdout, stderr bytes.Buffer
	args := append([]string{"bench", "-label", "ref-w1", "-data", data, "-addr", a, "-out", out, "-timeout", "1m", "--"},
		sinkCmd(t, "raw", a, out)...)
	require.Equal(t, 0, run(args, &stdout, &stderr), stderr.String())
	var res benchResult
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &res), stdout.String())
	for _, key := range []string{`"label"`, `"events"`, `"seconds"`, `"eps"`, `"cpu_s"`, `"cpu_s_per_M"`, `"rss_mib"`} {
		assert.Contains(t, stdout.String(), key)
	}
	checkResult(t, res, "ref-w1", 5000)
	assert.Equal(t, fileHash(t, data), fileHash(t, out), "the sink wrote the lines as received, into a fresh file")
}

// TestBenchReportsFailures: a daemon that never listens, or one that
// writes too little, is an error that shows the daemon's output.
func TestBenchReportsFailures(t *testing.T) {
	dir := t.TempDir()
	data, _ := genFile(t, dir, genConfig{Mode: "syslog", N: 100})
	_, err := runBench(benchSpec{Label: "x", Data: data, Addr: addr(t), Out: filepath.Join(dir, "out"), Timeout: time.Minute,
		Stall: time.Second, Cmd: []string{"sh", "-c", "echo no luck >&2; exit 3"}})
	assert.ErrorContains(t, err, "exited before it listened")
	assert.ErrorContains(t, err, "no luck")

	a := addr(t)
	_, err = runBench(benchSpec{Label: "x", Data: data, Addr: a, Out: filepath.Join(dir, "out"), Expect: 101, Timeout: time.Minute,
		Stall: 500 * time.Millisecond, Cmd: sinkCmd(t, "raw", a, filepath.Join(dir, "out"))})
	assert.ErrorContains(t, err, "stopped growing")
	assert.ErrorContains(t, err, "100 of 101 lines")
}

var ternBuild struct {
	sync.Once
	dir, bin string
	err      error
}

// buildTern compiles the tern binary once for all tests (TestMain removes it).
func buildTern(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the tern binary")
	}
	ternBuild.Do(func() {
		if ternBuild.dir, ternBuild.err = os.MkdirTemp("", "ternbench-test"); ternBuild.err != nil {
			return
		}
		ternBuild.bin = filepath.Join(ternBuild.dir, "tern")
		cmd := exec.Command("go", "build", "-o", ternBuild.bin, "../tern")
		cmd.Stderr = os.Stderr
		ternBuild.err = cmd.Run()
	})
	require.NoError(t, ternBuild.err)
	return ternBuild.bin
}

// TestReferencesDoTernsWork runs tern with bench/w1.toml, w2.toml and
// w3.toml and the reference sink on the same small files: both write the
// same lines (W1) and the same JSON objects, keys in the same order (W2,
// W3), so the reference does the work tern does.
func TestReferencesDoTernsWork(t *testing.T) {
	tern := buildTern(t)
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) {
			dir := t.TempDir()
			data, _ := genFile(t, dir, genConfig{Mode: w.gen, N: 3000})
			outs := map[string]string{}
			for _, side := range []string{"tern", "ref"} {
				out, a := filepath.Join(dir, side+".out"), addr(t)
				cmd := []string{tern, "run", "-config", filepath.Join("..", "..", "bench", w.config)}
				if side == "ref" {
					cmd = sinkCmd(t, w.sink, a, out)
				}
				res, err := runBench(benchSpec{Label: side, Data: data, Addr: a, Out: out, Timeout: time.Minute, Stall: 10 * time.Second, Cmd: cmd})
				require.NoError(t, err)
				checkResult(t, res, side, 3000)
				outs[side] = out
			}
			ternLines, refLines := lines(t, outs["tern"]), lines(t, outs["ref"])
			require.Len(t, ternLines, 3000)
			require.Len(t, refLines, 3000)
			for i := range ternLines {
				if w.sink == "raw" {
					require.Equal(t, string(ternLines[i]), string(refLines[i]), "line %d", i+1)
				} else {
					require.Equal(t, jsonTokens(t, ternLines[i]), jsonTokens(t, refLines[i]), "line %d", i+1)
				}
			}
			if w.sink == "raw" {
				assert.Equal(t, fileHash(t, data), fileHash(t, outs["tern"]))
			}
		})
	}
}

// jsonTokens is the token stream of one JSON text: keys in order, numbers
// as float64.
func jsonTokens(t *testing.T, b []byte) []any {
	dec := json.NewDecoder(bytes.NewReader(b))
	var toks []any
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return toks
		}
		require.NoError(t, err, "%s", b)
		toks = append(toks, tok)
	}
}

// TestCEFAlertsInTern: the shipped detection pipeline (bench/lua.toml)
// raises exactly the alerts gen's summary announces for its attackers,
// on a log whose time starts now.
func TestCEFAlertsInTern(t *testing.T) {
	tern := buildTern(t)
	dir := t.TempDir()
	c := cefConfig(6000, 300, "spray")
	c.Attackers, c.Start = 3, time.Now().UTC().Truncate(time.Second)
	data, sum := genFile(t, dir, c)
	require.Equal(t, 3, sum.Alerts)
	eve, a := filepath.Join(dir, "eve.json"), addr(t)
	t.Setenv("TERN_BENCH_OUT2", filepath.Join(dir, "out.cef"))
	_, err := runBench(benchSpec{Label: "w4", Data: data, Addr: a, Out: eve, Timeout: time.Minute, Stall: 10 * time.Second,
		Cmd: []string{tern, "run", "-config", filepath.Join("..", "..", "bench", "lua.toml")}})
	require.NoError(t, err)
	ids := map[string]bool{}
	idRE := regexp.MustCompile(`"haka_alert_id":\["([^"]+)"\]`)
	readLines(t, eve, func(l []byte) {
		if strings.Contains(string(l), `"event_type":"alert"`) {
			ids[string(idRE.FindSubmatch(l)[1])] = true
		}
	})
	assert.Len(t, ids, sum.Alerts)
}

// TestSuiteW4: "ternbench suite -w w4" runs bench/w4.toml on a replayed
// log (gen's default start, 2025) and finds in the EVE output the alerts
// gen announces; countAlerts counts an alert and its update once.
func TestSuiteW4(t *testing.T) {
	tern := buildTern(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"suite", "-tern", tern, "-configs", filepath.Join("..", "..", "bench"), "-dir", dir,
		"-w", "w4", "-n", "20000", "-sources", "2000", "-runs", "1", "-warmup", "0", "-timeout", "1m"}, &stdout, &stderr)
	require.Equal(t, 0, code, "%s%s", stdout.String(), stderr.String())
	var res w4Result
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(stdout.String(), "\n", 2)[0]), &res), stdout.String())
	checkResult(t, res.benchResult, "tern-w4", 20000)
	assert.Positive(t, res.Want)
	assert.Equal(t, res.Want, res.Alerts)
	assert.Regexp(t, `(?m)^\s+w4\s+2000\s+1\s+\d+\s+[\d.]+\s+[\d.]+\s+\d+\s+\d+$`, stdout.String())

	eve := filepath.Join(dir, "eve.json")
	require.NoError(t, os.WriteFile(eve, []byte(`{"event_type":"dns"}
{"event_type":"alert","alert":{"metadata":{"haka_alert_id":["a"]}}}
{"event_type":"alert","alert":{"metadata":{"haka_alert_id":["b"]}}}
{"event_type":"alert","alert":{"metadata":{"haka_alert_id":["a"],"haka_update":["1"]}}}
`), 0o644))
	n, err := countAlerts(eve)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}
