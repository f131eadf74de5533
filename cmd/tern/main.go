// Command tern is a log router for security teams: inputs read records,
// decoders turn them into messages, matchers route them to filters and
// outputs, encoders write them out. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `tern — a log router for security teams

Usage:
  tern [run] [-config plugins.toml]     run the pipeline (the default verb)
  tern check [-config plugins.toml]     validate a config without starting it
  tern decode -d TYPE [-o key=value]…   raw records on stdin -> canonical JSON messages
  tern encode -e TYPE [-o key=value]…   canonical JSON messages on stdin -> encoded records
  tern match 'EXPR'                     canonical JSON messages on stdin -> those that match
  tern cat [-match EXPR] [-tail] PATH…  messages in disk buffers or native-framed files -> canonical JSON
  tern alerts list [-config …] [-json]  the alert definitions of the config's Lua filters
  tern inject [-addr …] [flags]         send one message to a running tern, wait for its ack
  tern flood [-addr …] [flags]          a load generator: messages/s, MiB/s, acked, errors
  tern tap [-addr …] [-match EXPR] [-plugin NAME] [-n N] [-rate R]
                                        stream what a running tern routes (or a plugin receives)
  tern version                          print the version

Run "tern VERB -h" for a verb's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the exit, so tests can drive every verb.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	verb := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		verb, args = args[0], args[1:]
	}
	switch verb {
	case "run":
		return cmdRun(args, stderr)
	case "check":
		return cmdCheck(args, stdout, stderr)
	case "decode":
		return cmdDecode(args, stdin, stdout, stderr)
	case "encode":
		return cmdEncode(args, stdin, stdout, stderr)
	case "match":
		return cmdMatch(args, stdin, stdout, stderr)
	case "cat":
		return cmdCat(args, stdin, stdout, stderr)
	case "alerts":
		return cmdAlerts(args, stdout, stderr)
	case "inject":
		return cmdInject(args, stdin, stdout, stderr)
	case "flood":
		return cmdFlood(args, stdout, stderr)
	case "tap":
		return cmdTap(args, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "tern %s (%s)\n", version, buildInfo())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "tern: unknown verb %q\n\n%s", verb, usage)
	return 2
}

func buildInfo() string {
	s := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
				s += " " + kv.Value[:12]
			}
		}
	}
	return s
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "plugins.toml", "config file")
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file while running")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// Signals are caught before anything else, so a SIGTERM that arrives
	// while the config loads stops tern cleanly instead of killing it.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	reg := registry()
	plan, err := config.Load(*path, reg, config.Options{})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	log := newLogger(stderr, plan.Global)
	// A disk buffer with full_action = "shutdown" ends the run like SIGTERM.
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	var bufferFull atomic.Bool
	opts := engine.Options{Logger: log, NewBuffer: bufferOpener(func() {
		bufferFull.Store(true)
		cancelRun()
	})}
	e, err := engine.New(plan, reg, opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	go func() {
		// A second signal means "now": the drain is abandoned.
		<-ctx.Done()
		stop()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		log.Error("second signal: exiting without draining")
		os.Exit(1)
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
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
				next, opts = reload(*path, reg, opts, stderr, log)
			}
		}
		// The running pipeline drains as on SIGTERM (inputs stop, queues
		// are delivered, positions committed), then the new one starts:
		// at-least-once holds across a reload as across a restart.
		log.Info("reload: stopping the running pipeline", "config", *path)
		stopEngine()
		if err := <-done; err != nil {
			log.Error("tern failed", "err", err)
			return 1
		}
		if runCtx.Err() != nil {
			return 0 // SIGTERM during the drain: stop, do not start the new one
		}
		e, log = next, opts.Logger
		log.Info("reload: running the new config", "config", *path)
	}
}

// reported says whether errs holds an error about section id (or one of
// its keys).
func reported(errs config.Errors, id string) bool {
	for _, e := range errs {
		if e.Key == id || strings.HasPrefix(e.Key, id+".") {
			return true
		}
	}
	return false
}

// reload reads and checks the config again, as tern check does, and
// builds its engine with a logger for its [tern] settings. It returns nil
// and opts unchanged when the config has errors, which are logged while
// the running pipeline goes on.
func reload(path string, reg *pipeline.Registry, opts engine.Options, stderr io.Writer, log *slog.Logger) (*engine.Engine, engine.Options) {
	log.Info("reload: SIGHUP, reading the config again", "config", path)
	plan, err := config.Load(path, reg, config.Options{})
	var e *engine.Engine
	next := opts
	if err == nil {
		next.Logger = newLogger(stderr, plan.Global)
		// Constructors do no I/O, so the new engine is built beside the
		// running one; Check loads the scripts it names.
		if e, err = engine.New(plan, reg, next); err == nil {
			err = e.Check()
		}
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

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	reg := registry()
	plan, loadErr := config.Load(*path, reg, config.Options{})
	var errs config.Errors
	if loadErr != nil {
		if !errors.As(loadErr, &errs) {
			fmt.Fprintln(stderr, loadErr)
			return 1
		}
	}
	if plan != nil {
		// Constructors run too (they do no I/O): they catch what only the
		// plugin knows, such as a regex that does not compile.
		e, err := engine.New(plan, reg, engine.Options{NewBuffer: checkBuffer})
		if err == nil {
			err = e.Check()
		}
		if err != nil {
			var more config.Errors
			if errors.As(err, &more) {
				for _, e := range more {
					// A constructor repeats its config's Validate errors,
					// which the loader already placed on their lines.
					if !reported(errs, e.Key) {
						errs = append(errs, e)
					}
				}
			} else {
				errs = append(errs, &config.Error{File: *path, Msg: err.Error()})
			}
		}
	}
	if len(errs) > 0 {
		fmt.Fprintln(stderr, errs.Error())
		fmt.Fprintf(stderr, "%d error(s)\n", len(errs))
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d inputs, %d filters, %d outputs)\n", *path, len(plan.Inputs), len(plan.Filters), len(plan.Outputs))
	return 0
}
