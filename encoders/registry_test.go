package encoders

import (
	"testing"

	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestConventions(t *testing.T) { pipelinetest.CheckKind(t, "encoders", ".", Factories()) }
