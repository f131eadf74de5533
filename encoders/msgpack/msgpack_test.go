package msgpack

import (
	"strings"
	"testing"

	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/framing"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestCases(t *testing.T) { pipelinetest.RunEncoderCases(t, Factory()) }

func TestFrames(t *testing.T) {
	e, _ := New(pipelinetest.Settings(t, "encoders.msgpack"), DefaultConfig())
	if e.Delimiter() != "" {
		t.Error("frames need no delimiter")
	}
	m := pipeline.NewMessage()
	m.Type = "x"
	out, err := e.Encode([]byte("keep"), m)
	if err != nil || string(out[:4]) != "keep" || out[4] != framing.FrameMagic || out[5] != framing.FrameMessage {
		t.Fatalf("Encode = % x, %v", out, err)
	}
	got := pipeline.NewMessage()
	if err := codec.DecodeMsgpackBytes(out[4+framing.FrameHeaderLen:], got, nil); err != nil || !got.Equal(m) {
		t.Errorf("payload does not decode back: %v", err)
	}
	bare, _ := New(pipelinetest.Settings(t, "encoders.msgpack"), Config{Framed: false})
	if out, _ := bare.Encode(nil, m); out[0] == framing.FrameMagic {
		t.Error("framed = false wrote a frame")
	}
	m.Payload = strings.Repeat("x", framing.DefaultMaxFrame)
	if out, err := e.Encode([]byte("keep"), m); err == nil || string(out) != "keep" {
		t.Errorf("oversize message: %v, %d bytes", err, len(out))
	}
}

func BenchmarkEncode(b *testing.B) {
	e, _ := New(pipeline.Settings{}, DefaultConfig())
	m := pipeline.NewMessage()
	m.Type, m.Logger, m.Hostname, m.Payload = "zeek.conn", "zeek", "sensor-1", strings.Repeat("p", 200)
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		m.AddString(n, "value "+n)
		m.AddInt(n+"_n", 12345)
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	for b.Loop() {
		buf, _ = e.Encode(buf[:0], m)
	}
	stop()
}
