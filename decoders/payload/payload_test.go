package payload

import (
	"testing"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestDecode(t *testing.T) {
	d, err := New(pipelinetest.Settings(t, "decoders.payload"), Config{MessageType: "raw", Severity: 3})
	if err != nil {
		t.Fatal(err)
	}
	b := pipeline.NewBatch()
	if err := d.Decode(pipeline.Record{Data: []byte("a\x00b")}, b); err != nil {
		t.Fatal(err)
	}
	if m := b.Msgs[0]; m.Payload != "a\x00b" || m.Type != "raw" || m.Severity != 3 {
		t.Errorf("got %+v", m)
	}
	if (Config{Severity: 8}).Validate() == nil {
		t.Error("severity 8 accepted")
	}
}
