package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// kindName is what a drop reason or an error kind looks like; it tells a
// telemetry Error("kind") from a logger's Error("message").
var kindName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// counted is what the production code of one package counts through
// pipeline.Settings (or a Telemetry) and what it declares at zero.
type counted struct {
	used     map[string]token.Position // "drop:<reason>" or "error:<kind>"
	declared map[string]bool
}

// TestEveryCountedReasonIsDeclared holds the rule that keeps tern's
// counters present from zero: every drop reason and error kind a package
// counts with a literal (set.Drop("oversize", n), set.Error("accept")) is
// declared in the same package (set.DeclareDrops("oversize"), called from
// the constructors), so /metrics shows it before it first happens.
func TestEveryCountedReasonIsDeclared(t *testing.T) {
	pkgs := listPackages(t)
	checked := 0
	for _, p := range pkgs {
		if testSupport(p.ImportPath) || len(p.GoFiles) == 0 {
			continue
		}
		c := scanCounts(t, p.Dir, p.GoFiles)
		var missing []string
		for k, pos := range c.used {
			checked++
			if !c.declared[k] {
				verb := "DeclareDrops"
				if strings.HasPrefix(k, "error:") {
					verb = "DeclareErrors"
				}
				missing = append(missing, pos.String()+": "+k+" is counted but never declared ("+verb+")")
			}
		}
		sort.Strings(missing)
		for _, m := range missing {
			t.Error(m)
		}
	}
	if checked < 20 {
		t.Fatalf("only %d counted reasons found: is the scan broken?", checked)
	}
}

func scanCounts(t *testing.T, dir string, files []string) counted {
	t.Helper()
	c := counted{used: map[string]token.Position{}, declared: map[string]bool{}}
	fset := token.NewFileSet()
	consts := map[string]string{} // package-level string constants
	var parsed []*ast.File
	for _, name := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if v, ok := stringLit(vs.Values[i], nil); ok {
							consts[n.Name] = v
						}
					}
				}
			}
		}
	}
	for _, f := range parsed {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "Drop":
				if len(call.Args) == 2 {
					if v, ok := stringLit(call.Args[0], consts); ok && kindName.MatchString(v) {
						c.used["drop:"+v] = fset.Position(call.Pos())
					}
				}
			case "Error":
				if len(call.Args) == 1 {
					if v, ok := stringLit(call.Args[0], consts); ok && kindName.MatchString(v) {
						c.used["error:"+v] = fset.Position(call.Pos())
					}
				}
			case "DeclareDrops", "DeclareErrors":
				prefix := "drop:"
				if sel.Sel.Name == "DeclareErrors" {
					prefix = "error:"
				}
				for _, a := range call.Args {
					if v, ok := stringLit(a, consts); ok {
						c.declared[prefix+v] = true
					}
				}
			}
			return true
		})
	}
	return c
}

// stringLit is the value of a string literal, or of a constant named in
// consts.
func stringLit(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			v, err := strconv.Unquote(e.Value)
			return v, err == nil
		}
	case *ast.Ident:
		v, ok := consts[e.Name]
		return v, ok
	}
	return "", false
}
