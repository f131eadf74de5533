// Command tern is a log router for security teams: inputs read records,
// decoders turn them into messages, matchers route them to filters and
// outputs, encoders write them out. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the exit, so tests can drive every verb. A first
// argument that is a flag goes to run, the default verb.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			printTopHelp(stdout)
			return 0
		case "-version", "--version":
			return cmdVersion(nil, stdin, stdout, stderr)
		}
	}
	name := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	v := lookupVerb(name)
	if v == nil {
		return unknownVerb(stderr, name)
	}
	return v.run(args, stdin, stdout, stderr)
}

// build describes this binary: `tern version` and tern_build_info.
type build struct {
	version, goversion, platform string
	revision, time               string // from the VCS stamp; "" when built without one
	modified                     bool
}

func readBuild() build {
	b := build{version: version, goversion: runtime.Version(), platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	// go install …@v1.2.3 stamps the module version; -ldflags wins.
	if b.version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.version = bi.Main.Version
	}
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			b.revision = kv.Value[:min(12, len(kv.Value))]
		case "vcs.time":
			b.time = kv.Value
		case "vcs.modified":
			b.modified = kv.Value == "true"
		}
	}
	return b
}

func (b build) String() string {
	rev := "revision unknown"
	if b.revision != "" {
		rev = "revision " + b.revision
		if b.time != "" {
			rev += " " + b.time
		}
		if b.modified {
			rev += ", modified"
		}
	}
	return fmt.Sprintf("tern %s (%s %s, %s)", b.version, b.goversion, b.platform, rev)
}

func cmdVersion(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("version")
	if code, done := parseFlags(fs, "version", args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "version", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	fmt.Fprintln(stdout, readBuild())
	return 0
}

// newMetricsRegistry is the Prometheus registry of one engine, with
// tern_build_info{version,goversion,revision} 1 in it.
func newMetricsRegistry() *prometheus.Registry {
	b := readBuild()
	r := prometheus.NewRegistry()
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "tern", Name: "build_info", Help: "Always 1; the labels say which tern is running.",
		ConstLabels: prometheus.Labels{"version": b.version, "goversion": b.goversion, "revision": b.revision},
	}, func() float64 { return 1 }))
	return r
}

// newEngine builds the engine that runs plan, with a fresh metrics
// registry (an engine registers its series once).
func newEngine(plan *config.Plan, reg *pipeline.Registry, opts engine.Options) (*engine.Engine, error) {
	opts.Metrics = newMetricsRegistry()
	return engine.New(plan, reg, opts)
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "plugins.toml", "read the config from `FILE`")
}

func cmdRun(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("run")
	path := configFlag(fs)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `FILE` while running")
	if code, done := parseFlags(fs, "run", args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "run", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	// Signals are caught before the config loads, so a SIGTERM that
	// arrives meanwhile stops tern cleanly instead of killing it.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runConfig(ctx, *path, *cpuProfile, stderr, func(log *slog.Logger) {
		// A second signal means "now": the drain is abandoned.
		<-ctx.Done()
		stop()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		log.Error("second signal: exiting without draining")
		os.Exit(1)
	})
}

