package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

// checkConfig is what tern check does, and what tern run and a reload do
// before they build anything that runs: it loads the config at path,
// builds every plugin (constructors do no I/O; disk buffers are built, not
// opened), runs the plugins' Check (scripts, alert definitions,
// certificates) and asks the configs for warnings. It opens no socket and
// writes no file. err is config.Errors when the config has mistakes, and
// another error when it could not be read at all; warnings come even with
// errors.
func checkConfig(path string, reg *pipeline.Registry) (plan *config.Plan, warnings config.Errors, err error) {
	plan, loadErr := config.Load(path, reg, config.Options{})
	var errs config.Errors
	if loadErr != nil && !errors.As(loadErr, &errs) {
		return nil, nil, loadErr
	}
	if plan == nil {
		return nil, nil, errs
	}
	warnings = configWarnings(plan)
	e, err := engine.New(plan, reg, engine.Options{NewBuffer: checkBuffer})
	if err == nil {
		err = e.Check()
	}
	if err != nil {
		var more config.Errors
		if errors.As(err, &more) {
			loaded := errs
			for _, e := range more {
				// A constructor repeats its config's Validate errors,
				// which the loader already placed on their lines.
				if !reported(loaded, e.Key) {
					errs = append(errs, e)
				}
			}
		} else {
			errs = append(errs, &config.Error{File: path, Msg: err.Error()})
		}
	}
	if len(errs) > 0 {
		return plan, warnings, errs
	}
	return plan, warnings, nil
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

// configWarnings collects the warnings of every plugin config that gives
// some (pipeline.Warner), placed at its section, in file order.
func configWarnings(plan *config.Plan) config.Errors {
	var secs []*config.Section
	for _, in := range plan.Inputs {
		secs = append(secs, &in.Section)
	}
	for _, f := range plan.Filters {
		secs = append(secs, &f.Section)
	}
	for _, o := range plan.Outputs {
		secs = append(secs, &o.Section)
	}
	for _, s := range plan.Decoders {
		secs = append(secs, s)
	}
	for _, s := range plan.Encoders {
		secs = append(secs, s)
	}
	var out config.Errors
	for _, s := range secs {
		w, ok := s.Config.(pipeline.Warner)
		if !ok {
			continue
		}
		for _, msg := range w.Warnings(plan.Dir) {
			key := s.ID()
			if k, m, ok := strings.Cut(msg, ": "); ok && !strings.ContainsAny(k, " \"'") {
				key, msg = key+"."+k, m
			}
			out = append(out, &config.Error{File: s.File, Line: s.Line, Key: key, Msg: msg})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// printWarnings writes each warning as file:line: warning: key: message.
func printWarnings(w io.Writer, warnings config.Errors) {
	for _, e := range warnings {
		at := e.File
		if e.Line > 0 {
			at = fmt.Sprintf("%s:%d", e.File, e.Line)
		}
		fmt.Fprintf(w, "%s: warning: %s: %s\n", at, e.Key, e.Msg)
	}
}

// printConfigErrors writes a config's errors, one a line, and their count
// followed by tail.
func printConfigErrors(w io.Writer, err error, tail string) {
	fmt.Fprintln(w, err)
	var errs config.Errors
	if errors.As(err, &errs) {
		fmt.Fprintf(w, "%d error(s)%s\n", len(errs), tail)
	} else if tail != "" {
		fmt.Fprintln(w, strings.TrimPrefix(tail, "; "))
	}
}
