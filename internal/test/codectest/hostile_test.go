package codectest

import (
	"math/rand/v2"
	"strings"
)

// hostile are the pieces R24 builds attacker-controlled strings from.
var hostile = []string{
	"\n", "\r", "\x00", "|", "=", "\\", "]", "\"", "\t", "#", `\x09`, "\u0085", "\u2028", "\u2029",
	"(empty)", "-", ",", "é", "\xff", "\xc3", "\xe2\x80", "\x7f", "\x1b[31m", "\\x41", "\\\\", "{", "}", "%s",
	"a", "b", "c", " ",
}

// hostileString returns a random string of hostile pieces; sometimes one
// of the markers alone, a leading '#', or a 4 KiB run.
func hostileString(r *rand.Rand) string {
	switch r.IntN(20) {
	case 0:
		return "-"
	case 1:
		return "(empty)"
	case 2:
		return "#" + hostileString(r)
	case 3:
		return strings.Repeat(hostile[r.IntN(len(hostile))], 4096)
	}
	var b strings.Builder
	for n := r.IntN(12); n > 0; n-- {
		b.WriteString(hostile[r.IntN(len(hostile))])
	}
	return b.String()
}
