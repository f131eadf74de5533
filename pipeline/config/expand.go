package config

import (
	"fmt"
	"reflect"
	"strings"
)

// expandEnv replaces ${NAME} and ${NAME:-default} in every string reachable
// from v (struct fields, slices, maps), after TOML parsing. Substituting
// typed values rather than text means an environment value can never change
// the structure of the config. "$${" stands for a literal "${".
// report receives the dotted key path of each failing value.
func expandEnv(v reflect.Value, path []string, lookup func(string) (string, bool), report func(path []string, err error)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			if v.Kind() == reflect.Interface {
				// Values inside interfaces are not addressable: expand a copy
				// and store it back.
				inner := v.Elem()
				cp := reflect.New(inner.Type()).Elem()
				cp.Set(inner)
				expandEnv(cp, path, lookup, report)
				if v.CanSet() {
					v.Set(cp)
				}
				return
			}
			expandEnv(v.Elem(), path, lookup, report)
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
				expandEnv(v.Field(i), path, lookup, report)
				continue
			}
			if name == "" {
				name = f.Name
			}
			expandEnv(v.Field(i), append(path, name), lookup, report)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			expandEnv(v.Index(i), append(path, fmt.Sprint(i)), lookup, report)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return
		}
		for _, k := range v.MapKeys() {
			e := v.MapIndex(k)
			cp := reflect.New(e.Type()).Elem()
			cp.Set(e)
			expandEnv(cp, append(path, k.String()), lookup, report)
			v.SetMapIndex(k, cp)
		}
	case reflect.String:
		s := v.String()
		if !strings.Contains(s, "$") {
			return
		}
		out, err := expandString(s, lookup)
		if err != nil {
			report(path, err)
			return
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

func expandString(s string, lookup func(string) (string, bool)) (string, error) {
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
