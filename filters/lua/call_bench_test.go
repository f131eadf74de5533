package lua

import (
	"context"
	"testing"

	"github.com/ternlog/tern/internal/testutil/benchutil"
)

// The fixed cost of one call into a script, and of the calls a detection
// makes per event.
func BenchmarkCall(b *testing.B) {
	for _, c := range []struct{ name, src string }{
		{"empty", `function process_message() return 0 end`},
		{"read", `local read_message = read_message
function process_message() local s = read_message("Fields[status]") return 0 end`},
		{"window", `local read_message = read_message
local w = require("tern.window").new{span = 30}
function process_message() local n = w:add(read_message("Fields[status]")) return 0 end`},
	} {
		b.Run(c.name, func(b *testing.B) {
			f, _ := newFilter(b, c.src, nil)
			m := benchMessage()
			ctx := context.Background()
			b.ReportAllocs()
			stop := benchutil.CPU(b)
			for b.Loop() {
				if err := f.Process(ctx, m, discard{}); err != nil {
					b.Fatal(err)
				}
			}
			stop()
		})
	}
}
