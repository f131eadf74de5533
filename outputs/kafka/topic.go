package kafka

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ternlog/tern/internal/kafkax"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/template"
)

// topicTemplate is the topic setting (pipeline/template syntax). A topic
// with substitutions must begin with literal text, its prefix: substituted
// values may hold only topic characters, so a rendered topic cannot leave
// the prefix or be a name Kafka refuses (R25).
type topicTemplate struct {
	t      *template.Template
	prefix string
	static string // the whole topic when it has no substitution
}

func parseTopic(s string) (*topicTemplate, error) {
	if s == "" {
		return nil, errors.New("required")
	}
	t, err := template.Parse(s)
	if err != nil {
		return nil, err
	}
	tt := &topicTemplate{t: t, prefix: t.LiteralPrefix()}
	if t.IsStatic() {
		tt.static = t.LiteralPrefix()
		if !kafkax.IsValidTopic(tt.static) {
			return nil, fmt.Errorf("%q is not a Kafka topic (1..249 of a-z A-Z 0-9 . _ -)", tt.static)
		}
		return tt, nil
	}
	if tt.prefix == "" {
		return nil, errors.New("a topic with substitutions must begin with literal text (its prefix), so messages cannot choose any topic")
	}
	if !kafkax.IsValidTopic(tt.prefix + "x") {
		return nil, fmt.Errorf("prefix %q holds characters a Kafka topic cannot (a-z A-Z 0-9 . _ -)", tt.prefix)
	}
	return tt, nil
}

// errConfined is the error of a rendered topic refused by R25.
var errConfined = errors.New("topic outside the configured prefix or not a valid topic name")

// topicValue refuses a substituted value that is not all topic characters.
func topicValue(v []byte) error {
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %.80q", errConfined, v)
		}
	}
	return nil
}

// render returns the topic for m; buf is scratch space. A value that is
// missing (without a default) or would leave the prefix is an error.
func (t *topicTemplate) render(buf []byte, m *pipeline.Message) (string, []byte, error) {
	if t.static != "" {
		return t.static, buf, nil
	}
	buf, err := t.t.Append(buf[:0], m, topicValue)
	if err != nil {
		return "", buf, err
	}
	if !kafkax.IsValidTopic(string(buf)) || !strings.HasPrefix(string(buf), t.prefix) {
		return "", buf, fmt.Errorf("%w: %.80q", errConfined, buf)
	}
	return string(buf), buf, nil
}
