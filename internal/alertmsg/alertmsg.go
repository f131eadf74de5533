// Package alertmsg reads tern's alert messages (docs/alerts.md) for the
// encoders that render them: the endpoints Haka's address and service nodes
// name, and the stored alert an update applies to. The field names are
// internal/alert's. It knows no plugin.
package alertmsg

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/pipeline"
)

// Endpoint is one side of an alert: the first address node whose first
// value is an IP literal, and the first service node's port and protocol.
type Endpoint struct {
	IP      string // canonical text; empty when unknown
	Port    int64
	HasPort bool
	Proto   string // as the service node wrote it ("tcp"), may be empty
}

// EndpointOf reads the nodes of field name (alert.FieldSource or
// alert.FieldTarget) of m.
func EndpointOf(m *pipeline.Message, name string) Endpoint {
	var e Endpoint
	haveIP, haveSvc := false, false
	for i := range m.Fields {
		f := &m.Fields[i]
		if f.Name != name || f.Len() == 0 || f.Type != pipeline.TypeString {
			continue
		}
		first := f.Value(0).Str()
		switch f.Representation() {
		case "address":
			if haveIP {
				continue
			}
			if a, err := netip.ParseAddr(first); err == nil {
				e.IP, haveIP = a.Unmap().String(), true
			}
		case "service":
			if haveSvc {
				continue
			}
			proto, port, ok := ParseService(first)
			if ok {
				e.Proto, e.Port, e.HasPort, haveSvc = proto, port, true, true
			}
		}
	}
	return e
}

// ParseService reads a service node's first value, "<proto>/<port>" or
// "<port>".
func ParseService(s string) (proto string, port int64, ok bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		proto, s = s[:i], s[i+1:]
	}
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return "", 0, false
	}
	return proto, int64(p), true
}

// Proto is the alert's transport: the context's, else a target service's,
// else a source service's; empty when unknown.
func Proto(m *pipeline.Message, src, dst Endpoint) string {
	if p, ok := m.FieldString(alert.ContextPrefix + "proto"); ok && p != "" {
		return p
	}
	if dst.Proto != "" {
		return dst.Proto
	}
	return src.Proto
}

// Store remembers alerts so that an update that carries only the changed
// keys (as producers before alert.updated existed sent them) can be
// rendered as the whole alert. Updates with alert.updated hold the whole
// alert already. It keeps at most max alerts, forgetting the oldest first,
// and copies what it keeps so that no batch memory stays pinned. It is not
// safe for concurrent use (encoders are used by one goroutine at a time).
type Store struct {
	max   int
	byKey map[storeKey][]pipeline.Field
	order []storeKey // insertion order, a ring
	next  int
	merge pipeline.Message
	keys  []string
}

// storeKey names an alert: its id, and for the integer ids of earlier
// versions, which counted per filter instance, the Logger too.
type storeKey struct {
	logger string
	id     string
}

// NewStore returns a store of at most max alerts (max <= 0 keeps none).
func NewStore(max int) *Store {
	return &Store{max: max, byKey: map[storeKey][]pipeline.Field{}}
}

// ID returns the text of m's alert.id: a string, or the decimal form of
// an integer id.
func ID(m *pipeline.Message) (string, bool) {
	f := m.FirstField(alert.FieldID)
	if f == nil || f.Len() == 0 || f.HasUnset() {
		return "", false
	}
	switch f.Type {
	case pipeline.TypeString:
		return f.Value(0).Str(), true
	case pipeline.TypeInteger:
		return strconv.FormatInt(f.Value(0).Int(), 10), true
	}
	return "", false
}

// IsUpdate reports whether m is an alert update.
func IsUpdate(m *pipeline.Message) bool {
	f := m.FirstField(alert.FieldUpdate)
	return f != nil && f.Len() > 0 && f.Type == pipeline.TypeBool && f.Value(0).Bool()
}

