package file

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/template"
)

// FuzzPathTemplate parses any path setting and renders it with any field
// values. Whatever the parser accepts and the checks let through must be a
// local path below the base directory: never absolute, never "..", never NUL.
func FuzzPathTemplate(f *testing.F) {
	for _, s := range []struct{ tmpl, host, a string }{
		{"out/%{Hostname}/%{Fields[path]}.log", "sensor-1", "conn"},
		{"%{Hostname}/%{Fields[a]}%{Fields[b]:-.}/x", ".", "."},
		{"/base/%{%Y/%m}/%{Fields[a]:-x}", "h", "../../etc"},
		{"a/%{Hostname:-..}", "", "a"},
		{"%%{Hostname}/%{UUID}/%{Severity}", "h", "\x00"},
		{"x/%{Fields[path]}", "h", "a/../../b"},
	} {
		f.Add(s.tmpl, s.host, s.a)
	}
	f.Fuzz(func(t *testing.T, tmpl, host, a string) {
		for _, baseDir := range []string{"", "/base"} {
			_, rest, err := layout(tmpl, baseDir)
			if err != nil {
				continue
			}
			if again, err := template.Parse(rest.String()); err != nil || again.String() != rest.String() {
				t.Fatalf("template %q does not round-trip: %v", rest.String(), err)
			}
			m := pipeline.NewMessage()
			m.Hostname = host
			m.Type = a
			m.AddString("path", a)
			m.AddString("a", a)
			m.AddString("b", host)
			b, err := rest.Append(nil, m, checkValue)
			if err == nil {
				err = checkRendered(b)
			}
			if err != nil {
				continue
			}
			p := string(b)
			if !filepath.IsLocal(p) || strings.ContainsRune(p, 0) || filepath.Clean(p) != p {
				t.Fatalf("template %q with %q/%q rendered %q: not a clean local path", tmpl, host, a, p)
			}
			for _, c := range strings.Split(p, "/") {
				if c == ".." || c == "." || c == "" {
					t.Fatalf("template %q rendered %q with component %q", tmpl, p, c)
				}
			}
		}
	})
}
