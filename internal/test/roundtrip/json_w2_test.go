package roundtrip

import (
	"bytes"
	"os"
	"testing"

	decjson "github.com/ternlog/tern/decoders/json"
	encjson "github.com/ternlog/tern/encoders/json"
	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// W2 is the throughput workload "JSON object in, same JSON object out": the
// json decoder and this encoder, configured as in the w2 testdata cases,
// must give back every record byte for byte.
const (
	w2Input          = "../../../decoders/json/testdata/w2/input.txt"
	w2DecoderCase    = "../../../decoders/json/testdata/w2"
	w2EncoderCase    = "../../../encoders/json/testdata/w2"
	w2BatchSize      = 256 // records per Batch, as the engine batches them
	w2RecordTemplate = 300
)

func w2Pair(t testing.TB) (*decjson.Decoder, *encjson.Encoder) {
	t.Helper()
	dcfg := pipelinetest.ConfigFor(t, decjson.Factory(), pipelinetest.Case{Dir: w2DecoderCase}).(*decjson.Config)
	d, err := decjson.New(pipeline.Settings{}, *dcfg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := encjson.New(pipeline.Settings{Telemetry: pipeline.NopTelemetry{}}, loadConfig(t, w2EncoderCase))
	if err != nil {
		t.Fatal(err)
	}
	return d, e
}

func w2Records(t testing.TB) [][]byte {
	t.Helper()
	data, err := os.ReadFile(w2Input)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func TestW2RoundTrip(t *testing.T) {
	d, e := w2Pair(t)
	recs := w2Records(t)
	b := pipeline.NewBatch()
	for _, rec := range recs {
		if len(rec) != w2RecordTemplate {
			t.Errorf("record of %d bytes, want %d", len(rec), w2RecordTemplate)
		}
		if err := d.Decode(pipeline.Record{Data: rec}, b); err != nil {
			t.Fatal(err)
		}
		m := b.Msgs[b.Len()-1]
		if m.Timestamp == 0 {
			t.Error("timestamp not taken into the header")
		}
		out, err := e.Encode(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, rec) {
			t.Errorf("round trip:\n got %s\nwant %s", out, rec)
		}
	}
}

// BenchmarkW2 decodes and encodes one 300-byte W2 record per operation.
func BenchmarkW2(b *testing.B) {
	d, e := w2Pair(b)
	rec := w2Records(b)[0]
	batch := pipeline.NewBatch()
	out := make([]byte, 0, 1024)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	defer benchutil.CPU(b)()
	for b.Loop() {
		if batch.Len() == w2BatchSize {
			batch = pipeline.NewBatch()
		}
		if err := d.Decode(pipeline.Record{Data: rec}, batch); err != nil {
			b.Fatal(err)
		}
		var err error
		out, err = e.Encode(out[:0], batch.Msgs[batch.Len()-1])
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkW2Decode(b *testing.B) {
	d, _ := w2Pair(b)
	rec := w2Records(b)[0]
	batch := pipeline.NewBatch()
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	defer benchutil.CPU(b)()
	for b.Loop() {
		if batch.Len() == w2BatchSize {
			batch = pipeline.NewBatch()
		}
		if err := d.Decode(pipeline.Record{Data: rec}, batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkW2Encode(b *testing.B) {
	d, e := w2Pair(b)
	rec := w2Records(b)[0]
	batch := pipeline.NewBatch()
	if err := d.Decode(pipeline.Record{Data: rec}, batch); err != nil {
		b.Fatal(err)
	}
	m := batch.Msgs[0]
	out := make([]byte, 0, 1024)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	defer benchutil.CPU(b)()
	for b.Loop() {
		out, _ = e.Encode(out[:0], m)
	}
}

func loadConfig(t testing.TB, dir string) encjson.Config {
	t.Helper()
	return *pipelinetest.ConfigFor(t, encjson.Factory(), pipelinetest.Case{Dir: dir}).(*encjson.Config)
}