// UpdatedKeys returns the keys update m changed: its alert.updated, or
// for an update of the older kind, the top-level keys it carries.
func UpdatedKeys(m *pipeline.Message) []string {
	var keys []string
	if f := m.FirstField(alert.FieldUpdated); f != nil {
		for j := 0; j < f.Len(); j++ {
			if !f.Unset(j) && f.Type == pipeline.TypeString {
				keys = append(keys, f.Value(j).Str())
			}
		}
		return keys
	}
	for i := range m.Fields {
		if k := alert.TopKey(m.Fields[i].Name); k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

func key(m *pipeline.Message) (storeKey, bool) {
	f := m.FirstField(alert.FieldID)
	id, ok := ID(m)
	if !ok {
		return storeKey{}, false
	}
	if f.Type == pipeline.TypeInteger {
		return storeKey{m.Logger, id}, true
	}
	return storeKey{id: id}, true
}

// Resolve returns what to render for alert m: m itself for a new alert or
// a whole update (with alert.updated), which it remembers; for an update
// of the older kind, the remembered alert with every top-level key the
// update carries replaced whole (alert.TopKey: a method with only ref
// loses its description), plus the update's alert.update flag. The result
// is valid until the next call.
func (s *Store) Resolve(m *pipeline.Message) *pipeline.Message {
	if s.max <= 0 {
		return m
	}
	k, ok := key(m)
	if !ok {
		return m
	}
	if !IsUpdate(m) || m.FirstField(alert.FieldUpdated) != nil {
		s.remember(k, m.Fields)
		return m
	}
	stored, ok := s.byKey[k]
	if !ok {
		return m
	}
	keys := s.keys[:0]
	for i := range m.Fields {
		if tk := alert.TopKey(m.Fields[i].Name); tk != "" {
			keys = append(keys, tk)
		}
	}
	s.keys = keys
	mg := &s.merge
	fields := mg.Fields[:0]
	*mg = *m
	for _, f := range m.Fields {
		if alert.TopKey(f.Name) == "" {
			fields = append(fields, f) // id and update flag first
		}
	}
	for _, f := range stored {
		if tk := alert.TopKey(f.Name); tk != "" && !slices.Contains(keys, tk) {
			fields = append(fields, f)
		}
	}
	for _, f := range m.Fields {
		if alert.TopKey(f.Name) != "" {
			fields = append(fields, f)
		}
	}
	mg.Fields = fields
	// The merged alert is what later updates apply to.
	s.remember(k, fields)
	return mg
}

func (s *Store) remember(k storeKey, fields []pipeline.Field) {
	// One buffer holds every string of the copy: two allocations per
	// alert (plus one per multi-valued field) instead of one per string.
	size := 0
	for i := range fields {
		f := &fields[i]
		size += len(f.Name) + len(f.Representation())
		if f.Type == pipeline.TypeString || f.Type == pipeline.TypeBytes {
			for j := 0; j < f.Len(); j++ {
				size += len(f.Value(j).Str())
			}
		}
	}
	buf := make([]byte, 0, size)
	clone := func(s string) string {
		if s == "" {
			return ""
		}
		start := len(buf)
		buf = append(buf, s...)
		return unsafe.String(&buf[start], len(s))
	}
	cp := make([]pipeline.Field, 0, len(fields))
	for i := range fields {
		f := &fields[i]
		if f.Name == alert.FieldUpdate || f.Name == alert.FieldUpdated {
			continue
		}
		g := pipeline.Field{Name: clone(f.Name), Type: f.Type}
		g.SetRepresentation(clone(f.Representation()))
		for j := 0; j < f.Len(); j++ {
			v := f.Value(j)
			if f.Type == pipeline.TypeString || f.Type == pipeline.TypeBytes {
				v = pipeline.StringValue(clone(v.Str()))
			}
			g.Append(v)
		}
		cp = append(cp, g)
	}
	if _, ok := s.byKey[k]; !ok {
		k.logger, k.id = strings.Clone(k.logger), strings.Clone(k.id)
		if len(s.order) < s.max {
			s.order = append(s.order, k)
		} else {
			delete(s.byKey, s.order[s.next])
			s.order[s.next] = k
			s.next = (s.next + 1) % s.max
		}
	}
	s.byKey[k] = cp
}
