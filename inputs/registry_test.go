package inputs

import (
	"testing"

	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestConventions(t *testing.T) { pipelinetest.CheckKind(t, "inputs", ".", Factories()) }
