package codec_test

import (
	"bytes"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
)

// The layout is a contract with other routers and with files on disk: this
// vector must never change for version 1.
const goldenMsgpackHex = "9b01c4100f1e2d3c4b5a49788695a4b3c2d1e0f9cf18ea34ee6ea0cd15a454455354a6476f5370656306ac54657374205061796c6f6164a3302e38cd04d2a2683195" +
	"94a3666f6f00a0a3626172" + "95a3696e7402a0cd03e7cd0400" + "94a5627974657301a0c40464617461" + "94a16403a26d73cb4058f9999999999a" + "94a26f6b04a0c3"

func TestMsgpackGolden(t *testing.T) {
	m := goldenMessage()
	got := codec.AppendMsgpack(nil, m)
	if hex.EncodeToString(got) != goldenMsgpackHex {
		t.Fatalf("AppendMsgpack = %x\nwant            %s", got, goldenMsgpackHex)
	}
	want, _ := hex.DecodeString(goldenMsgpackHex)
	var back pipeline.Message
	if err := codec.DecodeMsgpackBytes(want, &back, pipeline.NewBatch()); err != nil {
		t.Fatal(err)
	}
	if !back.Equal(m) {
		t.Fatalf("decoded %+v", back)
	}
}

func TestMsgpackLibraryInterop(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 500 {
		m := randMessage(r)
		// The library calls the adapters' EncodeMsgpack / DecodeMsgpack.
		data, err := msgpack.Marshal(&libMessage{*m})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, codec.AppendMsgpack(nil, m)) {
			t.Fatal("msgpack.Marshal and AppendMsgpack differ")
		}
		var back libMessage
		if err := msgpack.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if !back.Equal(m) {
			t.Fatalf("Unmarshal: got %+v\nwant %+v", back.Message, *m)
		}
		// The generic reader sees the documented layout.
		var generic []any
		if err := msgpack.Unmarshal(data, &generic); err != nil {
			t.Fatal(err)
		}
		if len(generic) != 11 || generic[0] != int8(1) {
			t.Fatalf("layout: %v", generic[:2])
		}
	}
}

func TestMsgpackRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	b := pipeline.NewBatch()
	for i := range 3000 {
		m := randMessage(r)
		if i%7 == 0 {
			m.Payload = "\xff\xfe raw \x00 bytes \xc3" // invalid UTF-8 survives byte-exact
		}
		data := codec.AppendMsgpack(nil, m)
		var back pipeline.Message
		if err := codec.DecodeMsgpackBytes(data, &back, b); err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		if !back.Equal(m) {
			t.Fatalf("#%d: got %+v\nwant %+v", i, back, *m)
		}
		if i%7 == 0 && back.Payload != "\xff\xfe raw \x00 bytes \xc3" {
			t.Fatal("payload bytes changed")
		}
		// Truncated input is always an error, never a panic.
		if len(data) > 0 {
			cut := r.IntN(len(data))
			if err := codec.DecodeMsgpackBytes(data[:cut], &back, nil); err == nil {
				t.Fatalf("#%d: truncated at %d of %d accepted", i, cut, len(data))
			}
		}
	}
}

func TestMsgpackExtraElementsIgnored(t *testing.T) {
	data := codec.AppendMsgpack(nil, goldenMessage())
	data[0] = 0x9d
	data = append(data, 0x91, 0x81, 0xa1, 'k', 0x01) // element 11: [{"k":1}]
	data = append(data, 0xa1, 'x')                   // element 12: "x"
	var m pipeline.Message
	if err := codec.DecodeMsgpackBytes(data, &m, nil); err != nil {
		t.Fatal(err)
	}
	if !m.Equal(goldenMessage()) {
		t.Fatal("extra elements changed the message")
	}
	var lm libMessage
	if err := msgpack.Unmarshal(data, &lm); err != nil || !lm.Equal(goldenMessage()) {
		t.Fatalf("stream decoder: %v", err)
	}
}

