package payload

import (
	"testing"

	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestCases(t *testing.T) { pipelinetest.RunDecoderCases(t, Factory()) }

func TestConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Severity = 8
	if err := cfg.Validate(); err == nil {
		t.Error("severity 8 accepted")
	}
}
