package jsonx

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// MaxDepth is the deepest nesting any tern JSON reader accepts.
const MaxDepth = 512

// SyntaxError is malformed JSON at a byte offset.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg) }

// Scanner reads JSON tokens from a byte slice without allocating. Strings
// come back raw (between the quotes) with a flag telling whether Unescape
// is needed. Invalid UTF-8 inside strings is passed through; writers
// replace it.
type Scanner struct {
	data []byte
	pos  int
}

// Reset starts scanning data.
func (s *Scanner) Reset(data []byte) { s.data, s.pos = data, 0 }

// Pos is the offset of the next unread byte.
func (s *Scanner) Pos() int { return s.pos }

// SetPos moves back to an offset returned by Pos.
func (s *Scanner) SetPos(p int) { s.pos = p }

// Data is the slice being scanned.
func (s *Scanner) Data() []byte { return s.data }

// Peek skips whitespace and returns the next byte without consuming it, or
// 0 at the end of the input.
func (s *Scanner) Peek() byte {
	if s.pos < len(s.data) && s.data[s.pos] > ' ' { // no whitespace: the usual case
		return s.data[s.pos]
	}
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		if c != ' ' && c != '\n' && c != '\t' && c != '\r' {
			return c
		}
		s.pos++
	}
	return 0
}

// Advance consumes one byte (the one Peek returned).
func (s *Scanner) Advance() { s.pos++ }

// AtEnd skips whitespace and reports whether the input is exhausted.
func (s *Scanner) AtEnd() bool {
	s.Peek()
	return s.pos >= len(s.data)
}

// Errorf returns a SyntaxError at the current offset.
func (s *Scanner) Errorf(format string, args ...any) error {
	return &SyntaxError{Offset: s.pos, Msg: fmt.Sprintf(format, args...)}
}

// Unexpected reports the byte at the current offset (or the end of input)
// where want was expected.
func (s *Scanner) Unexpected(want string) error {
	if s.pos >= len(s.data) {
		return &SyntaxError{Offset: s.pos, Msg: "unexpected end of input, expected " + want}
	}
	return &SyntaxError{Offset: s.pos, Msg: fmt.Sprintf("invalid character %q, expected %s", s.data[s.pos], want)}
}

// special8 flags, in the high bit of each byte, the bytes of x (read
// little-endian) that end a run of plain string bytes: control bytes, '"'
// and '\\'. Bytes above a flagged one may be flagged wrongly (borrows), but
// the lowest flag is always exact, which is all nextSpecial needs.
func special8(x uint64) uint64 {
	ctl := (x - lsb*0x20) & ^x
	q := x ^ (lsb * '"')
	bs := x ^ (lsb * '\\')
	return (ctl | ((q - lsb) & ^q) | ((bs - lsb) & ^bs)) & msb
}

