package json

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ternlog/tern/pipeline"
)

// A replayed layout writes what working the layout out writes, byte for
// byte and with the same count of replaced bytes, whatever the names:
// repeats, nesting and its conflicts, empty names and parts, invalid
// UTF-8, values none, one or many; with and without headers before the
// fields.
func TestLayoutsReplayWhatMembersWrites(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	pool := []string{"a", "b", "a.b", "a.c", "a.b.c", "a.", ".a", "a..b", "", "x.y", "x", "\xff.k", "k.\xfe",
		"user.id", "user", "user.role", "sd.db@1.name", "sd.db@1.user", "sd.x.y", "a::b", "a::c", "q\"uote", "x.y.z.w"}
	configs := map[string]Config{}
	for name, set := range map[string]func(*Config){
		"nest":         func(c *Config) { c.Nest = true },
		"nest-sep":     func(c *Config) { c.Nest, c.Separator = true, "::" },
		"flat":         func(c *Config) {},
		"no-headers":   func(c *Config) { c.Nest, c.Headers = true, nil },
		"skip-payload": func(c *Config) { c.Nest, c.Headers = true, []string{"payload", "hostname"} },
	} {
		c := DefaultConfig()
		c.Mode = "flat"
		set(&c)
		configs[name] = c
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			enc, err := New(pipeline.Settings{}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var shapes [][]string
			for range 40 {
				s := make([]string, 1+r.IntN(8))
				for i := range s {
					s[i] = pool[r.IntN(len(pool))]
				}
				shapes = append(shapes, s)
			}
			replays := 0
			for range 4000 {
				m := randomMessage(r, shapes[r.IntN(len(shapes))])
				first := true // what appendFlat will find; only for counting
				for _, h := range enc.headers {
					if !enc.skipEmpty || !headerEmpty(m, h.id) {
						first = false
					}
				}
				if enc.layoutFor(m.Fields, first, shapeHash(m.Fields, first)) != nil {
					replays++
				}
				got, gotN := enc.appendFlat(nil, m)
				fresh, err := New(pipeline.Settings{}, cfg)
				if err != nil {
					t.Fatal(err)
				}
				want, wantN := fresh.appendFlat(nil, m)
				if !bytes.Equal(got, want) || gotN != wantN {
					t.Fatalf("names %q:\n got %s (%d replaced)\nwant %s (%d)", names(m), got, gotN, want, wantN)
				}
			}
			if replays < 500 {
				t.Errorf("only %d of 4000 messages replayed a layout", replays)
			}
		})
	}
}

func names(m *pipeline.Message) []string {
	var out []string
	for i := range m.Fields {
		out = append(out, m.Fields[i].Name)
	}
	return out
}

func randomMessage(r *rand.Rand, shape []string) *pipeline.Message {
	m := pipeline.NewMessage()
	if r.IntN(2) == 0 {
		m.Payload = "p\x01ay\xffload"
	}
	if r.IntN(2) == 0 {
		m.Hostname = "host"
	}
	m.Timestamp = r.Int64N(1 << 60)
	for _, name := range shape {
		var f pipeline.Field
		switch r.IntN(4) {
		case 0:
			f = pipeline.NewField(name, pipeline.TypeString, "")
			for range r.IntN(3) {
				f.Append(pipeline.StringValue([]string{"v", "é", "\xff", "\"q\""}[r.IntN(4)]))
			}
		case 1:
			f = pipeline.NewField(name, pipeline.TypeInteger, "")
			for range 1 + r.IntN(2) {
				f.Append(pipeline.IntValue(r.Int64N(1000) - 500))
			}
		case 2:
			f = pipeline.NewField(name, pipeline.TypeDouble, "", pipeline.DoubleValue(r.Float64()))
		default:
			f = pipeline.NewField(name, pipeline.TypeBool, "", pipeline.BoolValue(r.IntN(2) == 0))
			if r.IntN(5) == 0 {
				f.AppendUnset()
			}
		}
		m.AddField(f)
	}
	return m
}

