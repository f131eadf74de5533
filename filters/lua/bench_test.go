package lua

import (
	"context"
	"testing"

	"github.com/ternlog/tern/pipeline"
)

// The 5-field filter of deps.md §3.7: read Type, Logger, Payload, Severity
// and Fields[status], and inject a derived message when the status is 500.
const fiveFields = `
function process_message()
  local t = read_message("Type")
  local lg = read_message("Logger")
  local p = read_message("Payload")
  local sev = read_message("Severity")
  local st = read_message("Fields[status]")
  if sev <= 6 and st == "500" then
    inject_message{Type = "alert." .. t, Logger = lg, Severity = sev, Payload = p}
  end
  return 0
end`

type discard struct{}

func (discard) Inject(*pipeline.Message) error { return nil }

func benchMessage() *pipeline.Message {
	m := testMessage()
	m.Severity = 3
	return m
}

func BenchmarkFiveFieldsLua(b *testing.B) {
	f, _ := newFilter(b, fiveFields, nil)
	m := benchMessage()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Process(ctx, m, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

// goFilter is the same logic in Go.
type goFilter struct{}

func (goFilter) Process(_ context.Context, m *pipeline.Message, out pipeline.Injector) error {
	t, lg, p, sev := m.Type, m.Logger, m.Payload, m.Severity
	st, _ := m.FieldString("status")
	if sev <= 6 && st == "500" {
		o := pipeline.NewMessage()
		o.Type = "alert." + t
		o.Logger = lg
		o.Severity = sev
		o.Payload = p
		return out.Inject(o)
	}
	return nil
}

func BenchmarkFiveFieldsGo(b *testing.B) {
	var f pipeline.Filter = goFilter{}
	m := benchMessage()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Process(ctx, m, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

// A call of about 1,500 instructions with string pieces and table sets:
// the count hook, with its look at the allocation counter, and the charges
// of string.sub run many times a call.
const loopScript = `
local counts = {}
function process_message()
  local p = read_message("Payload")
  for i = 1, 100 do
    local k = p:sub(i % 20 + 1, i % 20 + 4)
    counts[k] = (counts[k] or 0) + 1
  end
  return 0
end`

func BenchmarkLoopLua(b *testing.B) {
	f, _ := newFilter(b, loopScript, nil)
	m := benchMessage()
	m.Payload = "GET /api/v1/items/123 completed lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod"
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Process(ctx, m, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}
