package stdout

import (
	"bytes"
	"context"
	"testing"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestWritesRecordsWithDelimiters(t *testing.T) {
	for _, c := range []struct {
		delim *string
		want  string
	}{
		{nil, "a\n\xff\x00b\n"},
		{ptr("\x1e"), "a\x1e\xff\x00b\x1e"},
	} {
		o, err := New(pipelinetest.Settings(t, "outputs.stdout"), Config{Delimiter: c.delim})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		o.w = &buf
		if err := o.Write(context.Background(), []pipeline.Encoded{{Data: []byte("a")}, {Data: []byte("\xff\x00b")}}); err != nil {
			t.Fatal(err)
		}
		if buf.String() != c.want {
			t.Errorf("wrote %q, want %q", buf.String(), c.want)
		}
	}
}

func ptr(s string) *string { return &s }
