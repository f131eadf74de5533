package cef

import (
	"runtime"
	"testing"
	"unsafe"
	"weak"

	"github.com/ternlog/tern/pipeline"
)

// The zone cache keeps copies of the names it is keyed by: a record's dtz
// is a view into its batch's chunk, which a kept view would hold alive for
// the life of the decoder.
func TestZoneCacheKeepsNoBatch(t *testing.T) {
	d := newDecoder(t, nil)
	b := pipeline.NewBatch()
	b.Reserve(64, 32<<10) // a chunk as large as a full read's
	rec := "CEF:0|V|P|1|S|N|5|rt=Nov 20 2026 08:00:29 dtz=Nowhere/Atlantis"
	if err := d.Decode(pipeline.Record{Data: []byte(rec)}, b); err != nil {
		t.Fatal(err)
	}
	if d.zones.n.Load() == 0 {
		t.Fatal("the zone was not looked up")
	}
	dtz, ok := b.Msgs[0].FieldString("dtz")
	if !ok {
		t.Fatalf("no dtz field: %+v", b.Msgs[0].Fields)
	}
	chunk := weak.Make(unsafe.StringData(dtz))
	b, dtz = nil, ""
	runtime.GC()
	runtime.GC()
	if chunk.Value() != nil {
		t.Error("the zone cache keeps the batch's chunk alive")
	}
	runtime.KeepAlive(d)
}
