package roundtrip

import (
	"bytes"
	"os"
	"testing"

	sysdec "github.com/ternlog/tern/decoders/syslog"
	encjson "github.com/ternlog/tern/encoders/json"
	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/pipeline"
)

// testdata/w3.txt is W3's traffic: the first 512 lines of
// "ternbench gen -mode syslog -seed 1" (RFC 5424, 250 bytes a line).

// w3Pair is bench/w3.toml's decoder and encoder, and W3's lines.
func w3Pair(t testing.TB) (pipeline.Decoder, *encjson.Encoder, [][]byte) {
	t.Helper()
	dcfg := sysdec.Factory().NewConfig().(*sysdec.Config)
	dcfg.Format = "rfc5424"
	d, err := sysdec.New(pipeline.Settings{}, *dcfg)
	if err != nil {
		t.Fatal(err)
	}
	ecfg := encjson.Factory().NewConfig().(*encjson.Config)
	ecfg.Mode = "flat"
	ecfg.Headers = []string{"timestamp", "hostname", "severity", "payload"}
	ecfg.Nest = true
	ecfg.HeaderKeys.Hostname, ecfg.HeaderKeys.Payload = "host", "message"
	e, err := encjson.New(pipeline.Settings{Telemetry: pipeline.NopTelemetry{}}, *ecfg)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/w3.txt")
	if err != nil {
		t.Fatal(err)
	}
	return d, e, bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

// BenchmarkW3 is W3's work without the engine, on one core: it decodes
// 256 lines into a batch sized as the engine sizes them and lent the
// buffer they were read into, encodes each message, and resets the batch
// for reuse. One operation is one line; the reference's is
// BenchmarkTransforms/w3 in cmd/ternbench.
func BenchmarkW3(b *testing.B) { benchW3(b, true) }

// BenchmarkW3Decode and BenchmarkW3Encode split BenchmarkW3's work.
func BenchmarkW3Decode(b *testing.B) { benchW3(b, false) }

func benchW3(b *testing.B, encode bool) {
	d, e, lines := w3Pair(b)
	batch := pipeline.NewBatch()
	out := make([]byte, 0, 64<<10)
	// As the tcp input does, each batch's lines are read into a ReadBuffer
	// and the buffer is lent to the batch.
	var recs [][]byte
	next := 0
	read := func() {
		rb := pipeline.NewReadBuffer()
		recs = recs[:0]
		n := 0
		for range 256 {
			l := lines[next%len(lines)]
			next++
			recs = append(recs, rb.B[n:n+copy(rb.B[n:], l)])
			n += len(l) + 1
		}
		batch.Reset()
		batch.Reserve(256, 256*250)
		batch.Lend(rb)
	}
	read()
	b.SetBytes(250)
	b.ReportAllocs()
	defer benchutil.CPU(b)()
	i := 0
	for b.Loop() {
		if err := d.Decode(pipeline.Record{Data: recs[i]}, batch); err != nil {
			b.Fatal(err)
		}
		i++
		if i == len(recs) {
			out = out[:0]
			for _, m := range batch.Msgs {
				if encode {
					out, _ = e.Encode(out, m)
				}
			}
			batch.Retire()
			read()
			i = 0
		}
	}
}

func BenchmarkW3Encode(b *testing.B) {
	d, e, lines := w3Pair(b)
	batch := pipeline.NewBatch()
	for _, l := range lines {
		if err := d.Decode(pipeline.Record{Data: l}, batch); err != nil {
			b.Fatal(err)
		}
	}
	out := make([]byte, 0, 64<<10)
	b.SetBytes(250)
	b.ReportAllocs()
	defer benchutil.CPU(b)()
	i := 0
	for b.Loop() {
		out, _ = e.Encode(out[:0], batch.Msgs[i%batch.Len()])
		i++
	}
}
