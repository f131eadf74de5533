// Package alert is the alert message contract of docs/alerts.md in Go: the
// Haka alert (formats.md §5), its one-line text rendering and the
// tern.alert message that carries it. The Lua filter and the Go filters
// that raise alerts (threshold, dedupe) build messages here, so every
// producer writes the same fields in the same order; Parse reads them back.
package alert

import (
	"errors"
	"fmt"
	"slices"
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
	FieldUpdated           = "alert.updated"
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

// The alert's top-level keys, Haka's names, in the order of its text
// rendering. An update replaces each key it carries whole (the contract of
// formats.md §3.6: the stored alert with the updated keys replaced);
// alert.updated lists them. A context entry is a key of its own:
// "context.<name>".
const (
	KeyStartTime   = "start_time"
	KeyEndTime     = "end_time"
	KeySeverity    = "severity"
	KeyConfidence  = "confidence"
	KeyCompletion  = "completion"
	KeyDescription = "description"
	KeyMethod      = "method"
	KeySources     = "sources"
	KeyTargets     = "targets"
	KeyRef         = "ref"
	// KeyDefinition stands for alert.key, key_name and title, which an
	// update never changes.
	KeyDefinition = "definition"
	KeyContext    = "context."
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
// tell which keys are present: an update (as parsed from a script) carries
// only what changed.
type Alert struct {
	ID string
	// Update marks the message of an update; Updated lists the keys it
	// changed (KeyStartTime…, "context.<name>"). The update's message holds
	// the whole alert after the change; its text shows only Updated.
	Update    bool
	Updated   []string
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
	Refs          []string // ids of the alerts this one refers to
	// Definition (ntopng-style) of a raised alert; Key 0 means none.
	Key     int
	KeyName string
	Title   string
	// Context holds alert.context.<name> fields; names are given without
	// the prefix. Nested data (an EVE http object) has dotted names, with
	// 0-based indexes for the elements of arrays of objects:
	// "http.hostname", "dns.answers.0.rrname" (docs/alerts.md).
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
	a.AddFields(m)
}

// AddFields appends a's fields to m, in docs/alerts.md's order.
func (a *Alert) AddFields(m *pipeline.Message) {
	m.AddString(FieldID, a.ID)
	if a.Update {
		m.AddBool(FieldUpdate, true)
		m.AddField(stringsField(FieldUpdated, "", a.Updated)) // even empty: the message holds the whole alert
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
		m.AddField(stringsField(FieldRef, "", a.Refs))
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
	f.Grow(len(vals))
	for _, v := range vals {
		f.Append(pipeline.StringValue(v))
	}
	return f
}

// Apply changes a by the update u: every top-level key u carries replaces
// a's whole (a method with only ref loses its description). It returns the
// keys it replaced, in Keys order.
func (a *Alert) Apply(u *Alert) []string {
	var keys []string
	if u.StartTime != nil {
		v := *u.StartTime
		a.StartTime = &v
		keys = append(keys, KeyStartTime)
	}
	if u.EndTime != nil {
		v := *u.EndTime
		a.EndTime = &v
		keys = append(keys, KeyEndTime)
	}
	if u.Severity != "" {
		a.Severity = u.Severity
		keys = append(keys, KeySeverity)
	}
	if u.ConfidenceNum != nil || u.Confidence != "" {
		a.Confidence, a.ConfidenceNum = u.Confidence, nil
		if u.ConfidenceNum != nil {
			v := *u.ConfidenceNum
			a.ConfidenceNum = &v
		}
		keys = append(keys, KeyConfidence)
	}
	if u.Completion != "" {
		a.Completion = u.Completion
		keys = append(keys, KeyCompletion)
	}
	if u.HasDescription {
		a.Description, a.HasDescription = u.Description, true
		keys = append(keys, KeyDescription)
	}
	if u.Method != nil {
		m := *u.Method
		m.Ref = slices.Clone(m.Ref)
		a.Method = &m
		keys = append(keys, KeyMethod)
	}
	if len(u.Sources) > 0 {
		a.Sources = slices.Clone(u.Sources)
		keys = append(keys, KeySources)
	}
	if len(u.Targets) > 0 {
		a.Targets = slices.Clone(u.Targets)
		keys = append(keys, KeyTargets)
	}
	if len(u.Refs) > 0 {
		a.Refs = slices.Clone(u.Refs)
		keys = append(keys, KeyRef)
	}
	// Context entries: each name's fields replace the old ones together
	// (an http object is replaced whole, not merged key by key).
	var names []string
	for i := range u.Context {
		n := ContextName(u.Context[i].Name)
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) > 0 {
		kept := a.Context[:0:0]
		for _, f := range a.Context {
			if !slices.Contains(names, ContextName(f.Name)) {
				kept = append(kept, f)
			}
		}
		a.Context = append(kept, u.Context...)
		for _, n := range names {
			keys = append(keys, KeyContext+n)
		}
	}
	return keys
}

// ContextName is the entry a context field belongs to: the name before
// its first dot ("http" for "http.hostname").
func ContextName(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}

// TopKey returns the top-level key a field of an alert message belongs to
// (KeyMethod for alert.method.ref, "context.http" for
// alert.context.http.url); "" for alert.id, alert.update and
// alert.updated; the field name itself for a field that is no alert key.
func TopKey(field string) string {
	switch field {
	case FieldID, FieldUpdate, FieldUpdated:
		return ""
	case FieldStartTime:
		return KeyStartTime
	case FieldEndTime:
		return KeyEndTime
	case FieldDescription:
		return KeyDescription
	case FieldSeverity:
		return KeySeverity
	case FieldConfidence:
		return KeyConfidence
	case FieldCompletion:
		return KeyCompletion
	case FieldMethodDescription, FieldMethodRef:
		return KeyMethod
	case FieldSource:
		return KeySources
	case FieldTarget:
		return KeyTargets
	case FieldRef:
		return KeyRef
	case FieldKey, FieldKeyName, FieldTitle:
		return KeyDefinition
	}
	if rest, ok := strings.CutPrefix(field, ContextPrefix); ok {
		n := ContextName(rest)
		// The common case, the whole rest, needs no new string.
		if len(n) == len(rest) {
			return field[len("alert."):]
		}
		return field[len("alert.") : len(ContextPrefix)+len(n)]
	}
	return field
}

// Parse reads the alert m carries (the fields Fill writes; the Payload is
// not read). An integer alert.id or alert.ref, as earlier versions wrote,
// is read as its decimal text.
func Parse(m *pipeline.Message) (*Alert, error) {
	a := &Alert{}
	var errs []error
	bad := func(f *pipeline.Field) {
		errs = append(errs, fmt.Errorf("%s: unexpected type or value count", f.Name))
	}
	for i := range m.Fields {
		f := &m.Fields[i]
		str := func() (string, bool) {
			if f.Len() != 1 || f.HasUnset() || f.Type != pipeline.TypeString {
				bad(f)
				return "", false
			}
			return f.Value(0).Str(), true
		}
		texts := func() []string {
			out := make([]string, 0, f.Len())
			for j := 0; j < f.Len(); j++ {
				if f.Unset(j) {
					continue
				}
				switch f.Type {
				case pipeline.TypeString, pipeline.TypeBytes:
					out = append(out, f.Value(j).Str())
				case pipeline.TypeInteger:
					out = append(out, strconv.FormatInt(f.Value(j).Int(), 10))
				case pipeline.TypeUnsigned:
					out = append(out, strconv.FormatUint(f.Value(j).Uint(), 10))
				default:
					bad(f)
					return nil
				}
			}
			return out
		}
		ns := func() *int64 {
			if f.Len() != 1 || f.HasUnset() || f.Type != pipeline.TypeInteger {
				bad(f)
				return nil
			}
			v := f.Value(0).Int()
			return &v
		}
		switch f.Name {
		case FieldID:
			if t := texts(); len(t) == 1 {
				a.ID = t[0]
			} else {
				bad(f)
			}
		case FieldUpdate:
			a.Update = f.Type == pipeline.TypeBool && f.Len() > 0 && f.Value(0).Bool()
		case FieldUpdated:
			a.Updated = texts()
			if a.Updated == nil {
				a.Updated = []string{}
			}
		case FieldStartTime:
			a.StartTime = ns()
		case FieldEndTime:
			a.EndTime = ns()
		case FieldDescription:
			a.Description, a.HasDescription = str()
		case FieldSeverity:
			a.Severity, _ = str()
		case FieldConfidence:
			if f.Type == pipeline.TypeDouble && f.Len() == 1 && !f.HasUnset() {
				v := f.Value(0).Double()
				a.ConfidenceNum = &v
			} else {
				a.Confidence, _ = str()
			}
		case FieldCompletion:
			a.Completion, _ = str()
		case FieldMethodDescription:
			if a.Method == nil {
				a.Method = &Method{}
			}
			a.Method.Description, a.Method.HasDesc = str()
		case FieldMethodRef:
			if a.Method == nil {
				a.Method = &Method{}
			}
			a.Method.Ref = texts()
		case FieldSource, FieldTarget:
			n := Node{Type: f.Representation(), Values: texts()}
			if f.Name == FieldSource {
				a.Sources = append(a.Sources, n)
			} else {
				a.Targets = append(a.Targets, n)
			}
		case FieldRef:
			a.Refs = append(a.Refs, texts()...)
		case FieldKey:
			if k, ok := m.FieldInt(FieldKey); ok {
				a.Key = int(k)
			} else {
				bad(f)
			}
		case FieldKeyName:
			a.KeyName, _ = str()
		case FieldTitle:
			a.Title, _ = str()
		default:
			if name, ok := strings.CutPrefix(f.Name, ContextPrefix); ok && name != "" {
				g := pipeline.NewField(name, f.Type, f.Representation())
				g.Grow(f.Len())
				for j := 0; j < f.Len(); j++ {
					g.Append(f.Value(j))
				}
				a.Context = append(a.Context, g)
			}
		}
	}
	if a.ID == "" {
		errs = append(errs, errors.New(FieldID+": missing"))
	}
	return a, errors.Join(errs...)
}

// CTime renders t the way C's ctime() does, without the newline, in UTC:
// "Mon Jan 20 17:44:43 2014".
func CTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format("Mon Jan _2 15:04:05 2006")
}

// FormatG renders a number as C's %g does.
func FormatG(f float64) string { return fmt.Sprintf("%.6g", f) }

// Text is Haka's one-line rendering (formats.md §5.2): only present keys,
// in a fixed order, items separated by one space. An update shows the keys
// it changed (Updated), as Haka's alerters print the update they get.
func (a *Alert) Text(now time.Time) string {
	const in = " "
	show := func(key string) bool { return !a.Update || slices.Contains(a.Updated, key) }
	var b strings.Builder
	b.WriteString("alert: ")
	if a.Update {
		b.WriteString("update ")
	}
	b.WriteString("id = ")
	b.WriteString(a.ID)
	b.WriteString(in + "time = " + CTime(now.UnixNano()))
	if a.StartTime != nil && show(KeyStartTime) {
		b.WriteString(in + "start time = " + CTime(*a.StartTime))
	}
	if a.EndTime != nil && show(KeyEndTime) {
		b.WriteString(in + "end time = " + CTime(*a.EndTime))
	}
	if a.Severity != "" && show(KeySeverity) {
		b.WriteString(in + "severity = " + a.Severity)
	}
	if show(KeyConfidence) {
		if a.ConfidenceNum != nil {
			b.WriteString(in + "confidence = " + FormatG(*a.ConfidenceNum))
		} else if a.Confidence != "" {
			b.WriteString(in + "confidence = " + a.Confidence)
		}
	}
	if a.Completion != "" && show(KeyCompletion) {
		b.WriteString(in + "completion = " + a.Completion)
	}
	if a.HasDescription && show(KeyDescription) {
		b.WriteString(in + "description = " + a.Description)
	}
	if a.Method != nil && show(KeyMethod) {
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
	if len(a.Sources) > 0 && show(KeySources) {
		nodes("sources", a.Sources)
	}
	if len(a.Targets) > 0 && show(KeyTargets) {
		nodes("targets", a.Targets)
	}
	if len(a.Refs) > 0 && show(KeyRef) {
		b.WriteString(in + "refs = { " + strings.Join(a.Refs, ", ") + " }")
	}
	return b.String()
}

// Address returns an address node.
func Address(values ...string) Node { return Node{Type: NodeAddress, Values: values} }

// Service returns a service node ("tcp/22", "ssh").
func Service(values ...string) Node { return Node{Type: NodeService, Values: values} }
