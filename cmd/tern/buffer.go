package main

import (
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/buffer"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/queue"
)

// bufferOpener is the engine's NewBuffer for `tern run`: it recovers and
// opens the disk buffer of each output with use_buffering. A buffer that
// fills with full_action = "shutdown" calls stop, which ends the run like
// SIGTERM.
func bufferOpener(stop func()) func(o *config.Output, dir string, set pipeline.Settings) (queue.Queue, error) {
	return func(o *config.Output, dir string, set pipeline.Settings) (queue.Queue, error) {
		opt := buffer.OptionsFrom(o.Buffering)
		opt.Shutdown = stop
		b, err := buffer.New(dir, opt, set)
		if err != nil {
			return nil, err
		}
		if err := b.Open(); err != nil {
			return nil, err
		}
		return b, nil
	}
}

// checkBuffer validates an output's buffering for `tern check` without
// touching the disk: the buffer is built, never opened.
func checkBuffer(o *config.Output, dir string, set pipeline.Settings) (queue.Queue, error) {
	return buffer.New(dir, buffer.OptionsFrom(o.Buffering), set)
}
