package sandbox

import (
	"io"
	"log/slog"
	"sync"

	"github.com/ternlog/tern/pipeline"
)

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func newTestLogger(w io.Writer, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{w, mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testSettings() pipeline.Settings {
	return pipeline.Settings{Name: "test", Logger: slog.New(slog.DiscardHandler), Telemetry: pipeline.NopTelemetry{}}
}
