package zeekfmt

import (
	"math"
	"testing"
)

func TestAppendDouble(t *testing.T) {
	for v, want := range map[float64]string{
		3.14: "3.14", 50000: "50000.0", 1.123456789: "1.123457", 0.000012: "0.000012",
		math.Copysign(0, -1): "-0.0", 1e-9: "0.0", 1e20: "100000000000000000000.0",
		math.NaN(): "nan", math.Inf(-1): "-inf",
	} {
		if got := string(AppendDouble(nil, v)); got != want {
			t.Errorf("%v: %q, want %q", v, got, want)
		}
	}
}

func TestTime(t *testing.T) {
	for ns, want := range map[int64]string{
		1234567890010000000: "1234567890.010000", -1250000000: "-1.250000", 0: "0.000000",
		1999: "0.000001", -1: "-0.000001", math.MinInt64: "-9223372036.854776",
	} {
		if got := string(AppendTime(nil, ns)); got != want {
			t.Errorf("%d: %q, want %q", ns, got, want)
		}
	}
	for text, want := range map[string]int64{"1.5": 1.5e9, "-0.000001": -1000, ".5": 5e8, "7.": 7e9} {
		if got, ok := ParseSecondsNs([]byte(text)); !ok || got != want {
			t.Errorf("%q: %d %v, want %d", text, got, ok, want)
		}
	}
	for _, bad := range []string{"", ".", "-", "1e9", "1.2.3", "99999999999999", "abc"} {
		if _, ok := ParseSecondsNs([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestEscaper(t *testing.T) {
	e := Escaper{Sep: DefaultSeparators, UTF8: true}
	for in, want := range map[string]string{
		"-": `\x2d`, "(empty)": `\x28empty)`, "a\tb": `a\x09b`, `a\b`: `a\\b`, "é\n": `\xc3\xa9\x0a`,
		"é\t": `é\x09`, "a,b": "a,b", "\u2028": "\u2028", "\ue000": `\xee\x80\x80`, "\xff": `\xff`,
	} {
		if got := string(e.AppendString(nil, in, false)); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
		if back := string(Unescape(nil, e.AppendString(nil, in, false))); back != in {
			t.Errorf("%q reads back as %q", in, back)
		}
	}
	if got := string(e.AppendString(nil, "a,b", true)); got != `a\x2cb` {
		t.Errorf("set element: %q", got)
	}
	ascii := Escaper{Sep: DefaultSeparators}
	if got := string(ascii.AppendString(nil, "naïve", false)); got != `na\xc3\xafve` {
		t.Errorf("enable_utf_8=F: %q", got)
	}
	if got := string(AppendMetaEscaped(nil, "\t®|")); got != `\x09\xc2\xae|` {
		t.Errorf("meta: %q", got)
	}
}

func TestParseType(t *testing.T) {
	for in, want := range map[string]Type{
		"port":        {Name: "port", Kind: KindCount, Port: true},
		"set[addr]":   {Name: "set[addr]", Kind: KindAddr, Container: true},
		"vector[int]": {Name: "vector[int]", Kind: KindInt, Container: true},
		"pattern":     {Name: "pattern", Kind: KindString},
	} {
		if got, err := ParseType(in); err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "set[", "set[]", "vector[x"} {
		if _, err := ParseType(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
