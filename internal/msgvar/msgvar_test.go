package msgvar

import (
	"testing"

	"github.com/ternlog/tern/pipeline"
)

func TestVars(t *testing.T) {
	m := pipeline.NewMessage()
	m.Type, m.Hostname, m.Severity = "t", "h", 3
	m.AddInt("n", 42)
	m.AddDouble("d", 0.5)
	m.AddBool("b", true)
	m.AddField(pipeline.NewField("multi", pipeline.TypeString, "", pipeline.StringValue("a"), pipeline.StringValue("b")))
	for spec, want := range map[string]string{"Type": "t", "Hostname": "h", "Severity": "3", "Fields[n]": "42",
		"Fields[d]": "0.5", "Fields[b]": "true", "Fields[multi]": "a"} {
		v, err := Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := v.String(m); !ok || got != want {
			t.Errorf("%s: %q %v", spec, got, ok)
		}
	}
	v, _ := Parse("Fields[none]")
	if _, ok := v.String(m); ok {
		t.Error("a missing field is absent")
	}
	for _, bad := range []string{"type", "Fields[]", "Fields[x", ""} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q must not parse", bad)
		}
	}
}
