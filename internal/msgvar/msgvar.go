// Package msgvar reads a message header or field named the way Heka's
// matcher and sandbox name them ("Type", "Hostname", "Fields[src_ip]"), for
// the Go filters that group messages by a configured key.
package msgvar

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ternlog/tern/pipeline"
)

// Var is a parsed variable name.
type Var struct {
	Name  string // the spec as written
	field string // set for Fields[...]
}

var headers = map[string]bool{"Type": true, "Logger": true, "Hostname": true, "Payload": true, "EnvVersion": true,
	"Severity": true, "Pid": true, "Uuid": true}

// Parse accepts a header name or Fields[name].
func Parse(spec string) (Var, error) {
	if headers[spec] {
		return Var{Name: spec}, nil
	}
	if strings.HasPrefix(spec, "Fields[") && strings.HasSuffix(spec, "]") && len(spec) > 8 {
		return Var{Name: spec, field: spec[7 : len(spec)-1]}, nil
	}
	return Var{}, fmt.Errorf("%q is not a header (Type, Logger, Hostname, Payload, EnvVersion, Severity, Pid, Uuid) or Fields[name]", spec)
}

// String returns the variable's value in m as text (the first value of a
// field) and whether m has it.
func (v Var) String(m *pipeline.Message) (string, bool) {
	switch v.Name {
	case "Type":
		return m.Type, true
	case "Logger":
		return m.Logger, true
	case "Hostname":
		return m.Hostname, true
	case "Payload":
		return m.Payload, true
	case "EnvVersion":
		return m.EnvVersion, true
	case "Severity":
		return strconv.Itoa(int(m.Severity)), true
	case "Pid":
		return strconv.Itoa(int(m.Pid)), true
	case "Uuid":
		return m.UUIDString(), true
	}
	f := m.Field(v.field, 0)
	if f == nil || f.Len() == 0 {
		return "", false
	}
	return ValueString(f.Type, f.Value(0)), true
}

// ValueString renders one field value as text.
func ValueString(t pipeline.ValueType, v pipeline.Value) string {
	switch t {
	case pipeline.TypeInteger:
		return strconv.FormatInt(v.Int(), 10)
	case pipeline.TypeUnsigned:
		return strconv.FormatUint(v.Uint(), 10)
	case pipeline.TypeDouble:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64)
	case pipeline.TypeBool:
		return strconv.FormatBool(v.Bool())
	}
	return v.Str()
}
