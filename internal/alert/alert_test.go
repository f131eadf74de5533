package alert

import (
	"strings"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
)

func TestTextAndMessage(t *testing.T) {
	start := time.Date(2014, 1, 20, 17, 44, 43, 0, time.UTC).UnixNano()
	conf := 0.5
	a := &Alert{
		ID: "3", StartTime: &start, Severity: "high", ConfidenceNum: &conf, Completion: "failed",
		Description: "SSH brute force", HasDescription: true,
		Method:  &Method{Description: "guessing", HasDesc: true, Ref: []string{"cve:1", "cwe:2"}},
		Sources: []Node{Address("192.168.20.99", "evil.host.fqdn")},
		Targets: []Node{Address("10.0.0.1"), Service("tcp/22", "ssh")},
		Refs:    []string{"1", "2"},
		Key:     1, KeyName: "alert_ssh_bruteforce", Title: "SSH brute force",
		Context: []pipeline.Field{pipeline.NewField("flow_id", pipeline.TypeInteger, "", pipeline.IntValue(9))},
	}
	now := time.Date(2014, 1, 2, 3, 4, 5, 0, time.UTC)
	want := "alert: id = 3 time = Thu Jan  2 03:04:05 2014 start time = Mon Jan 20 17:44:43 2014 severity = high confidence = 0.5 completion = failed description = SSH brute force method = { \tdescription = guessing \tref = { cve:1, cwe:2 } } sources = { \taddress: 192.168.20.99, evil.host.fqdn } targets = { \taddress: 10.0.0.1 \tservice: tcp/22, ssh } refs = { 1, 2 }"
	if got := a.Text(now); got != want {
		t.Fatalf("\ngot  %s\nwant %s", got, want)
	}
	m := a.Message(now, "router", "ssh")
	if m.Type != Type || m.Severity != pipeline.SeverityCritical || m.Logger != "ssh" || m.Hostname != "router" || m.Timestamp != now.UnixNano() {
		t.Fatalf("header: %+v", m)
	}
	var names []string
	for _, f := range m.Fields {
		names = append(names, f.Name)
	}
	// docs/alerts.md's order.
	wantNames := "alert.id alert.start_time alert.description alert.severity alert.confidence alert.completion alert.method.description alert.method.ref alert.source alert.target alert.target alert.ref alert.key alert.key_name alert.title alert.context.flow_id"
	if got := strings.Join(names, " "); got != wantNames {
		t.Fatalf("field order\ngot  %s\nwant %s", got, wantNames)
	}
	if a.Context[0].Name != "flow_id" {
		t.Fatal("Fill must not rename the alert's own context fields")
	}
	for sev, want := range map[string]int32{"high": 2, "medium": 4, "low": 5, "": 5} {
		if MessageSeverity(sev) != want {
			t.Errorf("%q -> %d", sev, MessageSeverity(sev))
		}
	}
	if FormatG(1234567) != "1.23457e+06" || FormatG(7) != "7" {
		t.Fatal(FormatG(1234567), FormatG(7))
	}
}

// Ids are UUIDv7: version 7, RFC 9562 variant, the emission millisecond
// first (so they sort by time), 74 random bits; a seeded source repeats.
func TestIDs(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	g := NewIDs()
	seen := map[string]bool{}
	for i := range 10000 {
		id := g.New(now.Add(time.Duration(i) * time.Millisecond))
		u, ok := pipeline.ParseUUID(id)
		if !ok || !ValidID(id) || u[6]>>4 != 7 || u[8]>>6 != 2 || seen[id] {
			t.Fatalf("id %d: %s", i, id)
		}
		seen[id] = true
		ms := int64(u[0])<<40 | int64(u[1])<<32 | int64(u[2])<<24 | int64(u[3])<<16 | int64(u[4])<<8 | int64(u[5])
		if ms != now.UnixMilli()+int64(i) {
			t.Fatalf("id %s: time %d", id, ms)
		}
	}
	a, b := SeededIDs(7), SeededIDs(7)
	if x, y := a.New(now), b.New(now); x != y || x == SeededIDs(8).New(now) {
		t.Fatalf("seeded: %s %s", x, y)
	}
	for _, bad := range []string{"", "1", "019A8C3E-5B40-7C2D-9F1E-3A4B5C6D7E8F", "019a8c3e-5b40-7c2d-9f1e-3a4b5c6d7e8", "019a8c3e_5b40-7c2d-9f1e-3a4b5c6d7e8f"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q)", bad)
		}
	}
}

