package msgpack

import (
	"bytes"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/framing"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestCases(t *testing.T) { pipelinetest.RunDecoderCases(t, Factory()) }

func randomMessage(r *rand.Rand) *pipeline.Message {
	m := pipeline.NewMessage()
	m.UUID = pipeline.NewUUID()
	m.Timestamp = r.Int64()
	m.Type, m.Logger, m.Hostname = "t\x00\xff", "l", strings.Repeat("h", r.IntN(300))
	m.Severity, m.Pid = int32(r.IntN(8)), r.Int32()
	m.Payload = strings.Repeat("\n", r.IntN(70000))
	for i := r.IntN(20); i > 0; i-- {
		switch r.IntN(5) {
		case 0:
			m.AddString("s", "é\x00")
		case 1:
			m.AddBytes("b", []byte{0, 1, 0xff})
		case 2:
			m.AddField(pipeline.NewField("i", pipeline.TypeInteger, "ms", pipeline.IntValue(r.Int64()), pipeline.IntValue(-1)))
		case 3:
			m.AddDouble("d", r.NormFloat64())
		case 4:
			m.AddField(pipeline.NewField("empty", pipeline.TypeBool, ""))
		}
	}
	return m
}

// Frames and bare messages read back equal, header included.
func TestRoundTrip(t *testing.T) {
	d, _ := New(pipelinetest.Settings(t, "decoders.msgpack"), DefaultConfig())
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		m := randomMessage(r)
		rec := framing.AppendMessageFrame(nil, m)
		if i%2 == 1 {
			rec = codec.AppendMsgpack(nil, m)
		}
		b := pipeline.NewBatch()
		if err := d.Decode(pipeline.Record{Data: rec}, b); err != nil {
			t.Fatal(err)
		}
		if len(b.Msgs) != 1 || !b.Msgs[0].Equal(m) {
			t.Fatalf("message %d differs", i)
		}
	}
}

// Declared lengths are checked before anything is allocated, and records
// over max_bytes are refused unread.
func TestLimits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBytes = 1024
	d, _ := New(pipelinetest.Settings(t, "decoders.msgpack"), cfg)
	big := framing.AppendMessageFrame(nil, &pipeline.Message{Payload: strings.Repeat("x", 2000)})
	if err := d.Decode(pipeline.Record{Data: big}, pipeline.NewBatch()); err == nil || !strings.Contains(err.Error(), "max_bytes") {
		t.Errorf("oversize record: %v", err)
	}
	for _, rec := range [][]byte{
		{0xdd, 0xff, 0xff, 0xff, 0xff}, // array32 of 4G
		{0x9b, 1, 0xc4, 0, 0, 0xa0, 0xa0, 0, 0xa0, 0xa0, 0, 0xa0, 0xdd, 0xff, 0xff, 0xff, 0xff}, // 4G fields
		{0x9b, 1, 0xc4, 0, 0, 0xdb, 0xff, 0xff, 0xff, 0xff},                                     // str32 of 4 GiB
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := d.Decode(pipeline.Record{Data: rec}, pipeline.NewBatch())
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("% x decoded", rec)
		}
		if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<10 {
			t.Errorf("% x: %d bytes allocated", rec, grown)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range pipelinetest.Cases(f, "") {
		if in, err := os.ReadFile(c.Dir + "/input.txt"); err == nil {
			for _, rec := range bytes.Split(in, []byte("\n")) {
				f.Add(rec)
			}
		}
	}
	f.Add(framing.AppendMessageFrame(nil, randomMessage(rand.New(rand.NewPCG(3, 4)))))
	d, _ := New(pipeline.Settings{}, DefaultConfig())
	f.Fuzz(func(t *testing.T, data []byte) {
		b := pipeline.NewBatch()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := d.Decode(pipeline.Record{Data: data}, b)
		runtime.ReadMemStats(&after)
		if grown := after.TotalAlloc - before.TotalAlloc; grown > uint64(4*len(data)+64<<10) {
			t.Fatalf("%d bytes allocated for %d bytes", grown, len(data))
		}
		if err != nil {
			if b.Len() != 0 {
				t.Fatal("failed decode left a message")
			}
			return
		}
		// What decodes re-encodes to a message that decodes the same.
		m := b.Msgs[0]
		b2 := pipeline.NewBatch()
		if err := d.Decode(pipeline.Record{Data: framing.AppendMessageFrame(nil, m)}, b2); err != nil || !b2.Msgs[0].Equal(m) {
			t.Fatalf("re-encoded message differs: %v", err)
		}
	})
}

func BenchmarkDecodeFrame(b *testing.B) {
	in, err := os.ReadFile("testdata/basic/input.txt")
	if err != nil {
		b.Fatal(err)
	}
	rec := bytes.Split(in, []byte("\n"))[0]
	d, _ := New(pipeline.Settings{}, DefaultConfig())
	batch := pipeline.NewBatch()
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if batch.Len() >= 1024 {
			batch = pipeline.NewBatch()
		}
		if err := d.Decode(pipeline.Record{Data: rec}, batch); err != nil {
			b.Fatal(err)
		}
	}
}
