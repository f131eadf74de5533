// Package alert is the alert message contract of docs/alerts.md in Go: the
// Haka alert (formats.md §5), its one-line text rendering and the
// tern.alert message that carries it. The Lua filter and the Go filters
// that raise alerts (threshold, dedupe) build messages here, so every
// producer writes the same fields in the same order.
package alert

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ternlog/tern/pipeline"
)

// Type is the message Type of alerts.
const Type = "tern.alert"

// Field names of the alert message (docs/alerts.md).
const (
	FieldID                = "alert.id"
	FieldUpdate            = "alert.update"
	FieldStartTime         = "alert.start_time"
	FieldEndTime           = "alert.end_time"
	FieldDescription       = "alert.description"
	FieldSeverity          = "alert.severity"
	FieldConfidence        = "alert.confidence"
	FieldCompletion        = "alert.completion"
	FieldMethodDescription = "alert.method.description"
	FieldMethodRef         = "alert.method.ref"
	FieldSource            = "alert.source"
	FieldTarget            = "alert.target"
	FieldRef               = "alert.ref"
	FieldKey               = "alert.key"
	FieldKeyName           = "alert.key_name"
	FieldTitle             = "alert.title"
	ContextPrefix          = "alert.context."
)

// Node types of sources and targets.
const (
	NodeAddress = "address"
	NodeService = "service"
)

// Node is an alert.address(…) or alert.service(…) node.
type Node struct {
	Type   string
	Values []string
}

// Method is the alert's method table.
type Method struct {
	Description string
	HasDesc     bool
	Ref         []string
}

// Alert is a Haka alert, or the keys of an update. Pointer and Has fields
// tell which keys are present: an update carries only what changed.
type Alert struct {
	ID        int64
	Update    bool
	StartTime *int64 // ns since the epoch
	EndTime   *int64
	// Description is present when HasDescription.
	Description    string
	HasDescription bool
	Severity       string // low, medium, high; "" when absent
	// Confidence is a level (low, medium, high) or, when ConfidenceNum is
	// set, a number.
	Confidence    string
	ConfidenceNum *float64
	Completion    string // failed, successful; "" when absent
	Method        *Method
	Sources       []Node
	Targets       []Node
	Refs          []int64
	// Definition (ntopng-style) of a raised alert; Key 0 means none.
	Key     int
	KeyName string
	Title   string
	// Context holds alert.context.<name> fields; names are given without
	// the prefix.
	Context []pipeline.Field
}

// Levels are the values of severity and of a level confidence.
var Levels = []string{"low", "medium", "high"}

// ValidLevel reports whether s is low, medium or high.
func ValidLevel(s string) bool { return s == "low" || s == "medium" || s == "high" }

// ValidCompletion reports whether s is failed or successful.
func ValidCompletion(s string) bool { return s == "failed" || s == "successful" }

// MessageSeverity maps the alert severity to syslog's: high → crit (2),
// medium → warning (4), low or absent → notice (5).
func MessageSeverity(severity string) int32 {
	switch severity {
	case "high":
		return pipeline.SeverityCritical
	case "medium":
		return pipeline.SeverityWarning
	}
	return pipeline.SeverityNotice
}

// Message builds the tern.alert message for a at emission time now.
func (a *Alert) Message(now time.Time, hostname, logger string) *pipeline.Message {
	m := pipeline.NewMessage()
	a.Fill(m, now)
	m.Hostname = hostname
	m.Logger = logger
	return m
}