// The layouts an encoder keeps stay within their bounds however many
// shapes it meets.
func TestLayoutsAreBounded(t *testing.T) {
	enc, _ := flatNest(t)
	long := string(bytes.Repeat([]byte("n"), maxLayoutBytes))
	for i := range 10000 {
		m := pipeline.NewMessage()
		for j := range 1 + i%(maxLayoutFields+8) {
			m.AddInt(string(rune('a'+j%26))+string(rune('a'+i%26)), 1)
		}
		if i%7 == 0 {
			m.AddInt(long, 1) // too many bytes of names to keep
		}
		enc.appendFlat(nil, m)
		enc.appendFlat(nil, m)
	}
	kept := 0
	for _, l := range enc.layouts {
		if l == nil {
			continue
		}
		kept++
		size := 0
		for _, n := range l.names {
			size += len(n)
		}
		if len(l.names) > maxLayoutFields || size > maxLayoutBytes {
			t.Errorf("a layout of %d names, %d bytes", len(l.names), size)
		}
	}
	if kept == 0 || kept > nLayouts {
		t.Errorf("%d layouts kept", kept)
	}
}

// A recording cut short by a panic (the engine recovers it and goes on
// with the same encoder) leaves nothing behind: the next messages are
// written as a fresh encoder writes them, and no layout is kept for the
// message that panicked.
func TestRecordingCutShortLeavesNoLayout(t *testing.T) {
	enc, cfg := flatNest(t)
	bad := pipeline.NewMessage()
	bad.AddString("a.b", "x")
	bad.AddString("a.c", "y")
	// What a panic inside members leaves: a recording under way, its
	// mark somewhere in a buffer that is gone.
	enc.rec = enc.record(bad.Fields, false, 1000)
	good := pipeline.NewMessage()
	good.AddString("z", "1")
	for range 3 {
		got, _ := enc.appendFlat(nil, good)
		fresh, _ := New(pipeline.Settings{}, cfg)
		want, _ := fresh.appendFlat(nil, good)
		if !bytes.Equal(got, want) {
			t.Fatalf("after a cut recording: got %s, want %s", got, want)
		}
	}
	for _, l := range enc.layouts {
		if l != nil && len(l.names) == 2 {
			t.Fatal("the cut recording was kept as a layout")
		}
	}
}

// A sender who makes every shape new, and sends each twice so that it is
// recorded, gets one recording in 64 messages: the layouts cost such a
// stream next to nothing, where recording each would allocate six times
// a shape.
func TestRecordingIsRationed(t *testing.T) {
	enc, _ := flatNest(t)
	var msgs []*pipeline.Message
	for i := range 20000 {
		m := pipeline.NewMessage()
		for j := range 8 {
			m.AddString(fmt.Sprintf("g%d.k%d_%d", j%2, j, i/2), "v")
		}
		msgs = append(msgs, m)
	}
	i := 0
	out := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(1000, func() {
		out, _ = enc.appendFlat(out[:0], msgs[i%len(msgs)])
		i++
	})
	if allocs > 0.25 {
		t.Errorf("%.2f allocations a message on a stream of shapes each met twice", allocs)
	}
}

// BenchmarkFlatShapes writes 8-field messages (two nested groups) in
// streams of one shape, of 10,000 shapes in turn (layouts never hit), and
// of new shapes each sent twice in a row (a layout recorded, never used:
// the worst a sender can choose).
func BenchmarkFlatShapes(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Mode, cfg.Nest, cfg.Headers = "flat", true, []string{"timestamp"}
	msg := func(shape int) *pipeline.Message {
		m := pipeline.NewMessage()
		m.Timestamp = 1
		for j := range 8 {
			m.AddString(fmt.Sprintf("g%d.k%d_%d", j%2, j, shape), "value")
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		shape func(i int) int
	}{
		{"one", func(int) int { return 0 }},
		{"10000_in_turn", func(i int) int { return i % 10000 }},
		{"each_new_twice", func(i int) int { return i / 2 }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			msgs := make([]*pipeline.Message, 20000)
			for i := range msgs {
				msgs[i] = msg(tc.shape(i))
			}
			enc, err := New(pipeline.Settings{}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			out := make([]byte, 0, 4096)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				out, _ = enc.appendFlat(out[:0], msgs[i%len(msgs)])
				i++
			}
		})
	}
}

// flatNest is a flat, nesting encoder and its config.
func flatNest(t testing.TB) (*Encoder, Config) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Mode, cfg.Nest = "flat", true
	enc, err := New(pipeline.Settings{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return enc, cfg
}
