package null_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/outputs/null"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestCountsAndDiscards(t *testing.T) {
	set := pipelinetest.Settings(t, "outputs.null")
	o, err := null.New(set, null.Config{LogInterval: config.Duration(1)})
	require.NoError(t, err)
	b := []pipeline.Encoded{{Data: []byte("abc")}, {Data: []byte("de")}}
	require.NoError(t, o.Write(context.Background(), b))
	require.NoError(t, o.Write(context.Background(), b[:1]))
	assert.EqualValues(t, 3, o.Records())
	assert.EqualValues(t, 8, o.Bytes())
	assert.EqualValues(t, 8, set.Telemetry.(*pipelinetest.Telemetry).Counts["null_bytes_total"])
}

func BenchmarkWrite(b *testing.B) {
	o, _ := null.New(pipeline.Settings{}, null.DefaultConfig())
	batch := make([]pipeline.Encoded, 1024)
	for i := range batch {
		batch[i].Data = make([]byte, 200)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = o.Write(context.Background(), batch)
	}
}
