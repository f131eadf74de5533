// Package template fills text from a message, for output settings that
// vary per message: file paths, topics, headers (Heka's interpolation, and
// Bro's per-record path functions).
//
// A template is literal text with substitutions:
//
//	%{Type} %{Logger} %{Hostname} %{Severity} %{Pid} %{EnvVersion} %{UUID}
//	                          a header value
//	%{Fields[name]}           the first value of the first field called name
//	%{Fields[name]:-dflt}     the same, or dflt when the field is missing
//	%{%Y-%m-%d}               the message time: %Y %m %d %H %M %S %y %j
//	                          (strftime verbs), %% for a percent sign
//	%%                        a literal percent sign
//
// A header can take a default too (%{Hostname:-unknown}); an empty header
// value counts as missing. A % not followed by { or % is literal.
//
// Substituted values are never trusted: the caller passes a check that
// refuses the values its use cannot take (a path separator in a file name,
// CR/LF in a header), so a message cannot change the structure the literal
// text sets.
package template

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ternlog/tern/pipeline"
)

// Kind is what a Part holds.
type Kind uint8

const (
	// KindLiteral is fixed text.
	KindLiteral Kind = iota
	// KindHeader is a message header (Name is Type, Logger, …).
	KindHeader
	// KindField is the first value of a field (Name is its name).
	KindField
	// KindTime is the message timestamp rendered with Layout.
	KindTime
)

// Part is one piece of a template.
type Part struct {
	Kind Kind
	// Text is the literal text (KindLiteral).
	Text string
	// Name is the header or field name.
	Name string
	// Layout is the time format (KindTime), in strftime verbs.
	Layout string
	// Default replaces a missing value when HasDefault is set.
	Default    string
	HasDefault bool
}

// Template is a parsed template.
type Template struct {
	parts []Part
	loc   *time.Location
}

var headers = []string{"Type", "Logger", "Hostname", "Severity", "Pid", "EnvVersion", "UUID"}

// Parse parses s.
func Parse(s string) (*Template, error) {
	t := &Template{loc: time.UTC}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, Part{Kind: KindLiteral, Text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' || i+1 == len(s) || (s[i+1] != '{' && s[i+1] != '%') {
			lit.WriteByte(c)
			i++
			continue
		}
		if s[i+1] == '%' {
			lit.WriteByte('%')
			i += 2
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unterminated %%{ at offset %d", i)
		}
		body := s[i+2 : i+2+end]
		p, err := parseSubst(body)
		if err != nil {
			return nil, fmt.Errorf("%%{%s}: %v", body, err)
		}
		flush()
		t.parts = append(t.parts, p)
		i += 2 + end + 1
	}
	flush()
	return t, nil
}

func parseSubst(body string) (Part, error) {
	if body == "" {
		return Part{}, errors.New("empty substitution")
	}
	if body[0] == '%' {
		if err := checkLayout(body); err != nil {
			return Part{}, err
		}
		return Part{Kind: KindTime, Layout: body}, nil
	}
	name, def, hasDef := body, "", false
	if rest, ok := strings.CutPrefix(body, "Fields["); ok {
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return Part{}, errors.New("missing ] after the field name")
		}
		name = rest[:j]
		if name == "" {
			return Part{}, errors.New("empty field name")
		}
		tail := rest[j+1:]
		if tail != "" {
			d, ok := strings.CutPrefix(tail, ":-")
			if !ok {
				return Part{}, fmt.Errorf("unexpected %q after Fields[%s] (want :-default)", tail, name)
			}
			def, hasDef = d, true
		}
		return Part{Kind: KindField, Name: name, Default: def, HasDefault: hasDef}, nil
	}
	if n, d, ok := strings.Cut(body, ":-"); ok {
		name, def, hasDef = n, d, true
	}
	for _, h := range headers {
		if h == name {
			return Part{Kind: KindHeader, Name: name, Default: def, HasDefault: hasDef}, nil
		}
	}
	return Part{}, fmt.Errorf("unknown name %q (want one of %s, Fields[name] or a time format like %%Y-%%m-%%d)", name, strings.Join(headers, ", "))
}

func checkLayout(l string) error {
	for i := 0; i < len(l); i++ {
		if l[i] != '%' {
			continue
		}
		if i+1 == len(l) {
			return errors.New("time format ends with %")
		}
		i++
		if !strings.ContainsRune("YmdHMSyj%", rune(l[i])) {
			return fmt.Errorf("unknown time verb %%%c (want %%Y %%m %%d %%H %%M %%S %%y %%j %%%%)", l[i])
		}
	}
	return nil
}

// SetLocation sets the time zone of time substitutions (UTC by default).
func (t *Template) SetLocation(loc *time.Location) { t.loc = loc }

// Parts returns the template's pieces (read-only).
func (t *Template) Parts() []Part { return t.parts }

// IsStatic reports whether the template has no substitution.
func (t *Template) IsStatic() bool {
	for _, p := range t.parts {
		if p.Kind != KindLiteral {
			return false
		}
	}
	return true
}

// String renders the template back in canonical syntax.
func (t *Template) String() string {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.Kind {
		case KindLiteral:
			b.WriteString(strings.ReplaceAll(p.Text, "%", "%%"))
		case KindTime:
			b.WriteString("%{" + p.Layout + "}")
		case KindHeader, KindField:
			b.WriteString("%{")
			if p.Kind == KindField {
				b.WriteString("Fields[" + p.Name + "]")
			} else {
				b.WriteString(p.Name)
			}
			if p.HasDefault {
				b.WriteString(":-" + p.Default)
			}
			b.WriteString("}")
		}
	}
	return b.String()
}

