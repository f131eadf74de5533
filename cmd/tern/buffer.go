package main

import (
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/queue"
)

// newBuffer builds disk queues for outputs with use_buffering; checkBuffer
// validates them for `tern check` without touching the disk. Nil until the
// disk buffer lands.
var (
	newBuffer   func(o *config.Output, dir string, set pipeline.Settings) (queue.Queue, error)
	checkBuffer func(o *config.Output, dir string, set pipeline.Settings) (queue.Queue, error)
)
