package codectest

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	zeekdec "github.com/ternlog/tern/decoders/zeek"
	"github.com/ternlog/tern/pipeline"
)

// FuzzZeekFixedPoint: any row the decoder accepts re-encodes to a row that
// decodes and encodes to itself (one round normalises numbers and times).
func FuzzZeekFixedPoint(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	e := zeekEncoder(f, nil)
	for range 20 {
		row, err := e.Encode(nil, propMessage(r))
		if err != nil {
			f.Fatal(err)
		}
		if len(row) < 2000 {
			f.Add(row)
		}
	}
	f.Add([]byte("1.0000001\ta\\x\t-,(empty),\\x2d\t(empty)\t007\t-0\tT\t1e5\t::ffff:1.2.3.4\tnan\t\\x23"))
	hdr := func() [][]byte {
		var names, types []string
		for _, c := range propColumns {
			names = append(names, c.Name)
			types = append(types, c.Type)
		}
		return [][]byte{[]byte(`#separator \x09`), []byte("#path\tprop"),
			[]byte("#fields\t" + strings.Join(names, "\t")), []byte("#types\t" + strings.Join(types, "\t"))}
	}()
	f.Fuzz(func(t *testing.T, row []byte) {
		if bytes.IndexByte(row, '\n') >= 0 {
			return // one record is one line
		}
		d, err := zeekdec.New(pipeline.Settings{}, zeekdec.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		decode := func(line []byte) *pipeline.Message {
			for _, h := range hdr {
				if err := d.Decode(pipeline.Record{Data: h, Source: "s"}, pipeline.NewBatch()); err != nil {
					t.Fatal(err)
				}
			}
			b := pipeline.NewBatch()
			if err := d.Decode(pipeline.Record{Data: line, Source: "s"}, b); err != nil || len(b.Msgs) != 1 {
				return nil
			}
			return b.Msgs[0]
		}
		m1 := decode(row)
		if m1 == nil || row[0] == '#' {
			return
		}
		r1, err := e.Encode(nil, m1)
		if err != nil {
			t.Fatalf("decoded row does not encode: %v", err)
		}
		m2 := decode(r1)
		if m2 == nil {
			t.Fatalf("re-encoded row does not decode: %q", r1)
		}
		r2, err := e.Encode(nil, m2)
		if err != nil {
			t.Fatal(err)
		}
		m3 := decode(r2)
		if m3 == nil || !m3.Equal(m2) || !bytes.Equal(r1, r2) {
			t.Fatalf("no fixed point:\nrow %q\nr1  %q\nr2  %q", row, r1, r2)
		}
	})
}
