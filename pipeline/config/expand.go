package config

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// expander replaces ${NAME} and ${NAME:-default} in every string reachable
// from a value (struct fields, slices, maps), after TOML parsing.
// Substituting typed values rather than text means an environment value can
// never change the structure of the config. "$${" stands for a literal "${".
type expander struct {
	lookup func(string) (string, bool)
	// report receives the dotted key path of each failing value.
	report func(path []string, err error)
	// secrets are what the environment put into values: errors show the
	// references instead (see redact), as values may be passwords or tokens.
	secrets []secret
}

// secret is a value from the environment, or a whole string it was
// expanded into, and the text errors show instead.
type secret struct{ value, ref string }

// minSecret is the shortest value redacted: hiding every "1" or "on" in a
// message would garble it, and such values are no secrets.
const minSecret = 4

func (x *expander) expand(v reflect.Value, path []string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			if v.Kind() == reflect.Interface {
				// Values inside interfaces are not addressable: expand a copy
				// and store it back.
				inner := v.Elem()
				cp := reflect.New(inner.Type()).Elem()
				cp.Set(inner)
				x.expand(cp, path)
				if v.CanSet() {
					v.Set(cp)
				}
				return
			}
			x.expand(v.Elem(), path)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, inline := tomlKey(f)
			if name == "-" {
				continue
			}
			if inline {
				x.expand(v.Field(i), path)
				continue
			}
			if name == "" {
				name = f.Name
			}
			x.expand(v.Field(i), append(path, name))
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			x.expand(v.Index(i), append(path, fmt.Sprint(i)))
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return
		}
		for _, k := range v.MapKeys() {
			e := v.MapIndex(k)
			cp := reflect.New(e.Type()).Elem()
			cp.Set(e)
			x.expand(cp, append(path, k.String()))
			v.SetMapIndex(k, cp)
		}
	case reflect.String:
		s := v.String()
		if !strings.Contains(s, "$") {
			return
		}
		out, err := expandString(s, x.lookup, func(name, val string) {
			if len(val) >= minSecret {
				x.secrets = append(x.secrets, secret{val, "${" + name + "}"})
			}
		})
		if err != nil {
			x.report(path, err)
			return
		}
		if out != s && len(out) >= minSecret {
			x.secrets = append(x.secrets, secret{out, s})
		}
		if v.CanSet() {
			v.SetString(out)
		}
	}
}

// tomlKey returns the key of a struct field from its toml tag ("" when it
// has none), and whether the field is an embedded struct without a tag,
// whose keys BurntSushi/toml decodes as the enclosing table's own.
func tomlKey(f reflect.StructField) (name string, inline bool) {
	name, _, _ = strings.Cut(f.Tag.Get("toml"), ",")
	return name, name == "" && f.Anonymous && deref(f.Type).Kind() == reflect.Struct
}

func deref(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		return t.Elem()
	}
	return t
}

// addKeys adds the keys of struct type t, those of its inline embedded
// structs included, to known.
func addKeys(t reflect.Type, known map[string]bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, inline := tomlKey(f)
		if inline {
			addKeys(deref(f.Type), known)
			continue
		}
		known[name] = true
	}
}

// expandString expands s; env receives each value taken from the
// environment (not defaults, which the file shows anyway).
func expandString(s string, lookup func(string) (string, bool), env func(name, val string)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("bad environment variable name %q", name)
		}
		val, ok := lookup(name)
		if !ok || (hasDef && val == "") {
			if !hasDef {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			val = def
		} else {
			env(name, val)
		}
		for _, c := range val {
			if c < 0x20 || c == 0x7f {
				return "", fmt.Errorf("environment variable %s holds a control character", name)
			}
		}
		b.WriteString(val)
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || (i > 0 && '0' <= c && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// redact replaces, in an error message, every value the environment put
// into the config with the reference it came from, as written and as Go
// would quote it. Longer values go first, so a whole expanded string is
// shown as its template rather than half replaced.
func (l *loader) redact(msg string) string {
	if len(l.secrets) == 0 {
		return msg
	}
	if !slices.IsSortedFunc(l.secrets, bySecretLen) {
		slices.SortStableFunc(l.secrets, bySecretLen)
	}
	for _, s := range l.secrets {
		if strings.Contains(msg, s.value) {
			msg = strings.ReplaceAll(msg, s.value, s.ref)
		}
		if q := strconv.Quote(s.value); len(q) > 2 {
			if q = q[1 : len(q)-1]; q != s.value && strings.Contains(msg, q) {
				msg = strings.ReplaceAll(msg, q, strings.Trim(strconv.Quote(s.ref), `"`))
			}
		}
	}
	return msg
}

func bySecretLen(a, b secret) int { return cmp.Compare(len(b.value), len(a.value)) }
