package syslogx

import (
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
)

func TestParseBSD(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Stamp
		n    int
		ok   bool
	}{
		{"Feb  5 17:32:18 host", Stamp{0, 2, 5, 17, 32, 18, 0}, 15, true},
		{"Sep 01 08:26:10", Stamp{0, 9, 1, 8, 26, 10, 0}, 15, true},
		{"Mar  1 00:00:45.363: %SYS", Stamp{0, 3, 1, 0, 0, 45, 363000000}, 19, true},
		{"Mar 15 2023 10:00:00 x", Stamp{2023, 3, 15, 10, 0, 0, 0}, 20, true},
		{"mar 9 10:00:00", Stamp{0, 3, 9, 10, 0, 0, 0}, 14, true},
		{"Nov 20 08:00:37.1234567891 x", Stamp{0, 11, 20, 8, 0, 37, 123456789}, 26, true},
		{"Mar 32 10:00:00", Stamp{}, 0, false},
		{"Mar  1 24:00:00", Stamp{}, 0, false},
		{"Mar  1 10:60:00", Stamp{}, 0, false},
		{"Mar  1 10:00:60", Stamp{}, 0, false},
		{"Foo  1 10:00:00", Stamp{}, 0, false},
		{"Mar   1 10:00:00", Stamp{}, 0, false},
		{"Mar  1 10:00", Stamp{}, 0, false},
		{"Mar  1 1:00:00", Stamp{}, 0, false},
		{"Mar 1990 10:00:00", Stamp{}, 0, false},
		{"1990 Oct 22 10:52:01", Stamp{}, 0, false},
	} {
		got, n, ok := ParseBSD([]byte(c.in))
		if ok != c.ok || (ok && (got != c.want || n != c.n)) {
			t.Errorf("ParseBSD(%q) = %+v, %d, %v; want %+v, %d, %v", c.in, got, n, ok, c.want, c.n, c.ok)
		}
	}
}

func TestYearInference(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		stamp Stamp
		now   string
		want  string
		ok    bool
	}{
		{Stamp{Month: 11, Day: 20, Hour: 8}, "2026-11-22T00:00:00Z", "2026-11-20T08:00:00Z", true},
		{Stamp{Month: 12, Day: 31, Hour: 23}, "2027-01-01T00:10:00Z", "2026-12-31T23:00:00Z", true},
		{Stamp{Month: 1, Day: 1}, "2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z", true},
		{Stamp{Year: 2020, Month: 2, Day: 29}, "2026-01-01T00:00:00Z", "2020-02-29T00:00:00Z", true},
		{Stamp{Month: 2, Day: 29}, "2026-03-01T00:00:00Z", "", false},
		{Stamp{Month: 4, Day: 31}, "2026-03-01T00:00:00Z", "", false},
	} {
		ns, ok := c.stamp.UnixNano(time.UTC, at(c.now))
		if ok != c.ok {
			t.Errorf("%+v at %s: ok = %v", c.stamp, c.now, ok)
			continue
		}
		if ok && time.Unix(0, ns).UTC().Format(time.RFC3339) != c.want {
			t.Errorf("%+v at %s = %s, want %s", c.stamp, c.now, time.Unix(0, ns).UTC().Format(time.RFC3339), c.want)
		}
	}
	// The year is the reference clock's in the stamp's zone.
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata")
	}
	ns, _ := Stamp{Month: 1, Day: 1, Hour: 0, Min: 30}.UnixNano(berlin, at("2026-12-31T23:10:00Z"))
	if got := time.Unix(0, ns).UTC().Format(time.RFC3339); got != "2026-12-31T23:30:00Z" {
		t.Errorf("Berlin new year = %s", got)
	}
}

func TestAppendBSD(t *testing.T) {
	ns := time.Date(2026, 2, 5, 7, 3, 9, 0, time.UTC).UnixNano()
	if got := string(AppendBSD(nil, ns, time.UTC)); got != "Feb  5 07:03:09" {
		t.Errorf("AppendBSD = %q", got)
	}
	ns = time.Date(2026, 12, 25, 17, 0, 0, 0, time.UTC).UnixNano()
	if got := string(AppendBSD(nil, ns, time.UTC)); got != "Dec 25 17:00:00" {
		t.Errorf("AppendBSD = %q", got)
	}
	st, n, ok := ParseBSD(AppendBSD(nil, ns, time.UTC))
	if !ok || n != 15 || st.Month != 12 || st.Day != 25 || st.Hour != 17 {
		t.Errorf("ParseBSD(AppendBSD) = %+v %d %v", st, n, ok)
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]int{"LOCAL4": 20, "local7": 23, "LOG_AUTHPRIV": 10, "kern": 0, "0": 0, "23": 23, "audit": 13} {
		if got, ok := ParseFacility(in); !ok || got != want {
			t.Errorf("ParseFacility(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "24", "-1", "local8", "LOG_", "info"} {
		if _, ok := ParseFacility(in); ok {
			t.Errorf("ParseFacility(%q) accepted", in)
		}
	}
	for in, want := range map[string]int{"INFO": 6, "emerg": 0, "LOG_WARNING": 4, "warn": 4, "err": 3, "error": 3, "7": 7, "Critical": 2} {
		if got, ok := ParseSeverity(in); !ok || got != want {
			t.Errorf("ParseSeverity(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "8", "-1", "verbose"} {
		if _, ok := ParseSeverity(in); ok {
			t.Errorf("ParseSeverity(%q) accepted", in)
		}
	}
	for in, want := range map[int64]int{0: 0, 20: 20, 23: 23, 160: 20, 184: 23, 24: 3} {
		if got, ok := FacilityFromInt(in); !ok || got != want {
			t.Errorf("FacilityFromInt(%d) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []int64{-1, 25, 192, 1 << 40} {
		if _, ok := FacilityFromInt(in); ok {
			t.Errorf("FacilityFromInt(%d) accepted", in)
		}
	}
	if got := string(AppendPRI(nil, 20, 5)); got != "<165>" {
		t.Errorf("AppendPRI = %s", got)
	}
	if got := string(AppendPrintASCII(nil, "a b\x00é", 4)); got != "a_b_" {
		t.Errorf("AppendPrintASCII = %q", got)
	}
	if got := string(AppendPrintASCII(nil, "", 4)); got != "-" {
		t.Errorf("AppendPrintASCII empty = %q", got)
	}
}

func TestFieldFacilityAndSeverity(t *testing.T) {
	m := pipeline.NewMessage()
	m.AddString("s", "LOCAL4")
	m.AddInt("shifted", 160)
	m.AddInt("big", 161)
	m.AddBool("b", true)
	m.AddInt("sev", 3)
	m.AddInt("sev8", 8)
	m.AddString("sevname", "warning")
	for _, c := range []struct {
		name string
		f    func(*pipeline.Field) (int, bool)
		want int
		ok   bool
	}{
		{"s", FieldFacility, 20, true},
		{"shifted", FieldFacility, 20, true},
		{"big", FieldFacility, 0, false},
		{"b", FieldFacility, 0, false},
		{"sev", FieldSeverity, 3, true},
		{"sev8", FieldSeverity, 8, false},
		{"sevname", FieldSeverity, 4, true},
		{"b", FieldSeverity, 0, false},
	} {
		got, ok := c.f(m.FirstField(c.name))
		if ok != c.ok || ok && got != c.want {
			t.Errorf("%s: got %d, %v; want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