// An update replaces each top-level key it carries whole; the message of
// the result holds the whole alert, its text only what changed; Parse
// reads back what Fill wrote.
func TestApplyAndParse(t *testing.T) {
	start, end := int64(1), int64(2)
	a := &Alert{ID: "x", StartTime: &start, Severity: "low", Description: "d", HasDescription: true,
		Method:  &Method{Description: "guessing", HasDesc: true, Ref: []string{"cwe:1"}},
		Sources: []Node{Address("10.0.0.1")}, Key: 4, KeyName: "alert_k", Title: "K",
		Context: []pipeline.Field{
			pipeline.NewField("flow_id", pipeline.TypeInteger, "", pipeline.IntValue(9)),
			pipeline.NewField("http.hostname", pipeline.TypeString, "", pipeline.StringValue("a")),
			pipeline.NewField("http.url", pipeline.TypeString, "", pipeline.StringValue("/x")),
		}}
	keys := a.Apply(&Alert{EndTime: &end, Severity: "high", Method: &Method{Ref: []string{"cwe:2"}},
		Context: []pipeline.Field{pipeline.NewField("http.hostname", pipeline.TypeString, "", pipeline.StringValue("b"))}})
	if strings.Join(keys, " ") != "end_time severity method context.http" {
		t.Fatalf("keys %v", keys)
	}
	if a.Method.HasDesc || len(a.Context) != 2 || a.Context[1].Name != "http.hostname" || a.Severity != "high" || *a.StartTime != 1 {
		t.Fatalf("after the update: %+v %+v", a, a.Method)
	}
	a.Update, a.Updated = true, keys
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	m := a.Message(now, "h", "l")
	if want := "alert: update id = x time = Sun Nov 22 00:00:00 2026 end time = Thu Jan  1 00:00:00 1970 severity = high method = { \tref = { cwe:2 } }"; m.Payload != want {
		t.Fatalf("text\n%s\nwant\n%s", m.Payload, want)
	}
	if m.Severity != pipeline.SeverityCritical {
		t.Fatalf("an update's severity is the alert's: %d", m.Severity)
	}
	b, err := Parse(m)
	if err != nil {
		t.Fatal(err)
	}
	c := pipeline.NewMessage()
	b.Fill(c, now)
	if len(c.Fields) != len(m.Fields) || c.Payload != m.Payload {
		t.Fatalf("Parse: %+v", b)
	}
	for i := range c.Fields {
		if !c.Fields[i].Equal(&m.Fields[i]) {
			t.Fatalf("field %d: %+v, want %+v", i, c.Fields[i], m.Fields[i])
		}
	}
	for name, want := range map[string]string{
		FieldID: "", FieldUpdated: "", FieldMethodRef: KeyMethod, FieldMethodDescription: KeyMethod, FieldSource: KeySources,
		FieldKeyName: KeyDefinition, "alert.context.http.url": "context.http", "alert.context.flow_id": "context.flow_id", "other": "other",
	} {
		if got := TopKey(name); got != want {
			t.Errorf("TopKey(%s) = %q, want %q", name, got, want)
		}
	}
	// An integer id (earlier versions) reads as its decimal text.
	old := pipeline.NewMessage()
	old.AddInt(FieldID, 3)
	old.AddInt(FieldRef, 1)
	if o, err := Parse(old); err != nil || o.ID != "3" || len(o.Refs) != 1 || o.Refs[0] != "1" {
		t.Fatalf("%+v %v", o, err)
	}
}
