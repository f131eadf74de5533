package filters

import (
	"testing"

	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestConventions(t *testing.T) { pipelinetest.CheckKind(t, "filters", ".", Factories()) }
