package codectest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ternlog/tern/internal/testutil/testscale"

	zeekdec "github.com/ternlog/tern/decoders/zeek"
	zeekenc "github.com/ternlog/tern/encoders/zeek"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// The property stream: one column of every kind the codecs type.
var propColumns = []zeekenc.Column{
	{Name: "ts", Type: "time"}, {Name: "s", Type: "string"}, {Name: "tags", Type: "set[string]"},
	{Name: "v", Type: "vector[string]"}, {Name: "n", Type: "count"}, {Name: "i", Type: "int"},
	{Name: "ok", Type: "bool"}, {Name: "d", Type: "double"}, {Name: "a", Type: "addr"},
	{Name: "iv", Type: "interval"}, {Name: "e", Type: "enum"},
}

// records is R24's size: 10^6 at full scale, 10^5 in CI (less under -race).
func records(t *testing.T) int { return testscale.N(1_000_000, 100_000) }

// propMessage builds a random message of the property stream, as the zeek
// decoder would produce it (so it is also the expected decode).
func propMessage(r *rand.Rand) *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "zeek.prop"
	us := r.Int64N(4e15) - 1e15 // -1938 .. 2096, whole microseconds
	ts, _ := strconv.ParseFloat(fmt.Sprintf("%d.%06d", us/1e6, abs(us%1e6)), 64)
	if us < 0 && us%1e6 != 0 {
		ts, _ = strconv.ParseFloat(fmt.Sprintf("-%d.%06d", -us/1e6, -us%1e6), 64)
	}
	m.Timestamp = us * 1000
	m.AddField(pipeline.NewField("ts", pipeline.TypeDouble, "date-time", pipeline.DoubleValue(ts)))
	maybe := func() bool { return r.IntN(8) != 0 }
	strs := func(name string, n int) {
		f := pipeline.Field{Name: name, Type: pipeline.TypeString}
		for range n {
			f.Append(pipeline.StringValue(hostileString(r)))
		}
		// Zeek writes an empty string and an empty set alike: "(empty)".
		if f.Len() == 1 && f.Value(0).Str() == "" {
			f = pipeline.Field{Name: name, Type: pipeline.TypeString}
		}
		m.AddField(f)
	}
	if maybe() {
		strs("s", 1)
	}
	if maybe() {
		strs("tags", r.IntN(4))
	}
	if maybe() {
		// A vector may hold unset elements, which Zeek writes as "-".
		f := pipeline.Field{Name: "v", Type: pipeline.TypeString}
		for range r.IntN(4) {
			if r.IntN(4) == 0 {
				f.AppendUnset()
			} else {
				f.Append(pipeline.StringValue(hostileString(r)))
			}
		}
		// A lone empty string reads back as an empty vector, a lone unset
		// element as an unset column: Zeek writes them alike.
		if f.Len() == 1 && (f.Unset(0) || f.Value(0).Str() == "") {
			f = pipeline.Field{Name: "v", Type: pipeline.TypeString}
		}
		m.AddField(f)
	}
	if maybe() {
		// Counts are unsigned 64-bit, the top of the range included.
		n := r.Uint64()
		if r.IntN(4) == 0 {
			n = math.MaxUint64 - uint64(r.IntN(3))
		}
		m.AddUint("n", n)
	}
	if maybe() {
		m.AddInt("i", r.Int64()-r.Int64())
	}
	if maybe() {
		m.AddBool("ok", r.IntN(2) == 1)
	}
	if maybe() {
		// Doubles with at most six decimals survive Zeek's rendering.
		d, _ := strconv.ParseFloat(strconv.FormatFloat(float64(r.Int64N(2e12)-1e12)/1e6, 'f', 6, 64), 64)
		m.AddDouble("d", d)
	}
	if maybe() {
		var a netip.Addr
		if r.IntN(2) == 0 {
			a = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), 1, 2})
			m.AddField(pipeline.NewField("a", pipeline.TypeString, "ipv4", pipeline.StringValue(a.String())))
		} else {
			var b [16]byte
			b[0], b[1], b[15] = 0x20, 0x01, byte(r.Uint32())
			a = netip.AddrFrom16(b)
			m.AddField(pipeline.NewField("a", pipeline.TypeString, "ipv6", pipeline.StringValue(a.String())))
		}
	}
	if maybe() {
		iv, _ := strconv.ParseFloat(strconv.FormatFloat(float64(r.Int64N(1e11))/1e6, 'f', 6, 64), 64)
		m.AddField(pipeline.NewField("iv", pipeline.TypeDouble, "interval", pipeline.DoubleValue(iv)))
	}
	if maybe() {
		strs("e", 1)
	}
	return m
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func zeekEncoder(t testing.TB, mod func(*zeekenc.Config)) *zeekenc.Encoder {
	t.Helper()
	cfg := zeekenc.DefaultConfig()
	cfg.Columns, cfg.Path = propColumns, "prop"
	if mod != nil {
		mod(&cfg)
	}
	e, err := zeekenc.Factory().Build(pipelinetest.Settings(t, "encoders.zeek"), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e.(*zeekenc.Encoder)
}

// writeLog encodes msgs as a whole Zeek log file.
func writeLog(t testing.TB, e *zeekenc.Encoder, msgs []*pipeline.Message) []byte {
	t.Helper()
	open := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	out := e.Header(nil, msgs[0], open)
	for i, m := range msgs {
		var err error
		if out, err = e.Encode(out, m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		out = append(out, '\n')
	}
	return e.Trailer(out, open.Add(time.Hour))
}

// R24 for Zeek TSV: decode(encode(m)) == m for hostile contents, and an
// independent strict parser finds exactly one row per message, equal field
// by field.
func TestZeekTSVRoundTrip(t *testing.T) {
	for _, utf8On := range []bool{true, false} {
		t.Run(fmt.Sprintf("enable_utf_8=%v", utf8On), func(t *testing.T) {
			r := rand.New(rand.NewPCG(24, uint64(len(fmt.Sprint(utf8On)))))
			n := records(t)
			msgs := make([]*pipeline.Message, n)
			for i := range msgs {
				msgs[i] = propMessage(r)
			}
			e := zeekEncoder(t, func(c *zeekenc.Config) { c.EnableUTF8 = utf8On })
			log := writeLog(t, e, msgs)

			rows := strictTSV(t, log)
			if len(rows) != n {
				t.Fatalf("strict parser: %d rows for %d messages", len(rows), n)
			}
			for i, row := range rows {
				if err := sameRow(msgs[i], row); err != nil {
					t.Fatalf("row %d: %v\nline: %q", i+1, err, row.raw)
				}
			}

			d, err := zeekdec.New(pipelinetest.Settings(t, "decoders.zeek"), zeekdec.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.Split(bytes.TrimSuffix(log, []byte("\n")), []byte("\n"))
			var got []*pipeline.Message
			for i, l := range lines {
				b := pipeline.NewBatch()
				if err := d.Decode(pipeline.Record{Data: l, Source: "prop.log"}, b); err != nil {
					t.Fatalf("line %d: %v: %q", i+1, err, l)
				}
				got = append(got, b.Msgs...)
			}
			if len(got) != n {
				t.Fatalf("decoder: %d messages for %d", len(got), n)
			}
			for i := range msgs {
				if !got[i].Equal(msgs[i]) {
					t.Fatalf("message %d differs:\nwant %s\ngot  %s", i+1, codec.AppendJSON(nil, msgs[i]), codec.AppendJSON(nil, got[i]))
				}
			}
		})
	}
}

// The sample conn.log decodes and encodes back to the same bytes.
func TestConnLogByteExact(t *testing.T) {
	data, err := os.ReadFile("../../../testdata/samples/conn.log")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := zeekdec.New(pipelinetest.Settings(t, "decoders.zeek"), zeekdec.DefaultConfig())
	cfg := zeekenc.DefaultConfig()
	cfg.Preset = "conn"
	e, err := zeekenc.New(pipelinetest.Settings(t, "encoders.zeek"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var rows, want []byte
	for _, l := range bytes.SplitAfter(data, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		b := pipeline.NewBatch()
		if err := d.Decode(pipeline.Record{Data: bytes.TrimSuffix(l, []byte("\n")), Source: "conn.log"}, b); err != nil {
			t.Fatal(err)
		}
		if l[0] == '#' {
			if len(b.Msgs) != 0 {
				t.Fatalf("header line %q made a message", l)
			}
			continue
		}
		want = append(want, l...)
		if len(b.Msgs) != 1 {
			t.Fatalf("%d messages for a row", len(b.Msgs))
		}
		rows, _ = e.Encode(rows, b.Msgs[0])
		rows = append(rows, '\n')
	}
	if !bytes.Equal(rows, want) {
		t.Fatal("conn.log rows differ after decode and encode")
	}
	// The header block matches the sample's first eight lines, but #open.
	defer func(l *time.Location) { time.Local = l }(time.Local)
	time.Local = time.UTC
	hdr := e.Header(nil, nil, time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC))
	if !bytes.HasPrefix(data, hdr) {
		t.Errorf("header:\n%s", hdr)
	}
}

type strictRow struct {
	raw  string
	cols []strictCol
}

type strictCol struct {
	unset bool
	vals  []string     // set and vector elements, unescaped; one for scalars
	holes map[int]bool // vector elements written as unset
}

// strictTSV parses a Zeek log written with the default separators, on its
// own terms: exact header lines, one row per '\n', no raw control byte in
// a row, only \xNN and \\ escapes.
func strictTSV(t *testing.T, log []byte) []strictRow {
	t.Helper()
	if !bytes.HasSuffix(log, []byte("\n")) {
		t.Fatal("log does not end with a newline")
	}
	lines := strings.Split(string(log[:len(log)-1]), "\n")
	wantHdr := []string{"#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-", "#path\tprop"}
	for i, w := range wantHdr {
		if lines[i] != w {
			t.Fatalf("header line %d: %q, want %q", i+1, lines[i], w)
		}
	}
	var names, types []string
	for _, l := range lines[len(wantHdr):] {
		if !strings.HasPrefix(l, "#") {
			break
		}
		f := strings.Split(l, "\t")
		switch f[0] {
		case "#fields":
			names = f[1:]
		case "#types":
			types = f[1:]
		}
	}
	if len(names) != len(propColumns) || len(types) != len(names) {
		t.Fatalf("#fields %v #types %v", names, types)
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "#close\t") {
		t.Fatalf("last line %q", last)
	}
	var rows []strictRow
	for _, l := range lines[len(wantHdr)+3 : len(lines)-1] {
		if strings.HasPrefix(l, "#") {
			t.Fatalf("a row reads as a header line: %q", l)
		}
		for i := 0; i < len(l); i++ {
			if l[i] < 0x20 && l[i] != '\t' || l[i] == 0x7f {
				t.Fatalf("raw control byte 0x%02x in row %q", l[i], l)
			}
		}
		f := strings.Split(l, "\t")
		if len(f) != len(names) {
			t.Fatalf("row has %d columns, want %d: %q", len(f), len(names), l)
		}
		row := strictRow{raw: l}
		for i, c := range f {
			var col strictCol
			switch {
			case c == "-":
				col.unset = true
			case c == "(empty)":
			case strings.HasPrefix(types[i], "set[") || strings.HasPrefix(types[i], "vector["):
				for k, e := range strings.Split(c, ",") {
					switch e {
					case "(empty)":
						e = ""
					case "-":
						if col.holes == nil {
							col.holes = map[int]bool{}
						}
						col.holes[k] = true
					}
					col.vals = append(col.vals, strictUnescape(t, e))
				}
			default:
				col.vals = []string{strictUnescape(t, c)}
			}
			row.cols = append(row.cols, col)
		}
		rows = append(rows, row)
	}
	return rows
}

func strictUnescape(t *testing.T, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			b.WriteByte('\\')
			i++
		case i+3 < len(s) && s[i+1] == 'x':
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil || strings.ToLower(s[i+2:i+4]) != s[i+2:i+4] {
				t.Fatalf("bad escape in %q", s)
			}
			b.WriteByte(byte(v))
			i += 3
		default:
			t.Fatalf("lone backslash in %q", s)
		}
	}
	return b.String()
}

// sameRow compares a strictly parsed row with the message it came from.
func sameRow(m *pipeline.Message, row strictRow) error {
	for ci, c := range propColumns {
		col := row.cols[ci]
		f := m.FirstField(c.Name)
		if f == nil {
			if !col.unset {
				return fmt.Errorf("%s: unset expected, got %q", c.Name, col.vals)
			}
			continue
		}
		if col.unset || len(col.vals) != f.Len() {
			return fmt.Errorf("%s: %d values expected, got %q (unset %v)", c.Name, f.Len(), col.vals, col.unset)
		}
		for j, got := range col.vals {
			if f.Unset(j) != col.holes[j] {
				return fmt.Errorf("%s[%d]: unset %v expected, got %q", c.Name, j, f.Unset(j), got)
			}
			if f.Unset(j) {
				continue
			}
			v := f.Value(j)
			var want string
			switch f.Type {
			case pipeline.TypeString:
				want = v.Str()
			case pipeline.TypeInteger:
				want = strconv.FormatInt(v.Int(), 10)
			case pipeline.TypeUnsigned:
				want = strconv.FormatUint(v.Uint(), 10)
			case pipeline.TypeBool:
				want = map[bool]string{true: "T", false: "F"}[v.Bool()]
			case pipeline.TypeDouble:
				x, err := strconv.ParseFloat(got, 64)
				if err != nil || x != v.Double() {
					return fmt.Errorf("%s: %v expected, got %q", c.Name, v.Double(), got)
				}
				continue
			}
			if got != want {
				return fmt.Errorf("%s[%d]: %q expected, got %q", c.Name, j, want, got)
			}
		}
	}
	return nil
}

// R24 for Zeek JSON: every line parses with encoding/json, one object per
// message, each key equal to the field after Zeek's \xNN rendering of
// control bytes and invalid UTF-8.
func TestZeekJSONOneObjectPerMessage(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 24))
	n := records(t)
	e := zeekEncoder(t, func(c *zeekenc.Config) { c.UseJSON = true })
	var out []byte
	msgs := make([]*pipeline.Message, n)
	for i := range msgs {
		msgs[i] = propMessage(r)
		var err error
		if out, err = e.Encode(out, msgs[i]); err != nil {
			t.Fatal(err)
		}
		out = append(out, '\n')
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines for %d messages", len(lines), n)
	}
	for i, l := range lines {
		var obj map[string]any
		dec := json.NewDecoder(strings.NewReader(l))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil || dec.More() {
			t.Fatalf("line %d: %v: %q", i+1, err, l)
		}
		m := msgs[i]
		for _, c := range propColumns {
			f := m.FirstField(c.Name)
			got, present := obj[c.Name]
			if f == nil {
				if present && c.Name != "ts" {
					t.Fatalf("line %d: %s present but unset", i+1, c.Name)
				}
				continue
			}
			var want any
			switch c.Name {
			case "s", "e", "a":
				if f.Len() == 0 {
					want = ""
				} else {
					want = zeekJSONText(f.Value(0).Str())
				}
			case "tags", "v":
				arr := []any{}
				for j := 0; j < f.Len(); j++ {
					if f.Unset(j) {
						arr = append(arr, nil)
						continue
					}
					arr = append(arr, zeekJSONText(f.Value(j).Str()))
				}
				want = arr
			case "n":
				want = json.Number(strconv.FormatUint(f.Value(0).Uint(), 10))
			case "i":
				want = json.Number(strconv.FormatInt(f.Value(0).Int(), 10))
			case "ok":
				want = f.Value(0).Bool()
			default: // doubles and times: compare numerically
				x, err := got.(json.Number).Float64()
				if err != nil || x != f.Value(0).Double() {
					t.Fatalf("line %d: %s = %v, want %v", i+1, c.Name, got, f.Value(0).Double())
				}
				continue
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("line %d: %s = %q, want %q", i+1, c.Name, got, want)
			}
		}
	}
}

// zeekJSONText is the documented normalisation of Zeek's JSON writer:
// control bytes and bytes of invalid UTF-8 become the text \xNN.
func zeekJSONText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			fmt.Fprintf(&b, `\x%02x`, c)
			i++
			continue
		}
		b.WriteString(s[i : i+size])
		i += size
	}
	return b.String()
}
