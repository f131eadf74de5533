package zeek

import (
	"strings"
	"testing"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// A notice for an alert update shows the alert after the update, each key
// the update carries replaced whole: a method with only ref has no
// description any more, so sub is unset rather than stale. Both kinds of
// update: the whole alert (what tern's producers send) and the changed
// keys only (earlier producers).
func TestNoticeOfUpdateNotStale(t *testing.T) {
	a := &alert.Alert{ID: "019a8c3e-5b40-7c2d-9f1e-3a4b5c6d7e8f", Description: "SSH brute force", HasDescription: true,
		Method: &alert.Method{Description: "password guessing", HasDesc: true}, Key: 1, KeyName: "alert_ssh_bruteforce"}
	whole := *a
	whole.Updated = whole.Apply(&alert.Alert{Method: &alert.Method{Ref: []string{"cwe:307"}}})
	whole.Update = true
	partial := pipeline.NewMessage()
	partial.Type = alert.Type
	partial.AddString(alert.FieldID, a.ID)
	partial.AddBool(alert.FieldUpdate, true)
	partial.AddString(alert.FieldMethodRef, "cwe:307")
	for name, upd := range map[string]*pipeline.Message{
		"whole":   whole.Message(pipelinetest.Now, "h", "ssh"),
		"partial": partial,
	} {
		e := newEncoder(t, func(c *Config) { c.Preset = "notice" })
		first, err := e.Encode(nil, a.Message(pipelinetest.Now, "h", "ssh"))
		if err != nil || !strings.Contains(string(first), "\tSSH brute force\tpassword guessing\t") {
			t.Fatalf("%s: the alert: %q %v", name, first, err)
		}
		out, err := e.Encode(nil, upd)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "\tTern::alert_ssh_bruteforce\tSSH brute force\t-\t") {
			t.Errorf("%s: the update: %q", name, out)
		}
	}
}
