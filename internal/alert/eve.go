package alert

import (
	"fmt"
	"strings"

	"github.com/ternlog/tern/pipeline"
)

//go:generate go run gen_eve.go ../../encoders/eve/testdata/schema.json

// An alert's context may carry the protocol objects Suricata writes on its
// alerts (formats.md §3.4): "http", "tls", "dns", "flow", "files"… Their
// keys and JSON types come from Suricata's EVE schema (eve_keys.go), so
// that a producer can refuse what the schema would, and the EVE encoder
// writes only records the schema accepts.

// EVEKind is the JSON type of a key of an EVE protocol object.
type EVEKind uint8

// The kinds.
const (
	EVEString  EVEKind = iota + 1
	EVEDate            // a string 2006-01-02T15:04:05 (TLS certificate dates)
	EVEInteger         // integral, 64-bit
	EVENumber
	EVEBool
	EVEAny // a scalar of any type: the schema names none
	EVEObject
	EVEArray // of Elem
)

func (k EVEKind) String() string {
	switch k {
	case EVEString:
		return "string"
	case EVEDate:
		return "date (YYYY-MM-DDThh:mm:ss)"
	case EVEInteger:
		return "integer"
	case EVENumber:
		return "number"
	case EVEBool:
		return "boolean"
	case EVEAny:
		return "scalar"
	case EVEObject:
		return "table"
	case EVEArray:
		return "list"
	}
	return "?"
}

// EVEKey describes one key.
type EVEKey struct {
	Kind EVEKind
	Elem EVEKind // of an array
	// Open objects take keys the schema does not list.
	Open bool
	// Required keys of a top-level object (dns needs its version).
	Required []string
}

// Limits on the protocol data of one alert, which often comes from
// attacker-controlled traffic.
const (
	MaxEVEDepth  = 8   // levels below the context entry (dns.answers.0.srv.port is 4)
	MaxEVEArray  = 64  // elements of one array
	MaxEVELeaves = 512 // fields one alert's context may hold
)

// IsEVEObject reports whether a context entry of this name is a protocol
// object whose keys the schema lists ("http", "dns", "files"…).
func IsEVEObject(name string) bool {
	k, ok := eveKeys[name]
	return ok && (k.Kind == EVEObject || k.Kind == EVEArray)
}

// EVEObjects lists the protocol objects IsEVEObject knows, for messages.
func EVEObjects() []string {
	var out []string
	for p := range eveKeys {
		if !strings.ContainsAny(p, ".[") {
			out = append(out, p)
		}
	}
	sortStrings(out)
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// LookupEVE returns the key at path, a context field name below a
// protocol object: dotted, with decimal segments for array elements
// ("dns.answers.0.rrname" is the schema's dns.answers[].rrname). buf is
// scratch space; it returns it for reuse.
func LookupEVE(path string, buf []byte) (EVEKey, []byte, bool) {
	buf = buf[:0]
	for i := 0; path != ""; i++ {
		seg, rest, _ := strings.Cut(path, ".")
		path = rest
		switch {
		case i > 0 && isIndex(seg):
			buf = append(buf, "[]"...)
		case i > 0:
			buf = append(buf, '.')
			buf = append(buf, seg...)
		default:
			buf = append(buf, seg...)
		}
	}
	k, ok := eveKeys[string(buf)]
	return k, buf, ok
}

func isIndex(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidEVEDate reports whether s has the form of a TLS certificate date
// in the schema: ^[1-2]\d{3}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$.
func ValidEVEDate(s string) bool {
	const layout = "1999-99-99T99:99:99"
	if len(s) != len(layout) || s[0] != '1' && s[0] != '2' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if layout[i] == '9' {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		} else if s[i] != layout[i] {
			return false
		}
	}
	return true
}

// FitsEVE reports whether field f (named below a protocol object, e.g.
// "http.status") fits the schema: a known path whose kind matches f's
// type, one value for a scalar, one or more of Elem's type for an array of
// scalars.
func FitsEVE(f *pipeline.Field, buf []byte) ([]byte, error) {
	k, buf, ok := LookupEVE(f.Name, buf)
	if !ok {
		return buf, fmt.Errorf("%s: not a key of Suricata's %s object", f.Name, ContextName(f.Name))
	}
	kind := k.Kind
	if kind == EVEArray {
		kind = k.Elem
		if kind == EVEObject || kind == EVEArray {
			return buf, fmt.Errorf("%s: a list of tables expected", f.Name)
		}
	} else if f.Len() != 1 {
		return buf, fmt.Errorf("%s: one %s expected, got %d values", f.Name, kind, f.Len())
	}
	if f.Len() == 0 || f.HasUnset() {
		return buf, fmt.Errorf("%s: no value", f.Name)
	}
	okType := false
	switch kind {
	case EVEString:
		okType = f.Type == pipeline.TypeString
	case EVEDate:
		okType = f.Type == pipeline.TypeString
		for i := 0; okType && i < f.Len(); i++ {
			okType = ValidEVEDate(f.Value(i).Str())
		}
	case EVEInteger:
		okType = f.Type == pipeline.TypeInteger || f.Type == pipeline.TypeUnsigned
	case EVENumber:
		okType = f.Type == pipeline.TypeInteger || f.Type == pipeline.TypeUnsigned || f.Type == pipeline.TypeDouble
	case EVEBool:
		okType = f.Type == pipeline.TypeBool
	case EVEAny:
		okType = f.Type != pipeline.TypeBytes
	case EVEObject:
		return buf, fmt.Errorf("%s: a table expected", f.Name)
	}
	if !okType {
		return buf, fmt.Errorf("%s: %s expected", f.Name, kind)
	}
	return buf, nil
}

// EVEKeys returns a copy of the table: every path (array elements as
// "[]") and its key.
func EVEKeys() map[string]EVEKey {
	out := make(map[string]EVEKey, len(eveKeys))
	for p, k := range eveKeys {
		out[p] = k
	}
	return out
}

// EVERequired returns the keys protocol object name must have.
func EVERequired(name string) []string { return eveKeys[name].Required }

// MissingEVE returns the first required key of protocol object name that
// has no field among fields (context names), or "".
func MissingEVE(name string, fields []pipeline.Field) string {
	for _, req := range eveKeys[name].Required {
		want := name + "." + req
		found := false
		for i := range fields {
			if n := fields[i].Name; n == want || strings.HasPrefix(n, want+".") {
				found = true
				break
			}
		}
		if !found {
			return req
		}
	}
	return ""
}
