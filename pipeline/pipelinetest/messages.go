package pipelinetest

import "github.com/ternlog/tern/pipeline"

// GoldenMessage is the message of the README's canonical JSON example, with
// a field of each value type; codec and framing tests compare against it.
func GoldenMessage() *pipeline.Message {
	m := pipeline.NewMessage()
	m.UUID, _ = pipeline.ParseUUID("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")
	m.Timestamp = 1795305600123456789 // 2026-11-22T00:00:00.123456789Z
	m.Type = "TEST"
	m.Logger = "GoSpec"
	m.Severity = 6
	m.Payload = "Test Payload"
	m.EnvVersion = "0.8"
	m.Pid = 1234
	m.Hostname = "h1"
	m.AddString("foo", "bar")
	m.AddField(pipeline.NewField("int", pipeline.TypeInteger, "", pipeline.IntValue(999), pipeline.IntValue(1024)))
	m.AddBytes("bytes", []byte("data"))
	m.AddField(pipeline.NewField("d", pipeline.TypeDouble, "ms", pipeline.DoubleValue(99.9)))
	m.AddBool("ok", true)
	return m
}

// W2Message is a typical event: the W2 record after the json decoder.
func W2Message() *pipeline.Message {
	m := pipeline.NewMessage()
	m.UUID = pipeline.NewUUID()
	m.Timestamp = 1795341600123000000
	m.Logger = "tcp_json"
	m.Hostname = "router-1"
	m.AddString("host", "web-007.dc1.example.net")
	m.AddString("service", "checkout")
	m.AddString("level", "info")
	m.AddInt("pid", 12345)
	m.AddInt("seq", 42)
	m.AddDouble("latency_ms", 12.345)
	m.AddInt("status", 200)
	m.AddString("user.id", "u-000123")
	m.AddString("user.role", "admin")
	m.AddString("message", "GET /api/v1/items/123 completed lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor")
	return m
}
