package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

func cmdSuite(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ternbench suite -tern bin/tern [flags]

Runs W1–W3: for each, generates the workload (kept in -dir for later runs),
then runs tern (-configs/wN.toml) and the plain-Go reference (ternbench
sink) in turn, -runs times each, the order flipping every pair. Prints each
run's JSON line (also appended to -dir/results.jsonl) and a table of medians
and of per-pair ratios tern/reference.

-w w4 runs W4, the detection pipeline (-configs/w4.toml: CEF over syslog,
both shipped Lua detections, EVE and CEF files), tern alone on CEF traffic
from -sources distinct addresses: events/s, CPU-s per 1M and peak RSS as
above, and the alerts in the EVE output against those gen's summary
announces (distinct alert ids; a run that misses one fails the suite).

`)
		fs.PrintDefaults()
	}
	ternBin := fs.String("tern", "bin/tern", "the tern binary")
	configs := fs.String("configs", "bench", "directory of w1.toml … w4.toml")
	n := fs.Int("n", 1_000_000, "events per run")
	runs := fs.Int("runs", 5, "measured pairs per workload")
	warmup := fs.Int("warmup", 1, "pairs run first and not counted")
	dir := fs.String("dir", defaultDir(), "workload files, outputs and results.jsonl (a tmpfs keeps disk writeback out of the figures)")
	only := fs.String("w", "w1,w2,w3", "workloads to run (w1, w2, w3, w4)")
	sources := fs.Int("sources", 100_000, "w4: distinct source addresses")
	failRatio := fs.Float64("fail-ratio", 0.3, "w4: share of authentication failures")
	seed := fs.Uint64("seed", 1, "workload seed")
	timeout := fs.Duration("timeout", 10*time.Minute, "limit of one run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "ternbench suite:", err); return 1 }
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	if _, err := os.Stat(*ternBin); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fail(err)
	}
	log, err := os.OpenFile(filepath.Join(*dir, "results.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fail(err)
	}
	defer log.Close()

	var rows []suiteRow
	for _, w := range workloads {
		if !slices.Contains(strings.Split(*only, ","), w.name) {
			continue
		}
		data, _, err := ensureData(*dir, genConfig{Mode: w.gen, N: *n, Seed: *seed, Rate: 10_000})
		if err != nil {
			return fail(err)
		}
		row := suiteRow{name: w.name}
		for r := -*warmup; r < *runs; r++ {
			sides := []string{"tern", "ref"}
			if r%2 != 0 {
				sides = []string{"ref", "tern"}
			}
			for _, side := range sides {
				addr, err := freeAddr()
				if err != nil {
					return fail(err)
				}
				out := filepath.Join(*dir, side+"-"+w.name+".out")
				cmd := []string{*ternBin, "run", "-config", filepath.Join(*configs, w.config)}
				if side == "ref" {
					cmd = []string{self, "sink", "-mode", w.sink, "-addr", addr, "-out", out}
				}
				res, err := runBench(benchSpec{Label: side + "-" + w.name, Data: data, Addr: addr, Out: out,
					Timeout: *timeout, Stall: 30 * time.Second, Cmd: cmd})
				os.Remove(out)
				if err != nil {
					return fail(err)
				}
				j, _ := json.Marshal(res)
				if r < 0 {
					fmt.Fprintf(stdout, "%s (warm-up)\n", j)
					continue
				}
				fmt.Fprintf(stdout, "%s\n", j)
				fmt.Fprintf(log, "%s\n", j)
				if side == "tern" {
					row.tern = append(row.tern, res)
				} else {
					row.ref = append(row.ref, res)
				}
			}
		}
		rows = append(rows, row)
	}
	if len(rows) > 0 {
		printSummary(stdout, rows)
	}
	if slices.Contains(strings.Split(*only, ","), "w4") {
		c := w4Config(*n, *seed, *sources, *failRatio)
		data, sum, err := ensureData(*dir, c)
		if err != nil {
			return fail(err)
		}
		var res []w4Result
		for r := -*warmup; r < *runs; r++ {
			addr, err := freeAddr()
			if err != nil {
				return fail(err)
			}
			out, out2 := filepath.Join(*dir, "tern-w4.eve"), filepath.Join(*dir, "tern-w4.cef")
			b, err := runBench(benchSpec{Label: "tern-w4", Data: data, Addr: addr, Out: out,
				Env: []string{"TERN_BENCH_OUT2=" + out2}, Timeout: *timeout, Stall: 30 * time.Second,
				Cmd: []string{*ternBin, "run", "-config", filepath.Join(*configs, "w4.toml")}})
			if err != nil {
				return fail(err)
			}
			alerts, err := countAlerts(out)
			os.Remove(out)
			os.Remove(out2)
			if err != nil {
				return fail(err)
			}
			x := w4Result{benchResult: b, Alerts: alerts, Want: sum.Alerts}
			j, _ := json.Marshal(x)
			if r < 0 {
				fmt.Fprintf(stdout, "%s (warm-up)\n", j)
				continue
			}
			fmt.Fprintf(stdout, "%s\n", j)
			fmt.Fprintf(log, "%s\n", j)
			res = append(res, x)
		}
		if !printW4(stdout, c, res) {
			return fail(fmt.Errorf("w4: a run's alerts differ from the %d gen announces", sum.Alerts))
		}
	}
	return 0
}

// w4Config is W4's traffic: CEF over RFC 5424 syslog from sources distinct
// addresses in turn (spray: the most sources held at once), 10 attackers
// each crossing auth_failure_burst.lua's default threshold (20 failures in
// 30 s); gen's defaults otherwise.
func w4Config(n int, seed uint64, sources int, failRatio float64) genConfig {
	return genConfig{Mode: "cef", N: n, Seed: seed, Rate: 10_000, Sources: sources, FailRatio: failRatio,
		Dist: "spray", Attackers: 10, Threshold: 20, Window: 30 * time.Second, Header: "rfc5424"}
}

// w4Result is one W4 run: the measures and the alerts it raised.
type w4Result struct {
	benchResult
	Alerts int `json:"alerts"`          // distinct alert ids in the EVE output
	Want   int `json:"alerts_expected"` // what gen's summary announces
}

// alertID finds an EVE alert's id; an update of an alert repeats its id.
var alertID = regexp.MustCompile(`"haka_alert_id":\["([^"]+)"\]`)

