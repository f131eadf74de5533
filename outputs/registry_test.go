package outputs

import (
	"testing"

	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestConventions(t *testing.T) { pipelinetest.CheckKind(t, "outputs", ".", Factories()) }