// nextSpecial returns the index of the first control byte, '"' or '\\' in
// data at or after i, or len(data).
func nextSpecial(data []byte, i int) int {
	if hasAVX2 && len(data)-i >= 32 {
		n := (len(data) - i) &^ 31
		if k := special32(&data[i], n); k < n {
			return i + k
		}
		i += n
	}
	for ; i+8 <= len(data); i += 8 {
		if m := special8(binary.LittleEndian.Uint64(data[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(data); i++ {
		if c := data[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return i
}

// String reads the string starting at the current offset (Peek returned
// '"'). raw is the bytes between the quotes; escaped tells whether raw holds
// escape sequences (then Unescape gives the value).
func (s *Scanner) String() (raw []byte, escaped bool, err error) {
	data := s.data
	i := s.pos + 1
	for {
		i = nextSpecial(data, i)
		if i >= len(data) {
			s.pos = len(data)
			return nil, false, s.Errorf("unterminated string")
		}
		switch c := data[i]; c {
		case '"':
			raw = data[s.pos+1 : i]
			s.pos = i + 1
			return raw, escaped, nil
		case '\\':
			escaped = true
			if i+1 >= len(data) {
				s.pos = len(data)
				return nil, false, s.Errorf("unterminated string")
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) || !isHex(data[i+5]) {
					s.pos = i
					return nil, false, s.Errorf("invalid \\u escape in string")
				}
				i += 6
			default:
				s.pos = i
				return nil, false, s.Errorf("invalid escape %q in string", data[i+1])
			}
		default:
			s.pos = i
			return nil, false, s.Errorf("control character %q in string", c)
		}
	}
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func hexVal(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a':
			r = r<<4 | rune(c-'a'+10)
		default:
			r = r<<4 | rune(c-'A'+10)
		}
	}
	return r
}

// Unescape appends the value of a raw string returned by String. Escaped
// lone surrogates become U+FFFD; raw bytes are copied as they are.
func Unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		e := raw[i+1]
		i += 2
		switch e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hexVal(raw[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				if r < 0xdc00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2 := hexVal(raw[i+2:]); 0xdc00 <= r2 && r2 < 0xe000 {
						r = utf16.DecodeRune(r, r2)
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
	}
	return dst
}

// Number reads the number starting at the current offset. isInt is true
// when it has neither fraction nor exponent.
func (s *Scanner) Number() (raw []byte, isInt bool, err error) {
	data := s.data
	i := s.pos
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i++
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		return nil, false, s.Unexpected("digit")
	}
	isInt = true
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			s.pos = i
			return nil, false, s.Unexpected("digit")
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		isInt = false
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			s.pos = i
			return nil, false, s.Unexpected("digit")
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		isInt = false
	}
	raw = data[s.pos:i]
	s.pos = i
	return raw, isInt, nil
}

// Literal consumes lit ("true", "false" or "null") if it comes next.
func (s *Scanner) Literal(lit string) bool {
	if len(s.data)-s.pos >= len(lit) && string(s.data[s.pos:s.pos+len(lit)]) == lit {
		s.pos += len(lit)
		return true
	}
	return false
}

// ParseInt converts the text of an integer returned by Number; ok is false
// when it does not fit an int64.
func ParseInt(raw []byte) (v int64, ok bool) {
	neg := raw[0] == '-'
	if neg {
		raw = raw[1:]
	}
	if len(raw) > 19 { // 19 digits never wrap a uint64
		return 0, false
	}
	var u uint64
	for _, c := range raw {
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// ParseUint converts the text of a non-negative integer returned by Number;
// ok is false when it is negative or does not fit a uint64.
func ParseUint(raw []byte) (v uint64, ok bool) {
	if len(raw) == 0 || raw[0] == '-' || len(raw) > 20 {
		return 0, false
	}
	for _, c := range raw {
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// ParseFloat converts the text of a number returned by Number. ok is false
// when it is out of the float64 range.
func ParseFloat(raw []byte) (float64, bool) {
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(raw), len(raw)), 64)
	return f, err == nil
}

// Skip reads one whole value of any kind, checking its syntax, and returns
// its raw text. Nesting deeper than maxDepth (at most MaxDepth) is an error.
func (s *Scanner) Skip(maxDepth int) (raw []byte, err error) {
	maxDepth = min(maxDepth, MaxDepth)
	var stack [MaxDepth / 64]uint64 // bit set: object
	depth := 0
	c := s.Peek()
	start := s.pos
	for {
		// A value is expected.
		switch c {
		case '{', '[':
			if depth >= maxDepth {
				return nil, s.Errorf("nesting deeper than %d", maxDepth)
			}
			obj := c == '{'
			if obj {
				stack[depth/64] |= 1 << (depth % 64)
			} else {
				stack[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			s.pos++
			c = s.Peek()
			if c == '}' && obj || c == ']' && !obj {
				s.pos++
				depth--
				goto after
			}
			if obj {
				if err := s.key(); err != nil {
					return nil, err
				}
				c = s.Peek()
			}
			continue
		case '"':
			if _, _, err := s.String(); err != nil {
				return nil, err
			}
		case 't':
			if !s.Literal("true") {
				return nil, s.Unexpected("value")
			}
		case 'f':
			if !s.Literal("false") {
				return nil, s.Unexpected("value")
			}
		case 'n':
			if !s.Literal("null") {
				return nil, s.Unexpected("value")
			}
		default:
			if c != '-' && (c < '0' || c > '9') {
				return nil, s.Unexpected("value")
			}
			if _, _, err := s.Number(); err != nil {
				return nil, err
			}
		}
	after:
		for depth > 0 {
			obj := stack[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			c = s.Peek()
			if c == ',' {
				s.pos++
				if obj {
					if err := s.key(); err != nil {
						return nil, err
					}
				}
				c = s.Peek()
				break
			}
			if obj && c == '}' || !obj && c == ']' {
				s.pos++
				depth--
				continue
			}
			if obj {
				return nil, s.Unexpected("',' or '}'")
			}
			return nil, s.Unexpected("',' or ']'")
		}
		if depth == 0 {
			return s.data[start:s.pos], nil
		}
	}
}

// key reads `"name" :` inside an object.
func (s *Scanner) key() error {
	if s.Peek() != '"' {
		return s.Unexpected("string key")
	}
	if _, _, err := s.String(); err != nil {
		return err
	}
	if s.Peek() != ':' {
		return s.Unexpected("':'")
	}
	s.pos++
	return nil
}
