package tail

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

// Through the real engine: its acknowledgements move the checkpoint, a
// replay (exit_after_eof) ends the run by itself, and a second run over the
// same files delivers nothing again. The decoder and the output are
// minimal test plugins (a plugin never imports another).
func TestEngineReplayAndResume(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	os.Mkdir(logs, 0o755)
	var all strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&all, "seq=%d line\n", i)
	}
	writeFile(t, filepath.Join(logs, "a.log"), all.String())
	// Its compressed copy sits next to it: same content, read once.
	writeGzip(t, filepath.Join(logs, "a.log.1.gz"), all.String())
	out := filepath.Join(dir, "delivered.txt")
	cfg := fmt.Sprintf(`
[tern]
data_dir = "data"
metrics_address = ""

[inputs.files]
type = "tail"
decoder = "lines"
paths = ["logs/*"]
exit_after_eof = true

[outputs.sink]
type = "appendfile"
message_matcher = "TRUE"
encoder = "raw"
path = %q
`, out)
	writeFile(t, filepath.Join(dir, "plugins.toml"), cfg)
	run := func() {
		t.Helper()
		reg := &pipeline.Registry{
			Inputs:   []pipeline.Factory[pipeline.Input]{Factory()},
			Decoders: []pipeline.Factory[pipeline.Decoder]{lineDecoderFactory()},
			Encoders: []pipeline.Factory[pipeline.Encoder]{rawEncoderFactory()},
			Outputs:  []pipeline.Factory[pipeline.Output]{syncFileFactory()},
		}
		plan, err := config.Load(filepath.Join(dir, "plugins.toml"), reg, config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		e, err := engine.New(plan, reg, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := e.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("the replay did not end by itself")
		}
	}
	run()
	count := countLines(t, out)
	if len(count) != 3000 {
		t.Fatalf("%d distinct lines delivered, want 3000", len(count))
	}
	for q, n := range count {
		if n != 1 {
			t.Fatalf("seq %d delivered %d times", q, n)
		}
	}
	appendFile(t, filepath.Join(logs, "a.log"), "seq=3000 appended\n")
	run()
	count = countLines(t, out)
	if len(count) != 3001 || count[3000] != 1 || count[0] != 1 {
		t.Fatalf("second run: %d distinct lines, seq 3000 x%d, seq 0 x%d", len(count), count[3000], count[0])
	}
}

func countLines(t *testing.T, path string) map[int]int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	count := map[int]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if q, ok := parseSeq(sc.Bytes()); ok {
			count[q]++
		}
	}
	return count
}

// ---- minimal test plugins

type lineDecoder struct{}

func (lineDecoder) Decode(rec pipeline.Record, out *pipeline.Batch) error {
	out.Add().Payload = out.Str(rec.Data)
	return nil
}

func lineDecoderFactory() pipeline.Factory[pipeline.Decoder] {
	return pipeline.NewFactory("lines", "", func() struct{} { return struct{}{} },
		func(pipeline.Settings, struct{}) (pipeline.Decoder, error) { return lineDecoder{}, nil })
}

type rawEncoder struct{}

func (rawEncoder) Encode(dst []byte, m *pipeline.Message) ([]byte, error) {
	return append(dst, m.Payload...), nil
}

func rawEncoderFactory() pipeline.Factory[pipeline.Encoder] {
	return pipeline.NewFactory("raw", "", func() struct{} { return struct{}{} },
		func(pipeline.Settings, struct{}) (pipeline.Encoder, error) { return rawEncoder{}, nil })
}

type syncFileConfig struct {
	Path string `toml:"path"`
}

type syncFile struct{ path string }

func (a syncFile) Write(_ context.Context, batch []pipeline.Encoded) error {
	f, err := os.OpenFile(a.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	var b []byte
	for _, e := range batch {
		b = append(append(b, e.Data...), '\n')
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

func syncFileFactory() pipeline.Factory[pipeline.Output] {
	return pipeline.NewFactory("appendfile", "", func() syncFileConfig { return syncFileConfig{} },
		func(_ pipeline.Settings, c syncFileConfig) (pipeline.Output, error) { return syncFile{c.Path}, nil })
}
