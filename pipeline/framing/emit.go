package framing

import (
	"context"
	"time"

	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/pipeline"
)

// EmitLines reads lines and emits them in batches until the reader fails:
// a batch goes out when no further line is already buffered (so a slow
// sender sees no delay) or when it holds maxBatch records. Every record is a
// copy of proto with Data set. Over-long lines are counted as drops with
// reason "oversize". It returns the reader's error (io.EOF at the end), or
// nil once ctx is done.
func EmitLines(ctx context.Context, lines *LineReader, proto pipeline.Record, maxBatch int, out pipeline.Emitter, set pipeline.Settings) error {
	if maxBatch < 1 {
		maxBatch = 1024
	}
	recs := make([]pipeline.Record, 0, maxBatch)
	oversize := lines.Oversize
	warn := ratelog.Every(10 * time.Second)
	for {
		if len(recs) > 0 && (len(recs) >= maxBatch || !lines.Buffered()) {
			if err := out.Emit(ctx, recs, nil); err != nil {
				return nil // stopping
			}
			recs = recs[:0]
		}
		line, err := lines.Next()
		if lines.Oversize > oversize {
			set.Drop("oversize", lines.Oversize-oversize)
			warn.Warn(set.Logger, "lines over the size cap dropped", "source", proto.Source, "max_bytes", lines.max, "total", lines.Oversize)
			oversize = lines.Oversize
		}
		if err != nil {
			if len(recs) > 0 && out.Emit(ctx, recs, nil) != nil {
				return nil
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		rec := proto
		rec.Data = line
		recs = append(recs, rec)
	}
}
