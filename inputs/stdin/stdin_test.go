package stdin

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// Lines arrive byte for byte (R23), over-long ones are dropped and counted,
// and EOF ends the input.
func TestReadsLinesUntilEOF(t *testing.T) {
	set := pipelinetest.Settings(t, "inputs.stdin")
	cfg := DefaultConfig()
	cfg.MaxLineBytes = 24
	in, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	in.r = strings.NewReader("one\n\xff\xfe \x00 raw\n" + strings.Repeat("x", 40) + "\nlast without newline")
	var em pipelinetest.Emitter
	if err := in.Run(context.Background(), &em); !errors.Is(err, pipeline.ErrEndOfInput) {
		t.Fatalf("Run = %v, want ErrEndOfInput", err)
	}
	want := []string{"one", "\xff\xfe \x00 raw", "last without newline"}
	if got := em.Lines(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
	if em.Records[0].Source != "stdin" {
		t.Errorf("Source %q", em.Records[0].Source)
	}
	if n := set.Telemetry.(*pipelinetest.Telemetry).Dropped("oversize"); n != 1 {
		t.Errorf("oversize drops %d, want 1", n)
	}
}

func TestValidate(t *testing.T) {
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "max_line_bytes:") {
		t.Errorf("Validate = %v", err)
	}
}
