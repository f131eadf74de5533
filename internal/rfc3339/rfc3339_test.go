package rfc3339

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestAppendMatchesTime(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []int64{0, 1, -1, 1e9, -1e9, 123456789, math.MaxInt64, math.MinInt64, 951782400e9, -5e18, 5e18}
	for range 100000 {
		vals = append(vals, int64(r.Uint64()))
	}
	// Fractions with every count of trailing zeros, and none.
	for p := int64(1); p <= 1e9; p *= 10 {
		for range 1000 {
			vals = append(vals, r.Int64N(1e10)*1e9+r.Int64N(1e9/p)*p, -r.Int64N(1e10)*1e9+r.Int64N(1e9/p)*p)
		}
	}
	for _, ns := range vals {
		tm := time.Unix(0, ns).UTC()
		if got, want := string(Append(nil, ns, Trimmed)), tm.Format(time.RFC3339Nano); got != want {
			t.Fatalf("Append(%d) = %s, want %s", ns, got, want)
		}
		if got, want := string(Append(nil, ns, 3)), tm.Format("2006-01-02T15:04:05.000Z07:00"); got != want {
			t.Fatalf("Append(%d, 3) = %s, want %s", ns, got, want)
		}
		if got, want := string(Append(nil, ns, 0)), tm.Format(time.RFC3339); got != want {
			t.Fatalf("Append(%d, 0) = %s, want %s", ns, got, want)
		}
		back, err := Parse(Append(nil, ns, Trimmed))
		if err != nil || back != ns {
			t.Fatalf("Parse(Append(%d)) = %d, %v", ns, back, err)
		}
	}
}

func TestParse(t *testing.T) {
	good := []string{
		"2026-11-22T00:00:00.123456789Z",
		"2026-11-22t00:00:00z",
		"2026-11-22 10:00:00.5+02:00",
		"2024-02-29T23:59:59-07:30",
		"1970-01-01T00:00:00.000000001Z",
		"2262-04-11T23:47:16.854775807Z",
		"1677-09-21T00:12:43.145224192Z",
		"0001-01-01T00:00:00+23:59",
	}
	for _, s := range good[:len(good)-1] {
		got, err := Parse([]byte(s))
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		norm := []byte(strings.ToUpper(s))
		norm[10] = 'T'
		want, err := time.Parse(time.RFC3339Nano, string(norm))
		if err != nil {
			t.Fatal(err)
		}
		if got != want.UnixNano() {
			t.Errorf("Parse(%q) = %d, want %d", s, got, want.UnixNano())
		}
	}
	if _, err := Parse([]byte(good[len(good)-1])); err != ErrRange {
		t.Errorf("year 1: %v, want ErrRange", err)
	}
	for _, s := range []string{
		"", "2026-11-22", "2026-11-22T00:00:00", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
		"2026-11-22T24:00:00Z", "2026-11-22T00:60:00Z", "2026-11-22T00:00:60Z", "2026-11-22T00:00:00.Z",
		"2026-11-22T00:00:00+0200", "2026-11-22T00:00:00Zx", "2026-11-22X00:00:00Z", "2026-11-2aT00:00:00Z",
		"2026-11-22T00:00:00+24:00", "2026-00-10T00:00:00Z", "2026-11-00T00:00:00Z",
	} {
		if _, err := Parse([]byte(s)); err != ErrSyntax {
			t.Errorf("Parse(%q) = %v, want ErrSyntax", s, err)
		}
	}
	for _, s := range []string{"2262-04-11T23:47:16.854775808Z", "1677-09-21T00:12:43.145224191Z", "9999-12-31T23:59:59Z"} {
		if _, err := Parse([]byte(s)); err != ErrRange {
			t.Errorf("Parse(%q) = %v, want ErrRange", s, err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = Append(buf[:0], 1795305600123456789, Trimmed)
	}
}

func BenchmarkParse(b *testing.B) {
	in := []byte("2026-11-22T10:00:00.123Z")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendFraction(b *testing.B) {
	buf := make([]byte, 0, 64)
	fr := []int64{100000, 200000, 123456789, 300000, 0, 400100000, 500000, 600000}
	i := 0
	for b.Loop() {
		buf = AppendFraction(buf[:0], fr[i&7], Trimmed)
		i++
	}
}

// dateTimeRef is dateTime digit by digit, as Parse read it before.
func dateTimeRef(b []byte) (y, mo, d, h, mi, s int64, ok bool) {
	var oks [6]bool
	y, oks[0] = num(b[0:4])
	mo, oks[1] = num(b[5:7])
	d, oks[2] = num(b[8:10])
	h, oks[3] = num(b[11:13])
	mi, oks[4] = num(b[14:16])
	s, oks[5] = num(b[17:19])
	if oks != [6]bool{true, true, true, true, true, true} {
		return 0, 0, 0, 0, 0, 0, false
	}
	return y, mo, d, h, mi, s, true
}

// Every byte value at every place of a date-time: the word-wide reading
// agrees with reading digit by digit.
func TestDateTimeEveryByteEveryPlace(t *testing.T) {
	for _, base := range []string{"2026-11-22T10:00:00", "0000-00-00 00:00:00", "9999-99-99t99:99:99"} {
		b := []byte(base)
		for i := range b {
			orig := b[i]
			for c := range 256 {
				b[i] = byte(c)
				y, mo, d, h, mi, s, ok := dateTime(b)
				ry, rmo, rd, rh, rmi, rs, rok := dateTimeRef(b)
				if ok != rok || ok && [6]int64{y, mo, d, h, mi, s} != [6]int64{ry, rmo, rd, rh, rmi, rs} {
					t.Fatalf("%q: %v %v, want %v %v", b, [6]int64{y, mo, d, h, mi, s}, ok, [6]int64{ry, rmo, rd, rh, rmi, rs}, rok)
				}
			}
			b[i] = orig
		}
	}
}