func TestMsgpackHostile(t *testing.T) {
	golden, _ := hex.DecodeString(goldenMsgpackHex)
	cases := map[string][]byte{
		"empty":               {},
		"array32 4e9":         {0xdd, 0xee, 0x6b, 0x28, 0x00},
		"fields array32 4e9":  append(append([]byte{}, golden[:65]...), 0xdd, 0xff, 0xff, 0xff, 0xff),
		"str32 4e9 type":      append(append([]byte{}, golden[:29]...), 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'),
		"version 2":           append([]byte{0x9b, 0x02}, golden[2:]...),
		"short array":         {0x93, 0x01, 0xc0, 0x00},
		"trailing byte":       append(append([]byte{}, golden...), 0xc0),
		"uint64 timestamp":    {0x9b, 0x01, 0xc0, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"severity too big":    {0x9b, 0x01, 0xc0, 0x00, 0xa0, 0xa0, 0xce, 0xff, 0xff, 0xff, 0xff, 0xa0, 0xa0, 0x00, 0xa0, 0x90},
		"uuid 3 bytes":        {0x9b, 0x01, 0xc4, 0x03, 1, 2, 3, 0x00, 0xa0, 0xa0, 0x00, 0xa0, 0xa0, 0x00, 0xa0, 0x90},
		"bad field type":      {0x9b, 0x01, 0xc0, 0x00, 0xa0, 0xa0, 0x00, 0xa0, 0xa0, 0x00, 0xa0, 0x91, 0x93, 0xa0, 0x09, 0xa0},
		"value of wrong kind": {0x9b, 0x01, 0xc0, 0x00, 0xa0, 0xa0, 0x00, 0xa0, 0xa0, 0x00, 0xa0, 0x91, 0x94, 0xa0, 0x02, 0xa0, 0xa1, 'x'},
		"deep extra element":  append(append([]byte{0x9c}, golden[1:]...), bytes.Repeat([]byte{0x91}, 100000)...),
	}
	for name, data := range cases {
		var m pipeline.Message
		err := codec.DecodeMsgpackBytes(data, &m, nil)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		t.Logf("%s: %v", name, err)
		if err := msgpack.Unmarshal(data, &libMessage{}); err == nil && name != "trailing byte" {
			t.Errorf("%s: stream decoder accepted", name)
		}
	}
	// A 5-byte header claiming 4e9 elements fails without allocating for them.
	for _, name := range []string{"array32 4e9", "fields array32 4e9", "str32 4e9 type"} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var m pipeline.Message
		_ = codec.DecodeMsgpackBytes(cases[name], &m, nil)
		_ = msgpack.Unmarshal(cases[name], &libMessage{})
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("%s: %d bytes allocated", name, n)
		}
	}
}

func TestMsgpackErrorsNameElement(t *testing.T) {
	data := []byte{0x9b, 0x01, 0xc0, 0x00, 0xa0, 0xa0, 0x00, 0xa0, 0xa0, 0x00, 0xa0, 0x92, 0x93, 0xa0, 0x00, 0xa0, 0x94, 0xa0, 0x02, 0xa0, 0xa1, 'x'}
	var m pipeline.Message
	err := codec.DecodeMsgpackBytes(data, &m, nil)
	if err == nil || !strings.Contains(err.Error(), "fields[1].value[0]: integer expected") {
		t.Fatalf("err = %v", err)
	}
}

func TestMsgpackDoubleBits(t *testing.T) {
	m := pipeline.NewMessage()
	odd := math.Float64frombits(0x7ff8000000000abc) // a NaN payload survives msgpack
	m.AddDouble("x", odd)
	var back pipeline.Message
	if err := codec.DecodeMsgpackBytes(codec.AppendMsgpack(nil, m), &back, nil); err != nil || !back.Equal(m) {
		t.Fatalf("%v %+v", err, back)
	}
}

func FuzzMsgpack(f *testing.F) {
	golden, _ := hex.DecodeString(goldenMsgpackHex)
	f.Add(golden)
	f.Add(codec.AppendMsgpack(nil, w2Message()))
	f.Add(codec.AppendMsgpack(nil, pipeline.NewMessage()))
	r := rand.New(rand.NewPCG(1, 1))
	for range 8 {
		f.Add(codec.AppendMsgpack(nil, randMessage(r)))
	}
	b := pipeline.NewBatch() // reused: a fresh batch costs 40 KiB per run
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && data[len(data)-1]%16 == 0 {
			// Allocation stays proportional to the input, whatever it declares.
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var m pipeline.Message
			_ = codec.DecodeMsgpackBytes(data, &m, nil)
			_ = msgpack.Unmarshal(data, &libMessage{})
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; n > 64*uint64(len(data))+256<<10 {
				t.Fatalf("%d bytes allocated for %d bytes of input", n, len(data))
			}
		}
		var m pipeline.Message
		b.Truncate(0)
		err := codec.DecodeMsgpackBytes(data, &m, b)
		var m2 libMessage
		err2 := msgpack.Unmarshal(data, &m2)
		if err != nil {
			return
		}
		if err2 == nil && !m2.Equal(&m) {
			t.Fatalf("stream and byte decoders differ")
		}
		out := codec.AppendMsgpack(nil, &m)
		var back pipeline.Message
		if err := codec.DecodeMsgpackBytes(out, &back, nil); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if !back.Equal(&m) {
			t.Fatal("round trip changed the message")
		}
		if out2 := codec.AppendMsgpack(nil, &back); !bytes.Equal(out, out2) {
			t.Fatal("not a fixed point")
		}
	})
}

func BenchmarkAppendMsgpack(b *testing.B) {
	m := w2Message()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	defer benchutil.CPU(b)()
	for b.Loop() {
		buf = codec.AppendMsgpack(buf[:0], m)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeMsgpackBytes(b *testing.B) {
	data := codec.AppendMsgpack(nil, w2Message())
	batch := pipeline.NewBatch()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	defer benchutil.CPU(b)()
	for b.Loop() {
		if batch.Len() == 256 {
			batch = pipeline.NewBatch()
		}
		if err := codec.DecodeMsgpackBytes(data, batch.Add(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeMsgpackLibrary(b *testing.B) {
	m := w2Message()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	b.ReportAllocs()
	defer benchutil.CPU(b)()
	for b.Loop() {
		buf.Reset()
		if err := enc.Encode(&libMessage{*m}); err != nil {
			b.Fatal(err)
		}
	}
}
