package kafka

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ternlog/tern/internal/kafkax"
	"github.com/ternlog/tern/pipeline"
)

// topicTemplate is a topic with %{…} substitutions from the message:
// %{Type}, %{Logger}, %{Hostname}, %{Severity}, %{Pid}, %{EnvVersion} and
// %{Fields[name]}; %% is a percent sign. A template must begin with
// literal text, its prefix: a rendered topic outside the prefix, or with a
// character Kafka refuses, is not produced (R25).
type topicTemplate struct {
	parts  []topicPart
	prefix string
	static string // the whole topic when it has no substitution
}

type topicPart struct {
	lit   string
	field string // Fields[name]
	hdr   string // header name
}

var topicHeaders = []string{"Type", "Logger", "Hostname", "Severity", "Pid", "EnvVersion"}

func parseTopic(s string) (*topicTemplate, error) {
	t := &topicTemplate{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, topicPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "%%"):
			lit.WriteByte('%')
			i += 2
		case strings.HasPrefix(s[i:], "%{"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed %%{ at byte %d", i)
			}
			name := s[i+2 : i+end]
			flush()
			switch {
			case strings.HasPrefix(name, "Fields[") && strings.HasSuffix(name, "]") && len(name) > len("Fields[]"):
				t.parts = append(t.parts, topicPart{field: name[len("Fields[") : len(name)-1]})
			case contains(topicHeaders, name):
				t.parts = append(t.parts, topicPart{hdr: name})
			default:
				return nil, fmt.Errorf("unknown substitution %%{%s} (%s or Fields[name])", name, strings.Join(topicHeaders, ", "))
			}
			i += end + 1
		default:
			lit.WriteByte(s[i])
			i++
		}
	}
	flush()
	if len(t.parts) == 0 {
		return nil, errors.New("required")
	}
	if t.parts[0].lit == "" {
		return nil, errors.New("a topic with substitutions must begin with literal text (its prefix), so messages cannot choose any topic")
	}
	t.prefix = t.parts[0].lit
	if len(t.parts) == 1 {
		t.static = t.prefix
		if !kafkax.IsValidTopic(t.static) {
			return nil, fmt.Errorf("%q is not a Kafka topic (1..249 of a-z A-Z 0-9 . _ -)", t.static)
		}
	} else if !kafkax.IsValidTopic(t.prefix + "x") {
		return nil, fmt.Errorf("prefix %q holds characters a Kafka topic cannot (a-z A-Z 0-9 . _ -)", t.prefix)
	}
	return t, nil
}

func contains(set []string, s string) bool {
	for _, v := range set {
		if v == s {
			return true
		}
	}
	return false
}

// errConfined is the error of a rendered topic refused by R25.
var errConfined = errors.New("topic outside the configured prefix or not a valid topic name")

// render returns the topic for m. buf is scratch space.
func (t *topicTemplate) render(buf []byte, m *pipeline.Message) (string, []byte, error) {
	if t.static != "" {
		return t.static, buf, nil
	}
	buf = buf[:0]
	for _, p := range t.parts {
		switch {
		case p.lit != "":
			buf = append(buf, p.lit...)
		case p.field != "":
			if f := m.FirstField(p.field); f != nil && f.Len() > 0 {
				buf = appendValue(buf, f)
			}
		default:
			buf = appendHeader(buf, m, p.hdr)
		}
	}
	// Every byte after the prefix came from the message: it must keep to
	// topic characters, so the prefix is the topic's real beginning.
	if !kafkax.IsValidTopic(string(buf)) || !strings.HasPrefix(string(buf), t.prefix) {
		return "", buf, fmt.Errorf("%w: %.80q", errConfined, buf)
	}
	return string(buf), buf, nil
}

func appendHeader(dst []byte, m *pipeline.Message, h string) []byte {
	switch h {
	case "Type":
		return append(dst, m.Type...)
	case "Logger":
		return append(dst, m.Logger...)
	case "Hostname":
		return append(dst, m.Hostname...)
	case "Severity":
		return strconv.AppendInt(dst, int64(m.Severity), 10)
	case "Pid":
		return strconv.AppendInt(dst, int64(m.Pid), 10)
	case "EnvVersion":
		return append(dst, m.EnvVersion...)
	}
	return dst
}

// appendValue renders the first value of f.
func appendValue(dst []byte, f *pipeline.Field) []byte {
	v := f.Value(0)
	switch f.Type {
	case pipeline.TypeInteger:
		return strconv.AppendInt(dst, v.Int(), 10)
	case pipeline.TypeDouble:
		return strconv.AppendFloat(dst, v.Double(), 'g', -1, 64)
	case pipeline.TypeBool:
		return strconv.AppendBool(dst, v.Bool())
	}
	return append(dst, v.Str()...)
}
