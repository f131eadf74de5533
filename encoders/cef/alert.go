package cef

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/ternlog/tern/internal/alertmsg"
	"github.com/ternlog/tern/pipeline"
)

// alert writes a tern.alert message as docs/alerts.md "Rendering" says:
// signature from alert.key_name (else alert.context.signature_id, else
// "tern-alert"), name from alert.title (else alert.description), severity
// high 8 / medium 5 / low or absent 2, and the extensions rt, end,
// src/spt, dst/dpt, proto, app, dhost, requestMethod, request,
// requestClientApplication, cat, msg, cs1Label/cs1 (confidence),
// externalId, act, outcome and, on an update, cs2Label=haka_update
// cs2=<the keys it changed>, each only when known. An update is the whole
// alert, so it keeps the alert's signature and severity.
func (e *Encoder) alert(w *writer, orig *pipeline.Message) error {
	m := e.alerts.Resolve(orig)
	c := &e.cfg
	w.dst = append(w.dst, "CEF:"...)
	w.dst = strconv.AppendInt(w.dst, int64(c.Version), 10)
	w.dst = append(w.dst, '|')
	w.header(c.Vendor)
	w.dst = append(w.dst, '|')
	w.header(c.Product)
	w.dst = append(w.dst, '|')
	w.header(c.DeviceVersion)
	w.dst = append(w.dst, '|')
	sig := "tern-alert"
	if f := field(m, "alert.key_name"); f != nil {
		sig = stringOf(f, sig)
	} else if f := field(m, "alert.context.signature_id"); f != nil {
		sig = stringOf(f, sig)
	}
	w.header(sig)
	w.dst = append(w.dst, '|')
	name := ""
	if f := field(m, "alert.title"); f != nil {
		name = stringOf(f, "")
	} else if f := field(m, "alert.description"); f != nil {
		name = stringOf(f, "")
	}
	w.header(name)
	w.dst = append(w.dst, '|')
	sev := "2"
	if s, _ := m.FieldString("alert.severity"); s == "high" {
		sev = "8"
	} else if s == "medium" {
		sev = "5"
	}
	w.dst = append(w.dst, sev...)
	w.dst = append(w.dst, '|')

	n := 0
	str := func(key, v string) {
		w.pairStart(n, key)
		n++
		w.value(v)
	}
	ms := func(key, name string) {
		if v, ok := m.FieldInt(name); ok {
			w.pairStart(n, key)
			n++
			w.dst = strconv.AppendInt(w.dst, floorDiv(v, 1e6), 10)
		}
	}
	ms("rt", "alert.start_time")
	ms("end", "alert.end_time")
	srcIP, srcProto, srcPort := nodes(m, "alert.source")
	dstIP, dstProto, dstPort := nodes(m, "alert.target")
	if srcIP != "" {
		str("src", srcIP)
	}
	if srcPort != "" {
		str("spt", srcPort)
	}
	if dstIP != "" {
		str("dst", dstIP)
	}
	if dstPort != "" {
		str("dpt", dstPort)
	}
	proto := dstProto
	if proto == "" {
		proto = srcProto
	}
	if p, ok := m.FieldString("alert.context.proto"); ok && p != "" {
		proto = p
	}
	if proto != "" {
		str("proto", strings.ToUpper(proto))
	}
	for _, k := range [...]struct{ key, field string }{
		{"app", "alert.context.app_proto"},
		{"dhost", "alert.context.http.hostname"},
		{"requestMethod", "alert.context.http.http_method"},
		{"request", "alert.context.http.url"},
		{"requestClientApplication", "alert.context.http.http_user_agent"},
	} {
		if s, ok := m.FieldString(k.field); ok {
			str(k.key, s)
		}
	}
	if s, ok := m.FieldString("alert.method.description"); ok {
		str("cat", s)
	}
	if s, ok := m.FieldString("alert.description"); ok {
		str("msg", s)
	}
	if f := field(m, "alert.confidence"); f != nil {
		str("cs1Label", "confidence")
		w.pairStart(n, "cs1")
		n++
		if f.Type == pipeline.TypeString || f.Type == pipeline.TypeBytes {
			w.value(f.Value(0).Str())
		} else {
			w.dst = appendScalar(w.dst, f, f.Value(0))
		}
	}
	if id, ok := alertmsg.ID(m); ok {
		str("externalId", id)
	}
	if s, ok := m.FieldString("alert.context.action"); ok {
		str("act", s)
	}
	if s, ok := m.FieldString("alert.completion"); ok {
		str("outcome", s)
	}
	if alertmsg.IsUpdate(orig) {
		str("cs2Label", "haka_update")
		w.pairStart(n, "cs2")
		n++
		w.value(strings.Join(alertmsg.UpdatedKeys(orig), ","))
	}
	return nil
}

// nodes finds, among the fields named name (one per Haka node), the first
// address node whose first value is an IP literal and the first service
// node ("<proto>/<port>" or "<port>").
func nodes(m *pipeline.Message, name string) (ip, proto, port string) {
	for i := range m.Fields {
		f := &m.Fields[i]
		if f.Name != name || f.Len() == 0 || (f.Type != pipeline.TypeString && f.Type != pipeline.TypeBytes) {
			continue
		}
		v := f.Value(0).Str()
		switch f.Representation() {
		case "address":
			if ip == "" {
				if _, err := netip.ParseAddr(v); err == nil {
					ip = v
				}
			}
		case "service":
			if port == "" {
				if p, q, ok := strings.Cut(v, "/"); ok {
					proto, port = p, q
				} else {
					port = v
				}
			}
		}
	}
	return ip, proto, port
}
