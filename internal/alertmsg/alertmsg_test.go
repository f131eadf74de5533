package alertmsg

import (
	"strings"
	"testing"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/pipeline"
)

func names(m *pipeline.Message) string {
	var out []string
	for i := range m.Fields {
		f := &m.Fields[i]
		s := f.Name
		if f.Len() > 0 && f.Type == pipeline.TypeString {
			s += "=" + f.Value(0).Str()
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// An update that carries only its changes is merged by top-level key: a
// method with only ref replaces the whole method, a context entry its
// whole object; whole updates (alert.updated) pass as they are.
func TestResolve(t *testing.T) {
	s := NewStore(10)
	a := pipeline.NewMessage()
	a.Type, a.Logger = alert.Type, "f"
	a.AddString(alert.FieldID, "id1")
	a.AddString(alert.FieldDescription, "d")
	a.AddString(alert.FieldMethodDescription, "guessing")
	a.AddString(alert.FieldMethodRef, "cwe:1")
	a.AddString("alert.context.http.hostname", "a")
	a.AddString("alert.context.http.url", "/x")
	a.AddString("alert.context.app_proto", "http")
	s.Resolve(a)

	u := pipeline.NewMessage()
	u.Type, u.Logger = alert.Type, "other-logger" // string ids are unique: the Logger does not matter
	u.AddString(alert.FieldID, "id1")
	u.AddBool(alert.FieldUpdate, true)
	u.AddString(alert.FieldMethodRef, "cwe:2")
	u.AddString("alert.context.http.hostname", "b")
	got := names(s.Resolve(u))
	want := "alert.id=id1 alert.update alert.description=d alert.context.app_proto=http alert.method.ref=cwe:2 alert.context.http.hostname=b"
	if got != want {
		t.Fatalf("merged\n%s\nwant\n%s", got, want)
	}
	if k := strings.Join(UpdatedKeys(u), ","); k != "method,context.http" {
		t.Fatalf("updated keys %s", k)
	}

	// A whole update is what it says, and what later updates apply to.
	w := pipeline.NewMessage()
	w.Type = alert.Type
	w.AddString(alert.FieldID, "id1")
	w.AddBool(alert.FieldUpdate, true)
	w.AddField(pipeline.NewField(alert.FieldUpdated, pipeline.TypeString, "", pipeline.StringValue("description")))
	w.AddString(alert.FieldDescription, "e")
	if r := s.Resolve(w); r != w {
		t.Fatal("a whole update was merged")
	}
	v := pipeline.NewMessage()
	v.Type = alert.Type
	v.AddString(alert.FieldID, "id1")
	v.AddBool(alert.FieldUpdate, true)
	v.AddString(alert.FieldCompletion, "successful")
	if got := names(s.Resolve(v)); got != "alert.id=id1 alert.update alert.description=e alert.completion=successful" {
		t.Fatalf("after the whole update: %s", got)
	}

	// Integer ids (earlier versions) counted per filter: the Logger is
	// part of the name.
	old := pipeline.NewMessage()
	old.Type, old.Logger = alert.Type, "f"
	old.AddInt(alert.FieldID, 1)
	old.AddString(alert.FieldDescription, "from f")
	s.Resolve(old)
	other := pipeline.NewMessage()
	other.Type, other.Logger = alert.Type, "g"
	other.AddInt(alert.FieldID, 1)
	other.AddBool(alert.FieldUpdate, true)
	other.AddString(alert.FieldCompletion, "failed")
	if got := names(s.Resolve(other)); strings.Contains(got, "from f") {
		t.Fatalf("an update of g's alert 1 took f's: %s", got)
	}
	if id, ok := ID(other); !ok || id != "1" {
		t.Fatalf("ID %q", id)
	}
}
