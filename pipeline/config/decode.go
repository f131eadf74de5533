package config

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// table decodes the table at path into its keys, each value still
// undecoded. It reports a value that is no table.
func (l *loader) table(path []string, prim toml.Primitive) (map[string]toml.Primitive, bool) {
	var raw map[string]toml.Primitive
	if err := l.md.PrimitiveDecode(prim, &raw); err != nil {
		l.decodeErr(err, strings.Join(path, "."))
		l.cover(path)
		return nil, false
	}
	return raw, true
}

// decodeKeys decodes raw, the table at path, key by key into the fields of
// the same name in targets (pointers to structs: the engine's keys and the
// plugin's Config), so that a bad value is one error and every other key is
// still decoded: decoding the whole table at once stops at the first bad
// value and leaves the keys after it looking unknown. Sub-tables of struct
// fields are decoded the same way. Keys no target knows are reported with
// a suggestion. It returns whether every key decoded.
func (l *loader) decodeKeys(path []string, raw map[string]toml.Primitive, targets ...reflect.Value) bool {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ok := true
	for _, k := range keys {
		kp := append(path[:len(path):len(path)], k)
		var fields []reflect.Value
		for _, t := range targets {
			if f, found := fieldByKey(t, k); found {
				fields = append(fields, f)
			}
		}
		if len(fields) == 0 {
			key := strings.Join(kp, ".")
			hint, meant := l.unknownHint(kp, targets)
			l.add(l.line(key), key, "unknown key%s", hint)
			l.cover(kp)
			if meant != "" && !l.md.IsDefined(append(path[:len(path):len(path)], meant)...) {
				// The misspelt key's absence is no second mistake.
				l.meant[strings.Join(append(path[:len(path):len(path)], meant), ".")] = true
			}
			continue
		}
		if sub := subStructs(fields); sub != nil && l.md.Type(kp...) == "Hash" {
			if r, good := l.table(kp, raw[k]); !good || !l.decodeKeys(kp, r, sub...) {
				ok = false
			}
			continue
		}
		for _, f := range fields {
			old := reflect.New(f.Type()).Elem()
			old.Set(f)
			if err := l.md.PrimitiveDecode(raw[k], f.Addr().Interface()); err != nil {
				// A pointer may have been allocated before the value failed.
				f.Set(old)
				l.decodeErr(err, strings.Join(kp, "."))
				// What is under a bad value is not unknown.
				l.cover(kp)
				ok = false
				break
			}
		}
	}
	return ok
}

// cover marks path as reported: keys under it are not reported as unknown.
func (l *loader) cover(path []string) {
	if l.covered == nil {
		l.covered = map[string]bool{}
	}
	l.covered[strings.Join(path, ".")] = true
}

// isCovered reports whether a proper prefix of k was covered.
func (l *loader) isCovered(k toml.Key) bool {
	for i := len(k) - 1; i > 0; i-- {
		if l.covered[k[:i].String()] {
			return true
		}
	}
	return false
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	tomlUnmarshaler = reflect.TypeFor[toml.Unmarshaler]()
)

// subStructs returns pointers to fields, when every one is a plain struct
// (whose keys can be decoded one by one), or nil.
func subStructs(fields []reflect.Value) []reflect.Value {
	for _, f := range fields {
		t := deref(f.Type())
		pt := reflect.PointerTo(t)
		if t.Kind() != reflect.Struct || pt.Implements(textUnmarshaler) || pt.Implements(tomlUnmarshaler) {
			return nil
		}
	}
	out := make([]reflect.Value, 0, len(fields))
	for _, f := range fields {
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				f.Set(reflect.New(f.Type().Elem()))
			}
			f = f.Elem()
		}
		out = append(out, f.Addr())
	}
	return out
}

// fieldByKey finds the field that the TOML library would decode key into:
// an exact name first, else one equal under case folding; the fields of
// untagged embedded structs count as the struct's own.
func fieldByKey(ptr reflect.Value, key string) (reflect.Value, bool) {
	v := ptr.Elem()
	var fold reflect.Value
	var walk func(v reflect.Value) (reflect.Value, bool)
	walk = func(v reflect.Value) (reflect.Value, bool) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, inline := tomlKey(f)
			if inline {
				fv := v.Field(i)
				if fv.Kind() != reflect.Pointer {
					if r, ok := walk(fv); ok {
						return r, true
					}
					continue
				}
				// Allocated only when it holds the key, as the decoder does.
				p := fv
				if p.IsNil() {
					p = reflect.New(fv.Type().Elem())
				}
				if r, ok := walk(p.Elem()); ok {
					fv.Set(p)
					return r, true
				}
				continue
			}
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if name == key {
				return v.Field(i), true
			}
			if !fold.IsValid() && strings.EqualFold(name, key) {
				fold = v.Field(i)
			}
		}
		return reflect.Value{}, false
	}
	if r, ok := walk(v); ok {
		return r, true
	}
	return fold, fold.IsValid()
}

// unknownHint says where a misplaced engine key belongs, or which known key
// an unknown one probably meant, and that key.
func (l *loader) unknownHint(k []string, targets []reflect.Value) (hint, meant string) {
	if h := l.hint(k); h != "" {
		return h, ""
	}
	known := map[string]bool{}
	for _, t := range targets {
		addKeys(t.Type().Elem(), known)
	}
	meant = closest(k[len(k)-1], known)
	if meant == "" {
		return "", ""
	}
	return fmt.Sprintf(" (did you mean `%s`?)", meant), meant
}

// didYouMean is closest as a hint for a message, or "".
func didYouMean(name string, known map[string]bool) string {
	if c := closest(name, known); c != "" {
		return fmt.Sprintf(" (did you mean `%s`?)", c)
	}
	return ""
}

// closest returns the known name closest to name, within an edit distance
// of 2 (a transposition counts 1) and shorter than name, or "".
func closest(name string, known map[string]bool) string {
	best, bestD := "", 3
	for c := range known {
		if d := editDistance(name, c, 2); d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if best == "" || bestD >= len(name) {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and transpositions of adjacent
// bytes), or max+1 when it exceeds max.
func editDistance(a, b string, max int) int {
	if d := len(a) - len(b); d > max || -d > max {
		return max + 1
	}
	// Three rows of the dynamic programme: two back for transpositions.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		low := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d = min(d, prev2[j-2]+1)
			}
			cur[j] = d
			low = min(low, d)
		}
		if low > max {
			return max + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	if prev[len(b)] > max {
		return max + 1
	}
	return prev[len(b)]
}
