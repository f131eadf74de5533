package eve

import (
	"slices"
	"strings"

	"github.com/ternlog/tern/internal/jsonx"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
)

// A tree writes fields with dotted names ("http.request_headers.0.name")
// as nested JSON: a name's segments are object keys, decimal segments the
// indexes of array elements. The alert's context is stored this way
// (docs/alerts.md).
type tree struct {
	leaves []leaf
}

type leaf struct {
	f    *pipeline.Field
	name string // below the strip prefix
	// array: write a one-value field as a one-element array (the schema
	// says the key is a list).
	array bool
}

func (t *tree) reset() { t.leaves = t.leaves[:0] }

func (t *tree) add(f *pipeline.Field, name string, array bool) {
	t.leaves = append(t.leaves, leaf{f: f, name: name, array: array})
}

// compareNames orders names segment by segment, indexes by number, so
// that the fields of one object are together and array elements in
// order.
func compareNames(a, b string) int {
	for a != "" || b != "" {
		var sa, sb string
		sa, a, _ = strings.Cut(a, ".")
		sb, b, _ = strings.Cut(b, ".")
		switch {
		case sa == sb:
			continue
		case sa == "": // a name before the names below it
			return -1
		case sb == "":
			return 1
		}
		na, ia := index(sa)
		nb, ib := index(sb)
		switch {
		case ia && ib:
			if na < nb {
				return -1
			}
			return 1
		case ia:
			return -1
		case ib:
			return 1
		}
		return strings.Compare(sa, sb)
	}
	return 0
}

// appendMembers writes the leaves as the members of an object (without
// its braces); replaced counts U+FFFD replacements.
func (t *tree) appendMembers(dst []byte, replaced *int) []byte {
	slices.SortStableFunc(t.leaves, func(a, b leaf) int { return compareNames(a.name, b.name) })
	return t.object(dst, t.leaves, 0, replaced)
}

// segment returns segment depth of name, and whether it is the last.
func segment(name string, depth int) (string, bool) {
	for ; depth > 0; depth-- {
		_, name, _ = strings.Cut(name, ".")
	}
	s, rest, more := strings.Cut(name, ".")
	return s, !more || rest == ""
}

func isIndex(s string) bool {
	_, ok := index(s)
	return ok
}

// index reads a decimal array index (without strconv's error allocation:
// it runs in sort comparisons).
func index(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// object writes leaves (sorted, sharing segments 0..depth-1) as object
// members keyed by segment depth.
func (t *tree) object(dst []byte, leaves []leaf, depth int, replaced *int) []byte {
	first := true
	for i := 0; i < len(leaves); {
		key, _ := segment(leaves[i].name, depth)
		j := i + 1
		for j < len(leaves) {
			if k, _ := segment(leaves[j].name, depth); k != key {
				break
			}
			j++
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		var n int
		dst, n = jsonx.AppendString(dst, key)
		*replaced += n
		dst = append(dst, ':')
		dst = t.value(dst, leaves[i:j], depth+1, replaced)
		i = j
	}
	return dst
}

// value writes the value of leaves that share segments 0..depth-1: one
// leaf ending there is a scalar (or array of its values); deeper ones an
// object, or an array when their next segments are all indexes.
func (t *tree) value(dst []byte, leaves []leaf, depth int, replaced *int) []byte {
	if _, last := segment(leaves[0].name, depth-1); last {
		if len(leaves) == 1 {
			return appendLeaf(dst, leaves[0], replaced)
		}
		// A value and deeper keys under one name, which no producer of
		// tern's makes: the value becomes the member "_value".
		dst = append(dst, `{"_value":`...)
		dst = appendLeaf(dst, leaves[0], replaced)
		dst = append(dst, ',')
		dst = t.object(dst, leaves[1:], depth, replaced)
		return append(dst, '}')
	}
	indexes := true
	for _, l := range leaves {
		if s, _ := segment(l.name, depth); !isIndex(s) {
			indexes = false
			break
		}
	}
	if !indexes {
		dst = append(dst, '{')
		dst = t.object(dst, leaves, depth, replaced)
		return append(dst, '}')
	}
	dst = append(dst, '[')
	for i := 0; i < len(leaves); {
		key, _ := segment(leaves[i].name, depth)
		j := i + 1
		for j < len(leaves) {
			if k, _ := segment(leaves[j].name, depth); k != key {
				break
			}
			j++
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = t.value(dst, leaves[i:j], depth+1, replaced)
		i = j
	}
	return append(dst, ']')
}

func appendLeaf(dst []byte, l leaf, replaced *int) []byte {
	f := l.f
	arr := l.array || f.Len() != 1
	if arr {
		dst = append(dst, '[')
	}
	for i := 0; i < f.Len(); i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		var n int
		dst, n = codec.AppendJSONValue(dst, f.Type, f.Value(i))
		*replaced += n
	}
	if arr {
		dst = append(dst, ']')
	}
	return dst
}