// Fill sets m's Type, Timestamp, Severity, Payload and fields for a.
func (a *Alert) Fill(m *pipeline.Message, now time.Time) {
	m.Type = Type
	m.Timestamp = now.UnixNano()
	m.Severity = MessageSeverity(a.Severity)
	m.Payload = a.Text(now)
	m.AddInt(FieldID, a.ID)
	if a.Update {
		m.AddBool(FieldUpdate, true)
	}
	if a.StartTime != nil {
		m.AddField(pipeline.NewField(FieldStartTime, pipeline.TypeInteger, "ns", pipeline.IntValue(*a.StartTime)))
	}
	if a.EndTime != nil {
		m.AddField(pipeline.NewField(FieldEndTime, pipeline.TypeInteger, "ns", pipeline.IntValue(*a.EndTime)))
	}
	if a.HasDescription {
		m.AddString(FieldDescription, a.Description)
	}
	if a.Severity != "" {
		m.AddString(FieldSeverity, a.Severity)
	}
	if a.ConfidenceNum != nil {
		m.AddDouble(FieldConfidence, *a.ConfidenceNum)
	} else if a.Confidence != "" {
		m.AddString(FieldConfidence, a.Confidence)
	}
	if a.Completion != "" {
		m.AddString(FieldCompletion, a.Completion)
	}
	if a.Method != nil {
		if a.Method.HasDesc {
			m.AddString(FieldMethodDescription, a.Method.Description)
		}
		if len(a.Method.Ref) > 0 {
			m.AddField(stringsField(FieldMethodRef, "", a.Method.Ref))
		}
	}
	for _, n := range a.Sources {
		m.AddField(stringsField(FieldSource, n.Type, n.Values))
	}
	for _, n := range a.Targets {
		m.AddField(stringsField(FieldTarget, n.Type, n.Values))
	}
	if len(a.Refs) > 0 {
		f := pipeline.NewField(FieldRef, pipeline.TypeInteger, "")
		for _, r := range a.Refs {
			f.Append(pipeline.IntValue(r))
		}
		m.AddField(f)
	}
	if a.Key != 0 {
		m.AddInt(FieldKey, int64(a.Key))
		m.AddString(FieldKeyName, a.KeyName)
		if a.Title != "" {
			m.AddString(FieldTitle, a.Title)
		}
	}
	for _, f := range a.Context {
		f.Name = ContextPrefix + f.Name
		m.AddField(f)
	}
}

func stringsField(name, repr string, vals []string) pipeline.Field {
	f := pipeline.NewField(name, pipeline.TypeString, repr)
	for _, v := range vals {
		f.Append(pipeline.StringValue(v))
	}
	return f
}

// CTime renders t the way C's ctime() does, without the newline, in UTC:
// "Mon Jan 20 17:44:43 2014".
func CTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format("Mon Jan _2 15:04:05 2006")
}

// FormatG renders a number as C's %g does.
func FormatG(f float64) string { return fmt.Sprintf("%.6g", f) }

// Text is Haka's one-line rendering (formats.md §5.2): only present keys,
// in a fixed order, items separated by one space.
func (a *Alert) Text(now time.Time) string {
	const in = " "
	var b strings.Builder
	b.WriteString("alert: ")
	if a.Update {
		b.WriteString("update ")
	}
	b.WriteString("id = ")
	b.WriteString(strconv.FormatInt(a.ID, 10))
	b.WriteString(in + "time = " + CTime(now.UnixNano()))
	if a.StartTime != nil {
		b.WriteString(in + "start time = " + CTime(*a.StartTime))
	}
	if a.EndTime != nil {
		b.WriteString(in + "end time = " + CTime(*a.EndTime))
	}
	if a.Severity != "" {
		b.WriteString(in + "severity = " + a.Severity)
	}
	if a.ConfidenceNum != nil {
		b.WriteString(in + "confidence = " + FormatG(*a.ConfidenceNum))
	} else if a.Confidence != "" {
		b.WriteString(in + "confidence = " + a.Confidence)
	}
	if a.Completion != "" {
		b.WriteString(in + "completion = " + a.Completion)
	}
	if a.HasDescription {
		b.WriteString(in + "description = " + a.Description)
	}
	if a.Method != nil {
		b.WriteString(in + "method = {")
		if a.Method.HasDesc {
			b.WriteString(in + "\tdescription = " + a.Method.Description)
		}
		if len(a.Method.Ref) > 0 {
			b.WriteString(in + "\tref = { " + strings.Join(a.Method.Ref, ", ") + " }")
		}
		b.WriteString(in + "}")
	}
	nodes := func(name string, ns []Node) {
		b.WriteString(in + name + " = {")
		for _, n := range ns {
			b.WriteString(in + "\t" + n.Type + ": " + strings.Join(n.Values, ", "))
		}
		b.WriteString(in + "}")
	}
	if len(a.Sources) > 0 {
		nodes("sources", a.Sources)
	}
	if len(a.Targets) > 0 {
		nodes("targets", a.Targets)
	}
	if len(a.Refs) > 0 {
		refs := make([]string, len(a.Refs))
		for i, r := range a.Refs {
			refs[i] = strconv.FormatInt(r, 10)
		}
		b.WriteString(in + "refs = { " + strings.Join(refs, ", ") + " }")
	}
	return b.String()
}

// Address returns an address node.
func Address(values ...string) Node { return Node{Type: NodeAddress, Values: values} }

// Service returns a service node ("tcp/22", "ssh").
func Service(values ...string) Node { return Node{Type: NodeService, Values: values} }
