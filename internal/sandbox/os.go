package sandbox

import (
	"math"
	"strconv"
	"strings"
	"time"

	lua "github.com/Shopify/go-lua"
)

// The os table holds only time functions; everything is UTC (a router's
// scripts must not depend on the host's time zone):
//
//	os.time([t])          -> seconds since the epoch, now (Config.Now) or of the
//	                         table t {year, month, day, hour=12, min=0, sec=0}
//	os.date([fmt [, t]])  -> strftime-style text of t (default now); "*t" or "!*t"
//	                         returns the table form; a leading "!" is accepted
//	os.clock()            -> seconds since the State was built (a float)
//
// Nanosecond timestamps do not fit Lua's float64 numbers exactly (2^53 <
// 1.8e18): time.ns_string(sec, nsec) and time.split(ns_string) convert
// between exact decimal strings and (seconds, nanoseconds) pairs, both of
// which float64 holds exactly.
func (s *Sandbox) openOS(l *lua.State) {
	lua.NewLibrary(l, []lua.RegistryFunction{
		{Name: "time", Function: s.osTime},
		{Name: "date", Function: s.osDate},
		{Name: "clock", Function: func(l *lua.State) int {
			l.PushNumber(time.Since(s.start).Seconds())
			return 1
		}},
	})
	l.SetGlobal("os")
	lua.NewLibrary(l, []lua.RegistryFunction{
		{Name: "ns_string", Function: func(l *lua.State) int {
			sec := lua.CheckNumber(l, 1)
			nsec := lua.OptNumber(l, 2, 0)
			if sec != math.Trunc(sec) || nsec != math.Trunc(nsec) || math.Abs(sec) > 9.2e9 || nsec < 0 || nsec >= 1e9 {
				lua.ArgumentError(l, 1, "integral seconds and 0 <= nanoseconds < 1e9 expected")
			}
			l.PushString(strconv.FormatInt(int64(sec)*1e9+int64(nsec), 10))
			return 1
		}},
		{Name: "split", Function: func(l *lua.State) int {
			ns, ok := ParseNanos(l, 1)
			if !ok {
				lua.ArgumentError(l, 1, "nanoseconds as a decimal string expected")
			}
			sec, nsec := ns/1e9, ns%1e9
			if nsec < 0 {
				sec, nsec = sec-1, nsec+1e9
			}
			l.PushNumber(float64(sec))
			l.PushNumber(float64(nsec))
			return 2
		}},
	})
	l.SetGlobal("time")
}

