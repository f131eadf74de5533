package codec_test

import (
	"math"
	"math/rand/v2"
	"strings"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// goldenJSON is the canonical form of goldenMessage, byte for byte.
const goldenJSON = `{"uuid":"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9","timestamp":"2026-11-22T00:00:00.123456789Z","type":"TEST","logger":"GoSpec","severity":6,"payload":"Test Payload","env_version":"0.8","pid":1234,"hostname":"h1","fields":[{"name":"foo","type":"string","value":["bar"]},{"name":"int","type":"integer","value":[999,1024]},{"name":"bytes","type":"bytes","value":["ZGF0YQ=="]},{"name":"d","type":"double","value":[99.9],"representation":"ms"},{"name":"ok","type":"bool","value":[true]}]}`

func goldenMessage() *pipeline.Message { return pipelinetest.GoldenMessage() }

func w2Message() *pipeline.Message { return pipelinetest.W2Message() }

var hostilePieces = []string{
	"a", "Zz", " ", "\"", "\\", "/", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "é", "€", "𝄞",
	"\u2028", "\u2029", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80", "<script>", "&amp;", `\u0000`, "\ufffd",
	"{\"k\":1}", "0x1E\x1e", "\x1f",
}

func randString(r *rand.Rand) string {
	switch r.IntN(20) {
	case 0:
		return ""
	case 1:
		return strings.Repeat("x", 200+r.IntN(200)) // str8/str16 boundaries
	case 2:
		if r.IntN(10) == 0 {
			return strings.Repeat("y", 65530+r.IntN(20))
		}
	}
	var sb strings.Builder
	for range r.IntN(12) {
		sb.WriteString(hostilePieces[r.IntN(len(hostilePieces))])
	}
	return sb.String()
}

var specialFloats = []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), 1e21, 1e-7, 5e-324, math.MaxFloat64, 99.9, 2}

var specialInts = []int64{0, -1, 127, 128, -32, -33, 255, 256, 65535, 65536, -129, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64, 1 << 32}

func randValue(r *rand.Rand, t pipeline.ValueType) pipeline.Value {
	switch t {
	case pipeline.TypeString:
		return pipeline.StringValue(randString(r))
	case pipeline.TypeBytes:
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return pipeline.BytesValue(b)
	case pipeline.TypeInteger:
		if r.IntN(2) == 0 {
			return pipeline.IntValue(specialInts[r.IntN(len(specialInts))])
		}
		return pipeline.IntValue(int64(r.Uint64()))
	case pipeline.TypeUnsigned:
		if r.IntN(2) == 0 {
			return pipeline.UintValue(uint64(specialInts[r.IntN(len(specialInts))]))
		}
		return pipeline.UintValue(r.Uint64())
	case pipeline.TypeDouble:
		if r.IntN(2) == 0 {
			return pipeline.DoubleValue(specialFloats[r.IntN(len(specialFloats))])
		}
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) {
			f = math.NaN() // JSON has a single NaN
		}
		return pipeline.DoubleValue(f)
	}
	return pipeline.BoolValue(r.IntN(2) == 0)
}

// randMessage builds a message with hostile content: invalid UTF-8, control
// characters, NaN, empty and repeated fields, extreme numbers.
func randMessage(r *rand.Rand) *pipeline.Message {
	m := pipeline.NewMessage()
	if r.IntN(4) > 0 {
		m.UUID = pipeline.NewUUID()
	}
	m.Timestamp = int64(r.Uint64())
	if r.IntN(4) == 0 {
		m.Timestamp = 0
	}
	m.Type, m.Logger, m.Payload, m.EnvVersion, m.Hostname = randString(r), randString(r), randString(r), randString(r), randString(r)
	m.Severity = int32(r.Uint32())
	if r.IntN(2) == 0 {
		m.Severity = int32(r.IntN(8))
	}
	m.Pid = int32(r.Uint32())
	names := []string{"a", "b", "user.id", "", randString(r)}
	for range r.IntN(8) {
		t := pipeline.ValueType(r.IntN(6))
		f := pipeline.NewField(names[r.IntN(len(names))], t, "")
		if r.IntN(3) == 0 {
			f.SetRepresentation(randString(r))
		}
		n := 1
		switch r.IntN(4) {
		case 0:
			n = 0
		case 1:
			n = 2 + r.IntN(5)
		}
		for range n {
			if r.IntN(10) == 0 {
				f.AppendUnset()
				continue
			}
			f.Append(randValue(r, t))
		}
		m.AddField(f)
	}
	return m
}

// sanitized is m as it comes back from JSON: every invalid UTF-8 byte in a
// string replaced by U+FFFD.
func sanitized(m *pipeline.Message) *pipeline.Message {
	fix := func(s string) string { return string([]rune(s)) }
	c := m.Clone()
	c.Type, c.Logger, c.Payload, c.EnvVersion, c.Hostname = fix(c.Type), fix(c.Logger), fix(c.Payload), fix(c.EnvVersion), fix(c.Hostname)
	for i := range c.Fields {
		f := &c.Fields[i]
		f.Name = fix(f.Name)
		f.SetRepresentation(fix(f.Representation()))
		if f.Type == pipeline.TypeString {
			for j := 0; j < f.Len(); j++ {
				if f.Unset(j) {
					continue
				}
				f.SetValue(j, pipeline.StringValue(fix(f.Value(j).Str())))
			}
		}
	}
	return c
}
