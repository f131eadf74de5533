package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

`)
		fs.PrintDefaults()
	}
	ternBin := fs.String("tern", "bin/tern", "the tern binary")
	configs := fs.String("configs", "bench", "directory of w1.toml, w2.toml, w3.toml")
	n := fs.Int("n", 1_000_000, "events per run")
	runs := fs.Int("runs", 5, "measured pairs per workload")
	warmup := fs.Int("warmup", 1, "pairs run first and not counted")
	dir := fs.String("dir", defaultDir(), "workload files, outputs and results.jsonl (a tmpfs keeps disk writeback out of the figures)")
	only := fs.String("w", "w1,w2,w3", "workloads to run")
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
		data, err := ensureData(*dir, w.gen, *n, *seed)
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
	printSummary(stdout, rows)
	return 0
}

// defaultDir is on a tmpfs when there is one.
func defaultDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm/ternbench"
	}
	return filepath.Join(os.TempDir(), "ternbench")
}

// ensureData generates a workload file unless an earlier run left it.
func ensureData(dir, mode string, n int, seed uint64) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("%s-%d-seed%d.txt", mode, n, seed))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	g, err := newGenerator(genConfig{Mode: mode, N: n, Seed: seed, Rate: 10_000})
	if err != nil {
		return "", err
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return "", err
	}
	_, err = g.writeAll(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	return path, err
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
