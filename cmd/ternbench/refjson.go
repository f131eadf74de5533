package main

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonRef is the W2 reference: it parses one JSON object into typed nodes
// (strings unescaped, numbers parsed) and writes it back with the same keys
// and values in the same order.
type jsonRef struct {
	in    []byte
	pos   int
	nodes []jnode // the document in order; reused
	text  []byte  // unescaped keys and strings; reused
}

type jnode struct {
	kind     byte // '"' string, 'i' integer, 'f' double, 't' 'F' 'n' true false null, '{' '[' containers
	key      [2]int32
	str      [2]int32 // text[str[0]:str[1]]
	i        int64
	f        float64
	end      int32 // containers: the index after their last descendant
	isMember bool  // has a key
}

var errJSON = errors.New("malformed JSON")

func (j *jsonRef) transform(out, line []byte) ([]byte, error) {
	j.in, j.pos, j.nodes, j.text = line, 0, j.nodes[:0], j.text[:0]
	j.space()
	if j.pos >= len(j.in) || j.in[j.pos] != '{' {
		return out, errJSON
	}
	if err := j.value(false, [2]int32{}); err != nil {
		return out, err
	}
	if j.space(); j.pos != len(j.in) {
		return out, errJSON
	}
	out, _ = j.encode(out, 0)
	return append(out, '\n'), nil
}

func (j *jsonRef) space() {
	for j.pos < len(j.in) {
		switch j.in[j.pos] {
		case ' ', '\t', '\n', '\r':
			j.pos++
		default:
			return
		}
	}
}

// value parses one value at j.pos into j.nodes.
func (j *jsonRef) value(member bool, key [2]int32) error {
	j.space()
	if j.pos >= len(j.in) {
		return errJSON
	}
	n := jnode{key: key, isMember: member}
	switch c := j.in[j.pos]; {
	case c == '{' || c == '[':
		at := len(j.nodes)
		n.kind = c
		j.nodes = append(j.nodes, n)
		if err := j.container(c); err != nil {
			return err
		}
		j.nodes[at].end = int32(len(j.nodes))
		return nil
	case c == '"':
		s, err := j.string()
		if err != nil {
			return err
		}
		n.kind, n.str = '"', s
	case c == 't' || c == 'f' || c == 'n':
		lit, kind := "null", byte('n')
		if c == 't' {
			lit, kind = "true", 't'
		} else if c == 'f' {
			lit, kind = "false", 'F'
		}
		if len(j.in)-j.pos < len(lit) || string(j.in[j.pos:j.pos+len(lit)]) != lit {
			return errJSON
		}
		n.kind = kind
		j.pos += len(lit)
	default:
		if err := j.number(&n); err != nil {
			return err
		}
	}
	j.nodes = append(j.nodes, n)
	return nil
}

// container parses the members of an object or the elements of an array.
func (j *jsonRef) container(open byte) error {
	closer := byte('}')
	if open == '[' {
		closer = ']'
	}
	j.pos++
	j.space()
	if j.pos < len(j.in) && j.in[j.pos] == closer {
		j.pos++
		return nil
	}
	for {
		var key [2]int32
		if open == '{' {
			j.space()
			if j.pos >= len(j.in) || j.in[j.pos] != '"' {
				return errJSON
			}
			var err error
			if key, err = j.string(); err != nil {
				return err
			}
			if j.space(); j.pos >= len(j.in) || j.in[j.pos] != ':' {
				return errJSON
			}
			j.pos++
		}
		if err := j.value(open == '{', key); err != nil {
			return err
		}
		if j.space(); j.pos >= len(j.in) {
			return errJSON
		}
		switch j.in[j.pos] {
		case ',':
			j.pos++
		case closer:
			j.pos++
			return nil
		default:
			return errJSON
		}
	}
}

