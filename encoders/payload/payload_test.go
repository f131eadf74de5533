package payload

import (
	"testing"

	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestCases(t *testing.T) { pipelinetest.RunEncoderCases(t, Factory()) }
