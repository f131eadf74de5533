package payload

import (
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestEncode(t *testing.T) {
	e, err := New(pipelinetest.Settings(t, "encoders.payload"), Config{PrefixTimestamp: true, TimestampLayout: time.RFC3339})
	if err != nil {
		t.Fatal(err)
	}
	m := pipeline.NewMessage()
	m.Payload, m.Timestamp = "hello", 1e9
	got, err := e.Encode(nil, m)
	if err != nil || string(got) != "1970-01-01T00:00:01Z hello" {
		t.Errorf("Encode = %q, %v", got, err)
	}
}
