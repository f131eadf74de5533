package file

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ternlog/tern/pipeline/template"
)

// Limits on what a rendered path may be (Linux NAME_MAX and PATH_MAX).
const (
	maxComponent = 255
	maxPath      = 4096
)

// layout splits the path setting into the directory every file must stay
// in and the template of the path below it. A template is confined by
// construction: substituted values cannot hold a separator, so they can
// only fill in names inside the literal directory structure; the literal
// part itself may not leave the base directory.
func layout(path, baseDir string) (base string, rest *template.Template, err error) {
	t, err := template.Parse(path)
	if err != nil {
		return "", nil, fmt.Errorf("path: %v", err)
	}
	lit := t.LiteralPrefix()
	var cut string
	if baseDir == "" {
		if i := strings.LastIndexByte(lit, '/'); i >= 0 {
			cut = lit[:i+1]
		}
		switch {
		case cut != "":
			base = filepath.Clean(cut)
		case t.IsStatic():
			base = "."
		default:
			return "", nil, fmt.Errorf("path: %q begins with a substitution, so its files could go anywhere: set base_dir to the directory they must stay in", path)
		}
	} else {
		base = filepath.Clean(baseDir)
		if strings.HasPrefix(lit, "/") {
			cut = base + "/"
			if base == "/" {
				cut = "/"
			}
			if !strings.HasPrefix(lit, cut) {
				return "", nil, fmt.Errorf("path: %q is not under base_dir %q", path, baseDir)
			}
		}
	}
	rest, _ = t.CutPrefix(cut)
	if err := checkLiteralComponents(rest); err != nil {
		return "", nil, fmt.Errorf("path: %v", err)
	}
	return base, rest, nil
}

// checkLiteralComponents refuses a template whose fixed structure could
// leave the base directory or name nothing.
func checkLiteralComponents(t *template.Template) error {
	var shape strings.Builder
	for _, p := range t.Parts() {
		if p.Kind == template.KindLiteral {
			shape.WriteString(p.Text)
		} else {
			shape.WriteByte('x') // a value: one non-empty, separator-free name piece
		}
	}
	s := shape.String()
	if s == "" {
		return errors.New("no file name")
	}
	if strings.HasPrefix(s, "/") {
		return errors.New("absolute path below base_dir")
	}
	for _, c := range strings.Split(s, "/") {
		switch c {
		case "":
			return errors.New("empty path component (//, or a trailing /)")
		case ".", "..":
			return fmt.Errorf("path component %q: a template must stay inside base_dir", c)
		}
	}
	if strings.ContainsRune(s, 0) {
		return errors.New("NUL in path")
	}
	return nil
}

// errConfinement is wrapped by every refusal of a rendered path.
var errConfinement = errors.New("path escapes confinement")

// checkValue refuses substituted values that could change the path's
// structure or that no file system takes.
func checkValue(v []byte) error {
	switch {
	case len(v) == 0:
		return fmt.Errorf("%w: empty value", errConfinement)
	case len(v) > maxComponent:
		return fmt.Errorf("%w: value longer than %d bytes", errConfinement, maxComponent)
	}
	for _, c := range v {
		switch {
		case c == '/' || c == '\\':
			return fmt.Errorf("%w: path separator in value %q", errConfinement, clip(v))
		case c == 0:
			return fmt.Errorf("%w: NUL in value %q", errConfinement, clip(v))
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("%w: control character in value %q", errConfinement, clip(v))
		}
	}
	return nil
}

// checkRendered checks the whole rendered path: values side by side may
// still form "." or ".." ("%{a}%{b}" with a = b = ".").
func checkRendered(p []byte) error {
	if len(p) > maxPath {
		return fmt.Errorf("%w: path longer than %d bytes", errConfinement, maxPath)
	}
	for len(p) > 0 {
		c := p
		if i := bytes.IndexByte(p, '/'); i >= 0 {
			c, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		switch {
		case len(c) == 0, len(c) == 1 && c[0] == '.', len(c) == 2 && c[0] == '.' && c[1] == '.':
			return fmt.Errorf("%w: path component %q", errConfinement, c)
		case len(c) > maxComponent:
			return fmt.Errorf("%w: path component longer than %d bytes", errConfinement, maxComponent)
		}
	}
	return nil
}

func clip(v []byte) string {
	if len(v) > 64 {
		return string(v[:64]) + "…"
	}
	return string(v)
}