// countAlerts counts the distinct alerts in an EVE file.
func countAlerts(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	ids := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		l := sc.Bytes()
		if !bytes.Contains(l, []byte(`"event_type":"alert"`)) {
			continue
		}
		id := fmt.Sprint(len(ids)) // an alert without an id counts alone
		if m := alertID.FindSubmatch(l); m != nil {
			id = string(m[1])
		}
		ids[id] = true
	}
	return len(ids), sc.Err()
}

// printW4 prints W4's medians and reports whether every run raised the
// alerts gen announced.
func printW4(w io.Writer, c genConfig, res []w4Result) bool {
	ok := true
	var eps, cpu, rss []float64
	lo, hi := -1, -1
	for _, r := range res {
		eps, cpu, rss = append(eps, r.EPS), append(cpu, r.CPUPerM), append(rss, r.RSSMiB)
		if lo < 0 || r.Alerts < lo {
			lo = r.Alerts
		}
		hi = max(hi, r.Alerts)
		ok = ok && r.Alerts == r.Want
	}
	alerts := fmt.Sprint(lo)
	if lo != hi {
		alerts = fmt.Sprintf("%d-%d", lo, hi)
	}
	want := 0
	if len(res) > 0 {
		want = res[0].Want
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tsources\truns\ttern ev/s\ttern CPU-s/1M\ttern RSS MiB\talerts\texpected\t")
	fmt.Fprintf(tw, "w4\t%d\t%d\t%.0f\t%.2f\t%.1f\t%s\t%d\t\n", c.Sources, len(res),
		median(eps), median(cpu), median(rss), alerts, want)
	tw.Flush()
	return ok
}

// defaultDir is on a tmpfs when there is one.
func defaultDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm/ternbench"
	}
	return filepath.Join(os.TempDir(), "ternbench")
}

// ensureData generates a workload file unless an earlier run left it, and
// returns gen's summary of it (kept beside it).
func ensureData(dir string, c genConfig) (string, genSummary, error) {
	name := fmt.Sprintf("%s-%d-seed%d", c.Mode, c.N, c.Seed)
	if c.Mode == "cef" {
		name = fmt.Sprintf("cef-%d-src%d-fail%g-seed%d", c.N, c.Sources, c.FailRatio, c.Seed)
	}
	path := filepath.Join(dir, name+".txt")
	var sum genSummary
	if c.Mode == "cef" {
		sum.cefSummary = &cefSummary{} // json sets no unexported embedded pointer
	}
	if _, err := os.Stat(path); err == nil {
		if b, err := os.ReadFile(path + ".json"); err == nil && json.Unmarshal(b, &sum) == nil {
			return path, sum, nil
		}
	}
	g, err := newGenerator(c)
	if err != nil {
		return "", sum, err
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return "", sum, err
	}
	sum, err = g.writeAll(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		j, _ := json.Marshal(sum)
		err = os.WriteFile(path+".json", j, 0o644)
	}
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	return path, sum, err
}

type suiteRow struct {
	name      string
	tern, ref []benchResult
}

func printSummary(w io.Writer, rows []suiteRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tpairs\ttern ev/s\tref ev/s\ttern CPU-s/1M\tref CPU-s/1M\tCPU tern/ref\tev/s tern/ref\ttern RSS MiB\tref RSS MiB\t")
	for _, r := range rows {
		var cpuRatio, epsRatio []float64
		for i := range min(len(r.tern), len(r.ref)) {
			cpuRatio = append(cpuRatio, r.tern[i].CPUPerM/r.ref[i].CPUPerM)
			epsRatio = append(epsRatio, r.tern[i].EPS/r.ref[i].EPS)
		}
		med := func(rs []benchResult, f func(benchResult) float64) float64 {
			var v []float64
			for _, x := range rs {
				v = append(v, f(x))
			}
			return median(v)
		}
		eps := func(x benchResult) float64 { return x.EPS }
		cpu := func(x benchResult) float64 { return x.CPUPerM }
		rss := func(x benchResult) float64 { return x.RSSMiB }
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t\n", r.name, len(cpuRatio),
			med(r.tern, eps), med(r.ref, eps), med(r.tern, cpu), med(r.ref, cpu),
			median(cpuRatio), median(epsRatio), med(r.tern, rss), med(r.ref, rss))
	}
	tw.Flush()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