// ParseNanos reads a nanosecond timestamp at idx: a decimal string (exact)
// or a number of nanoseconds (exact only below 2^53).
func ParseNanos(l *lua.State, idx int) (int64, bool) {
	switch l.TypeOf(idx) {
	case lua.TypeString:
		str, _ := l.ToString(idx)
		v, err := strconv.ParseInt(strings.TrimSpace(str), 10, 64)
		return v, err == nil
	case lua.TypeNumber:
		f, _ := l.ToNumber(idx)
		if math.IsNaN(f) || math.Abs(f) > 9.2e18 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

func (s *Sandbox) osTime(l *lua.State) int {
	if l.IsNoneOrNil(1) {
		l.PushNumber(float64(s.cfg.Now().Unix()))
		return 1
	}
	lua.CheckType(l, 1, lua.TypeTable)
	field := func(k string, def int, required bool) int {
		l.Field(1, k)
		defer l.Pop(1)
		if l.IsNil(-1) {
			if required {
				lua.Errorf(l, "field '%s' missing in date table", k)
			}
			return def
		}
		f, ok := l.ToNumber(-1)
		if !ok || math.Abs(f) > 1e9 {
			lua.Errorf(l, "field '%s' is not a valid number", k)
		}
		return int(f)
	}
	t := time.Date(field("year", 0, true), time.Month(field("month", 0, true)), field("day", 0, true),
		field("hour", 12, false), field("min", 0, false), field("sec", 0, false), 0, time.UTC)
	l.PushNumber(float64(t.Unix()))
	return 1
}

var (
	dayNames   = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	monthNames = []string{"January", "February", "March", "April", "May", "June", "July", "August",
		"September", "October", "November", "December"}
)

func (s *Sandbox) osDate(l *lua.State) int {
	f := lua.OptString(l, 1, "%c")
	t := s.cfg.Now().UTC()
	if !l.IsNoneOrNil(2) {
		sec := lua.CheckNumber(l, 2)
		if math.IsNaN(sec) || math.Abs(sec) > 1e13 {
			lua.ArgumentError(l, 2, "time out of range")
		}
		whole := math.Floor(sec)
		t = time.Unix(int64(whole), int64((sec-whole)*1e9)).UTC()
	}
	f = strings.TrimPrefix(f, "!")
	if strings.HasPrefix(f, "*t") {
		l.CreateTable(0, 9)
		for _, kv := range []struct {
			k string
			v int
		}{{"year", t.Year()}, {"month", int(t.Month())}, {"day", t.Day()}, {"hour", t.Hour()},
			{"min", t.Minute()}, {"sec", t.Second()}, {"wday", int(t.Weekday()) + 1}, {"yday", t.YearDay()}} {
			l.PushInteger(kv.v)
			l.SetField(-2, kv.k)
		}
		l.PushBoolean(false)
		l.SetField(-2, "isdst")
		return 1
	}
	if len(f) > 4096 {
		lua.ArgumentError(l, 1, "format too long")
	}
	l.PushString(Strftime(f, t))
	return 1
}

// Strftime renders t with the C strftime conversions of the "C" locale that
// Lua scripts use: %a %A %b %B %c %d %D %e %F %H %I %j %m %M %n %p %S %t
// %T %u %w %x %X %y %Y %z %Z %%. Unknown conversions are kept as written.
func Strftime(f string, t time.Time) string {
	var b []byte
	two := func(v int) { b = append(b, byte('0'+v/10%10), byte('0'+v%10)) }
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' || i+1 >= len(f) {
			b = append(b, c)
			continue
		}
		i++
		switch f[i] {
		case 'a':
			b = append(b, dayNames[t.Weekday()][:3]...)
		case 'A':
			b = append(b, dayNames[t.Weekday()]...)
		case 'b', 'h':
			b = append(b, monthNames[t.Month()-1][:3]...)
		case 'B':
			b = append(b, monthNames[t.Month()-1]...)
		case 'c':
			b = append(b, t.Format("Mon Jan  2 15:04:05 2006")...)
		case 'd':
			two(t.Day())
		case 'D':
			b = append(b, t.Format("01/02/06")...)
		case 'e':
			if t.Day() < 10 {
				b = append(b, ' ', byte('0'+t.Day()))
			} else {
				two(t.Day())
			}
		case 'F':
			b = append(b, t.Format("2006-01-02")...)
		case 'H':
			two(t.Hour())
		case 'I':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			two(h)
		case 'j':
			d := t.YearDay()
			b = append(b, byte('0'+d/100), byte('0'+d/10%10), byte('0'+d%10))
		case 'm':
			two(int(t.Month()))
		case 'M':
			two(t.Minute())
		case 'n':
			b = append(b, '\n')
		case 'p':
			if t.Hour() < 12 {
				b = append(b, "AM"...)
			} else {
				b = append(b, "PM"...)
			}
		case 'S':
			two(t.Second())
		case 't':
			b = append(b, '\t')
		case 'T', 'X':
			b = append(b, t.Format("15:04:05")...)
		case 'u':
			w := int(t.Weekday())
			if w == 0 {
				w = 7
			}
			b = append(b, byte('0'+w))
		case 'w':
			b = append(b, byte('0'+int(t.Weekday())))
		case 'x':
			b = append(b, t.Format("01/02/06")...)
		case 'y':
			two(t.Year() % 100)
		case 'Y':
			b = strconv.AppendInt(b, int64(t.Year()), 10)
		case 'z':
			b = append(b, "+0000"...)
		case 'Z':
			b = append(b, "UTC"...)
		case '%':
			b = append(b, '%')
		default:
			b = append(b, '%', f[i])
		}
	}
	return string(b)
}
