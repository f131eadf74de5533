package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/decoders"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

func TestMain(m *testing.M) {
	// The end-to-end tests run this test binary as ternbench (the sink).
	if os.Getenv("TERNBENCH_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	if ternBuild.dir != "" {
		os.RemoveAll(ternBuild.dir)
	}
	os.Exit(code)
}

// genFile writes a workload into dir and returns its path and summary.
func genFile(t *testing.T, dir string, c genConfig) (string, genSummary) {
	t.Helper()
	if c.Rate == 0 {
		c.Rate = 10_000
	}
	g, err := newGenerator(c)
	require.NoError(t, err)
	path := filepath.Join(dir, c.Mode+".txt")
	f, err := os.Create(path)
	require.NoError(t, err)
	sum, err := g.writeAll(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return path, sum
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, bytes.HasSuffix(b, []byte("\n")), "%s does not end with a newline", path)
	return bytes.Split(b[:len(b)-1], []byte("\n"))
}

func fileHash(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

func TestGenDeterministic(t *testing.T) {
	for _, c := range []genConfig{
		{Mode: "syslog", N: 3000},
		{Mode: "json", N: 3000},
		{Mode: "cef", N: 3000, Sources: 500, FailRatio: 0.3, Dist: "uniform", Attackers: 2, Threshold: 20, Window: 30 * time.Second, IPv6: 0.2, Header: "rfc3164"},
	} {
		t.Run(c.Mode, func(t *testing.T) {
			c.Seed = 7
			a, sa := genFile(t, t.TempDir(), c)
			b, sb := genFile(t, t.TempDir(), c)
			assert.Equal(t, fileHash(t, a), fileHash(t, b), "same seed, different bytes")
			assert.Equal(t, sa, sb)
			c.Seed = 8
			d, _ := genFile(t, t.TempDir(), c)
			assert.NotEqual(t, fileHash(t, a), fileHash(t, d), "another seed, same bytes")
			assert.Len(t, lines(t, a), 3000)
		})
	}
}

// TestGenStart: event i is i/rate seconds after -start.
func TestGenStart(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	_, sum := genFile(t, t.TempDir(), genConfig{Mode: "json", N: 101, Rate: 50, Start: start})
	assert.Equal(t, "2026-01-02T03:04:05Z", sum.First)
	assert.Equal(t, "2026-01-02T03:04:07Z", sum.Last)
	assert.Equal(t, 2, run([]string{"gen", "-mode", "json", "-n", "1", "-start", "yesterday", "-o", "-"}, io.Discard, io.Discard), "a bad -start is refused")
}

// newDecoder builds one of tern's decoders with its defaults and opts.
func newDecoder(t *testing.T, typ string, opts ...string) pipeline.Decoder {
	t.Helper()
	f, ok := pipeline.Lookup(decoders.Factories(), typ)
	require.True(t, ok, typ)
	cfg := f.NewConfig()
	require.NoError(t, config.DecodeOptions(cfg, opts))
	d, err := f.Build(pipeline.Settings{Name: "decoders." + typ, Logger: slog.New(slog.DiscardHandler),
		Now: time.Now, Telemetry: pipeline.NopTelemetry{}}, cfg)
	require.NoError(t, err)
	return d
}

// TestGenSyslogIsRFC5424: every line is strict RFC 5424 to tern's decoder,
// of the asked size, with structured data, escapes and offsets among them.
func TestGenSyslogIsRFC5424(t *testing.T) {
	path, _ := genFile(t, t.TempDir(), genConfig{Mode: "syslog", N: 4000})
	dec := newDecoder(t, "syslog", "format=rfc5424")
	var sd, escaped, offset int
	for i, l := range lines(t, path) {
		require.Len(t, l, 250, "line %d", i+1)
		b := pipeline.NewBatch()
		require.NoError(t, dec.Decode(pipeline.Record{Data: l}, b), "line %d: %s", i+1, l)
		m := b.Msgs[0]
		for _, f := range m.Fields {
			if strings.HasPrefix(f.Name, "sd.") {
				sd++
				if strings.ContainsAny(f.Value(0).Str(), `"\]`) {
					escaped++
				}
			}
		}
		if bytes.Contains(l[:40], []byte("+01:00")) {
			offset++
		}
	}
	assert.Greater(t, sd, 4000, "structured data params")
	assert.Positive(t, escaped, "SD values with escapes")
	assert.Positive(t, offset, "timestamps with an offset")
}

// TestGenJSONObjects: every line is one JSON object with a timestamp and
// typed values, -size bytes unless escapes made it longer.
func TestGenJSONObjects(t *testing.T) {
	path, _ := genFile(t, t.TempDir(), genConfig{Mode: "json", N: 4000})
	exact := 0
	kinds := map[string]bool{}
	for i, l := range lines(t, path) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(l, &m), "line %d: %s", i+1, l)
		_, err := time.Parse(time.RFC3339, m["timestamp"].(string))
		require.NoError(t, err)
		for _, v := range m {
			switch v := v.(type) {
			case float64:
				kinds["number"] = true
			case bool:
				kinds["bool"] = true
			case map[string]any:
				kinds["object"] = true
			case []any:
				kinds["array"] = true
			case string:
				if strings.ContainsAny(v, "\"\\é") {
					kinds["escaped string"] = true
				}
			}
		}
		if len(l) == 300 {
			exact++
		}
		require.Less(t, len(l), 320)
	}
	assert.Len(t, kinds, 5, "%v", kinds)
	assert.Greater(t, exact, 3800)
}

// readLines is a bufio scan of a file, for large ones.
func readLines(t *testing.T, path string, fn func([]byte)) {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		fn(sc.Bytes())
	}
	require.NoError(t, sc.Err())
}