// string unescapes the string literal at j.pos into j.text.
func (j *jsonRef) string() ([2]int32, error) {
	j.pos++ // the quote
	start := len(j.text)
	for j.pos < len(j.in) {
		c := j.in[j.pos]
		switch {
		case c == '"':
			j.pos++
			return [2]int32{int32(start), int32(len(j.text))}, nil
		case c < 0x20:
			return [2]int32{}, errJSON
		case c != '\\':
			// copy the run of plain bytes at once
			k := j.pos
			for k < len(j.in) && j.in[k] != '"' && j.in[k] != '\\' && j.in[k] >= 0x20 {
				k++
			}
			j.text = append(j.text, j.in[j.pos:k]...)
			j.pos = k
			continue
		}
		if j.pos+1 >= len(j.in) {
			return [2]int32{}, errJSON
		}
		e := j.in[j.pos+1]
		j.pos += 2
		switch e {
		case '"', '\\', '/':
			j.text = append(j.text, e)
		case 'b':
			j.text = append(j.text, '\b')
		case 'f':
			j.text = append(j.text, '\f')
		case 'n':
			j.text = append(j.text, '\n')
		case 'r':
			j.text = append(j.text, '\r')
		case 't':
			j.text = append(j.text, '\t')
		case 'u':
			r, ok := j.hex4()
			if !ok {
				return [2]int32{}, errJSON
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(utf8.RuneError)
				if j.pos+1 < len(j.in) && j.in[j.pos] == '\\' && j.in[j.pos+1] == 'u' {
					save := j.pos
					j.pos += 2
					if lo, ok := j.hex4(); ok {
						r2 = utf16.DecodeRune(r, lo)
					}
					if r2 == utf8.RuneError {
						j.pos = save // a lone surrogate: keep the next escape
					}
				}
				r = r2
			}
			j.text = utf8.AppendRune(j.text, r)
		default:
			return [2]int32{}, errJSON
		}
	}
	return [2]int32{}, errJSON
}

func (j *jsonRef) hex4() (rune, bool) {
	if len(j.in)-j.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range j.in[j.pos : j.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	j.pos += 4
	return r, true
}

// number parses an integer (when it fits an int64) or a double.
func (j *jsonRef) number(n *jnode) error {
	start, frac := j.pos, false
	for ; j.pos < len(j.in); j.pos++ {
		c := j.in[j.pos]
		if c == '.' || c == 'e' || c == 'E' {
			frac = true
		} else if !(c >= '0' && c <= '9' || c == '-' || c == '+') {
			break
		}
	}
	lit := j.in[start:j.pos]
	if len(lit) == 0 || lit[0] != '-' && (lit[0] < '0' || lit[0] > '9') {
		return errJSON
	}
	if !frac {
		if i, err := strconv.ParseInt(string(lit), 10, 64); err == nil {
			n.kind, n.i = 'i', i
			return nil
		}
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return errJSON
	}
	n.kind, n.f = 'f', f
	return nil
}

// encode writes node k and its descendants; it returns the next node.
func (j *jsonRef) encode(out []byte, k int) ([]byte, int) {
	n := &j.nodes[k]
	if n.isMember {
		out = appendJSONString(out, j.text[n.key[0]:n.key[1]])
		out = append(out, ':')
	}
	switch n.kind {
	case '{', '[':
		closer := byte('}')
		if n.kind == '[' {
			closer = ']'
		}
		out = append(out, n.kind)
		for c := k + 1; c < int(n.end); {
			if c > k+1 {
				out = append(out, ',')
			}
			out, c = j.encode(out, c)
		}
		return append(out, closer), int(n.end)
	case '"':
		out = appendJSONString(out, j.text[n.str[0]:n.str[1]])
	case 'i':
		out = strconv.AppendInt(out, n.i, 10)
	case 'f':
		out = appendJSONFloat(out, n.f)
	case 't':
		out = append(out, "true"...)
	case 'F':
		out = append(out, "false"...)
	case 'n':
		out = append(out, "null"...)
	}
	return out, k + 1
}

// appendJSONFloat writes a double so that it reads back as one: plain
// decimals with at least one fraction digit, exponents only for very large
// or small magnitudes; beyond float64, the largest.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		f = math.Copysign(math.MaxFloat64, f)
	}
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.AppendFloat(b, f, 'e', -1, 64)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	if bytes.IndexByte(b[start:], '.') < 0 {
		b = append(b, ".0"...)
	}
	return b
}

// appendJSONString writes s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			b = append(b, `\u00`...)
			b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
