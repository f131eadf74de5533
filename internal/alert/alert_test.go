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
		ID: 3, StartTime: &start, Severity: "high", ConfidenceNum: &conf, Completion: "failed",
		Description: "SSH brute force", HasDescription: true,
		Method:  &Method{Description: "guessing", HasDesc: true, Ref: []string{"cve:1", "cwe:2"}},
		Sources: []Node{Address("192.168.20.99", "evil.host.fqdn")},
		Targets: []Node{Address("10.0.0.1"), Service("tcp/22", "ssh")},
		Refs:    []int64{1, 2},
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