// ErrMissing is wrapped by Append's error when a value is missing and the
// substitution has no default.
var ErrMissing = errors.New("missing value")

// Append renders the template for m onto dst. check is called with each
// substituted value (defaults included) and may refuse it; its error is
// returned wrapped with the substitution.
func (t *Template) Append(dst []byte, m *pipeline.Message, check func(v []byte) error) ([]byte, error) {
	for i := range t.parts {
		p := &t.parts[i]
		if p.Kind == KindLiteral {
			dst = append(dst, p.Text...)
			continue
		}
		start := len(dst)
		var ok bool
		switch p.Kind {
		case KindTime:
			dst, ok = appendTime(dst, time.Unix(0, m.Timestamp).In(t.loc), p.Layout), true
		case KindHeader:
			dst, ok = appendHeader(dst, m, p.Name)
		case KindField:
			dst, ok = appendField(dst, m, p.Name)
		}
		if !ok {
			if !p.HasDefault {
				return dst[:start], fmt.Errorf("%s: %w", t.describe(p), ErrMissing)
			}
			dst = append(dst[:start], p.Default...)
		}
		if check != nil {
			if err := check(dst[start:]); err != nil {
				return dst[:start], fmt.Errorf("%s: %w", t.describe(p), err)
			}
		}
	}
	return dst, nil
}

func (t *Template) describe(p *Part) string {
	switch p.Kind {
	case KindField:
		return "%{Fields[" + p.Name + "]}"
	case KindTime:
		return "%{" + p.Layout + "}"
	}
	return "%{" + p.Name + "}"
}

func appendHeader(dst []byte, m *pipeline.Message, name string) ([]byte, bool) {
	var s string
	switch name {
	case "Type":
		s = m.Type
	case "Logger":
		s = m.Logger
	case "Hostname":
		s = m.Hostname
	case "EnvVersion":
		s = m.EnvVersion
	case "Severity":
		return strconv.AppendInt(dst, int64(m.Severity), 10), true
	case "Pid":
		return strconv.AppendInt(dst, int64(m.Pid), 10), true
	case "UUID":
		return pipeline.AppendUUID(dst, m.UUID), true
	}
	if s == "" {
		return dst, false
	}
	return append(dst, s...), true
}

func appendField(dst []byte, m *pipeline.Message, name string) ([]byte, bool) {
	f := m.FirstField(name)
	if f == nil || f.Len() == 0 {
		return dst, false
	}
	v := f.Value(0)
	switch f.Type {
	case pipeline.TypeString, pipeline.TypeBytes:
		if v.Str() == "" {
			return dst, false
		}
		return append(dst, v.Str()...), true
	case pipeline.TypeInteger:
		return strconv.AppendInt(dst, v.Int(), 10), true
	case pipeline.TypeUnsigned:
		return strconv.AppendUint(dst, v.Uint(), 10), true
	case pipeline.TypeDouble:
		return strconv.AppendFloat(dst, v.Double(), 'g', -1, 64), true
	case pipeline.TypeBool:
		return strconv.AppendBool(dst, v.Bool()), true
	}
	return dst, false
}

func appendTime(dst []byte, tm time.Time, layout string) []byte {
	for i := 0; i < len(layout); i++ {
		c := layout[i]
		if c != '%' || i+1 == len(layout) {
			dst = append(dst, c)
			continue
		}
		i++
		switch layout[i] {
		case 'Y':
			dst = appendInt(dst, tm.Year(), 4)
		case 'y':
			dst = appendInt(dst, tm.Year()%100, 2)
		case 'm':
			dst = appendInt(dst, int(tm.Month()), 2)
		case 'd':
			dst = appendInt(dst, tm.Day(), 2)
		case 'H':
			dst = appendInt(dst, tm.Hour(), 2)
		case 'M':
			dst = appendInt(dst, tm.Minute(), 2)
		case 'S':
			dst = appendInt(dst, tm.Second(), 2)
		case 'j':
			dst = appendInt(dst, tm.YearDay(), 3)
		default:
			dst = append(dst, layout[i])
		}
	}
	return dst
}

func appendInt(dst []byte, v, width int) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	var b [20]byte
	s := strconv.AppendInt(b[:0], int64(v), 10)
	for k := len(s); k < width; k++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// CutPrefix returns t without the literal prefix, and whether t began with
// it (the prefix must lie within t's leading literal text).
func (t *Template) CutPrefix(prefix string) (*Template, bool) {
	if prefix == "" {
		return t, true
	}
	if len(t.parts) == 0 || t.parts[0].Kind != KindLiteral || !strings.HasPrefix(t.parts[0].Text, prefix) {
		return t, false
	}
	c := &Template{loc: t.loc, parts: append([]Part(nil), t.parts...)}
	if rest := c.parts[0].Text[len(prefix):]; rest != "" {
		c.parts[0].Text = rest
	} else {
		c.parts = c.parts[1:]
	}
	return c, true
}

// LiteralPrefix is the fixed text before the first substitution (all of it
// for a static template).
func (t *Template) LiteralPrefix() string {
	if len(t.parts) > 0 && t.parts[0].Kind == KindLiteral {
		return t.parts[0].Text
	}
	return ""
}