// runConfig runs the config at path until ctx ends. It checks the config
// first exactly as tern check does and starts nothing when it has errors.
// onStart, when not nil, runs on its own goroutine once the pipeline is
// built.
func runConfig(ctx context.Context, path, cpuProfile string, stderr io.Writer, onStart func(*slog.Logger)) int {
	// SIGHUP is caught from the start too: by default it would kill tern
	// while the config is checked and built. One that comes early reloads
	// once the pipeline runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reg := registry()
	plan, warnings, err := checkConfig(path, reg)
	if err != nil {
		printWarnings(stderr, warnings)
		printConfigErrors(stderr, err, "; not started")
		return 1
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "tern run: -cpuprofile: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "tern run: -cpuprofile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	log := newLogger(stderr, plan.Global)
	logWarnings(log, warnings)
	// A disk buffer with full_action = "shutdown" ends the run like SIGTERM.
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	var bufferFull atomic.Bool
	opts := engine.Options{Logger: log, NewBuffer: bufferOpener(func() {
		bufferFull.Store(true)
		cancelRun()
	})}
	e, err := newEngine(plan, reg, opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	setMemoryLimit(log, plan.Global.MemoryLimit, e)
	if onStart != nil {
		go onStart(log)
	}
	for {
		engCtx, stopEngine := context.WithCancel(runCtx)
		done := make(chan error, 1)
		go func() { done <- e.Run(engCtx) }()
		var next *engine.Engine
		for next == nil {
			select {
			case err := <-done:
				stopEngine()
				if err != nil {
					log.Error("tern failed", "err", err)
					return 1
				}
				if bufferFull.Load() {
					log.Error("stopped because a disk buffer was full (full_action = \"shutdown\")")
					return 1
				}
				return 0
			case <-hup:
				next, opts = reload(path, reg, opts, stderr, log)
			}
		}
		// The running pipeline drains as on SIGTERM (inputs stop, queues
		// are delivered, positions committed), then the new one starts:
		// at-least-once holds across a reload as across a restart.
		log.Info("reload: stopping the running pipeline", "config", path)
		stopEngine()
		if err := <-done; err != nil {
			log.Error("tern failed", "err", err)
			return 1
		}
		if runCtx.Err() != nil {
			return 0 // SIGTERM during the drain: stop, do not start the new one
		}
		e, log = next, opts.Logger
		log.Info("reload: running the new config", "config", path)
		setMemoryLimit(log, next.Plan().Global.MemoryLimit, e)
	}
}

// setMemoryLimit sets Go's soft memory limit from [tern] memory_limit, or
// from what the engine's scripts and queues may hold. Without one, the
// collector lets the heap grow to twice what is live, so a script stopped
// at its memory_limit could still take the process far past it. GOMEMLIMIT
// in the environment wins (GOMEMLIMIT=off: no limit).
func setMemoryLimit(log *slog.Logger, configured config.Size, e *engine.Engine) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit, derived := int64(configured), false
	if limit == 0 {
		if limit, derived = e.MemoryBudget(); !derived {
			debug.SetMemoryLimit(math.MaxInt64) // a reload may drop the scripts
			return
		}
	}
	debug.SetMemoryLimit(limit)
	log.Info("soft memory limit set", "bytes", limit, "derived", derived)
}

// logWarnings logs a config's warnings, each with its place.
func logWarnings(log *slog.Logger, warnings config.Errors) {
	for _, w := range warnings {
		log.Warn(w.Msg, "config", fmt.Sprintf("%s:%d", w.File, w.Line), "key", w.Key)
	}
}

// reload reads and checks the config again, as tern check does, and
// builds its engine with a logger for its [tern] settings. It returns nil
// and opts unchanged when the config has errors, which are logged while
// the running pipeline goes on.
func reload(path string, reg *pipeline.Registry, opts engine.Options, stderr io.Writer, log *slog.Logger) (*engine.Engine, engine.Options) {
	log.Info("reload: SIGHUP, reading the config again", "config", path)
	plan, warnings, err := checkConfig(path, reg)
	var e *engine.Engine
	next := opts
	if err == nil {
		next.Logger = newLogger(stderr, plan.Global)
		logWarnings(next.Logger, warnings)
		// Constructors do no I/O, so the new engine is built beside the
		// running one.
		e, err = newEngine(plan, reg, next)
	}
	if err != nil {
		log.Error("reload: the config has errors; still running the previous one", "config", path, "err", err)
		return nil, opts
	}
	return e, next
}

func newLogger(w io.Writer, g config.Global) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(g.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if g.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdCheck(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("check")
	path := configFlag(fs)
	if code, done := parseFlags(fs, "check", args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "check", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	plan, warnings, err := checkConfig(*path, registry())
	printWarnings(stderr, warnings)
	if err != nil {
		printConfigErrors(stderr, err, "")
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d inputs, %d filters, %d outputs)\n", *path, len(plan.Inputs), len(plan.Filters), len(plan.Outputs))
	return 0
}
