package config

import (
	"iter"
	"strings"
)

// keyLines maps dotted key paths ("outputs.siem.topic") to the line that
// defines them. The TOML library keeps positions private, and an operator
// needs a line for every error, so this is a small scanner of its own: it
// understands table headers, (dotted, quoted) keys, and skips string and
// array bodies that span lines. When it cannot place a key, callers fall back
// to the line of the enclosing table.
func keyLines(src string) map[string]int {
	out := map[string]int{}
	var table []string
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			hdr := strings.TrimPrefix(line, "[")
			arr := strings.HasPrefix(hdr, "[")
			hdr = strings.TrimPrefix(hdr, "[")
			end := closingBracket(hdr)
			if end < 0 {
				continue
			}
			table = splitKey(hdr[:end])
			if !arr {
				setLine(out, table, i+1)
			}
			continue
		}
		eq := keyEnd(line)
		if eq < 0 {
			continue
		}
		key := append(append([]string(nil), table...), splitKey(line[:eq])...)
		setLine(out, key, i+1)
		// Skip continuation lines of multi-line strings and arrays so their
		// contents are not mistaken for keys.
		rest := line[eq+1:]
		i = skipValue(lines, i, rest)
	}
	return out
}

func setLine(m map[string]int, key []string, line int) {
	k := strings.Join(key, ".")
	if _, ok := m[k]; !ok {
		m[k] = line
	}
}

// unquoted yields the index and value of each byte of s outside quoted
// strings ("…" with backslash escapes, '…' without), quotes excluded.
func unquoted(s string) iter.Seq2[int, byte] {
	return func(yield func(int, byte) bool) {
		var q byte
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case q != 0:
				if c == q {
					q = 0
				} else if c == '\\' && q == '"' {
					i++
				}
			case c == '"' || c == '\'':
				q = c
			default:
				if !yield(i, c) {
					return
				}
			}
		}
	}
}

// closingBracket finds the ']' that ends a table header, outside quotes.
func closingBracket(s string) int {
	for i, c := range unquoted(s) {
		if c == ']' {
			return i
		}
	}
	return -1
}

// keyEnd returns the index of the '=' that ends the key part of line.
func keyEnd(s string) int {
	for i, c := range unquoted(s) {
		switch c {
		case '=':
			return i
		case '#':
			return -1
		}
	}
	return -1
}

// splitKey splits a dotted key, honouring quoted parts.
func splitKey(s string) []string {
	var parts []string
	var cur strings.Builder
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			} else if c == '\\' && q == '"' && i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			q = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		case c == ' ' || c == '\t':
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

// skipValue returns the index of the last line of a value that starts with rest
// on line i.
func skipValue(lines []string, i int, rest string) int {
	rest = strings.TrimSpace(rest)
	for _, delim := range []string{`"""`, `'''`} {
		if strings.HasPrefix(rest, delim) {
			if strings.Count(rest, delim) >= 2 {
				return i
			}
			for j := i + 1; j < len(lines); j++ {
				if strings.Contains(lines[j], delim) {
					return j
				}
			}
			return len(lines) - 1
		}
	}
	depth := bracketDepth(rest)
	j := i
	for depth > 0 && j+1 < len(lines) {
		j++
		depth += bracketDepth(lines[j])
	}
	return j
}

// bracketDepth is the net count of [ and { over ] and } outside strings and
// comments.
func bracketDepth(s string) int {
	d := 0
	for _, c := range unquoted(s) {
		switch c {
		case '#':
			return d
		case '[', '{':
			d++
		case ']', '}':
			d--
		}
	}
	return d
}
