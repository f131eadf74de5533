package config

import "fmt"

// Bounds checked before a config is decoded. The TOML decoder's time and
// memory grow with the square of the nesting depth (5,000 nested inline
// tables, 25 KB of text, took 1.5 GB and over a minute), and a reload runs
// the loader inside the router: a config must be refused before that.
const (
	// MaxConfigBytes caps a config file.
	MaxConfigBytes = 1 << 20
	// MaxNesting caps how deep a value sits: table header parts, dotted
	// key parts, arrays and inline tables, counted together. tern's own
	// configs need fewer than 6.
	MaxNesting = 32
)

// prescan checks src against MaxNesting in one pass over its bytes, without
// allocating per key. It follows just enough of TOML to know what nests:
// strings (which may hold brackets, dots and '#'), comments, table headers,
// keys and the brackets of values. It returns the 1-based line of the first
// value nested too deep, or 0. It never reports anything else: malformed
// text is left to the decoder, whose errors are better.
func prescan(src []byte) (line int) {
	type frame struct {
		table bool // an inline table, whose keys follow '{' and ','
		level int  // an array's elements' level, or a table's key base
	}
	var (
		stack []frame
		base  int // level of keys at the top level: the header's parts
		dots  int // dots of the key being read
		cur   int // level of the value being read
		inKey = true
		ln    = 1
		i     int
		n     = len(src)
	)
	// skipString skips the string that starts at i and returns the index
	// after it, counting the lines of multi-line strings.
	skipString := func(i int) int {
		q := src[i]
		if i+2 < n && src[i+1] == q && src[i+2] == q {
			for j := i + 3; j < n; j++ {
				switch src[j] {
				case '\n':
					ln++
				case '\\':
					if q == '"' {
						if j+1 < n && src[j+1] == '\n' {
							ln++
						}
						j++
					}
				case q:
					if j+2 < n && src[j+1] == q && src[j+2] == q {
						// Up to two more quotes belong to the string.
						k := j + 3
						for k < n && k < j+5 && src[k] == q {
							k++
						}
						return k
					}
				}
			}
			return n
		}
		for j := i + 1; j < n; j++ {
			switch src[j] {
			case '\n':
				return j // unterminated: the decoder will say so
			case '\\':
				if q == '"' && j+1 < n && src[j+1] != '\n' {
					j++
				}
			case q:
				return j + 1
			}
		}
		return n
	}
	for i < n {
		c := src[i]
		switch {
		case c == '\n':
			ln++
			if len(stack) == 0 {
				inKey, dots = true, 0
			}
			i++
		case c == '#':
			for i < n && src[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			i = skipString(i)
		case inKey && len(stack) == 0 && c == '[' && dots == 0:
			// A table header: its parts are the level of its keys.
			base = 1
			for i++; i < n && src[i] != ']' && src[i] != '\n'; {
				switch src[i] {
				case '"', '\'':
					i = skipString(i)
					continue
				case '.':
					base++
				}
				i++
			}
			if base > MaxNesting {
				return ln
			}
			for i < n && src[i] != '\n' && src[i] != '#' {
				i++
			}
		case inKey:
			switch c {
			case '.':
				dots++
			case '=':
				b := base
				if len(stack) > 0 {
					b = stack[len(stack)-1].level
				}
				if cur = b + dots + 1; cur > MaxNesting {
					return ln
				}
				inKey, dots = false, 0
			case '}':
				// An empty inline table, or a trailing comma (TOML 1.1).
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
					inKey = false
				}
			}
			i++
		default:
			switch c {
			case '{':
				stack = append(stack, frame{table: true, level: cur})
				inKey, dots = true, 0
			case '[':
				if cur++; cur > MaxNesting {
					return ln
				}
				stack = append(stack, frame{level: cur})
			case ',':
				if len(stack) > 0 {
					if top := stack[len(stack)-1]; top.table {
						inKey, dots = true, 0
					} else {
						cur = top.level
					}
				}
			case ']', '}':
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
					if len(stack) > 0 && !stack[len(stack)-1].table {
						cur = stack[len(stack)-1].level
					}
				}
			}
			i++
		}
	}
	return 0
}

func tooLarge() string {
	return fmt.Sprintf("larger than %s, the limit of a config file", Size(MaxConfigBytes))
}
