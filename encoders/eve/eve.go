// Package eve is the encoder that writes Suricata's EVE JSON: tern alerts
// as EVE alert records (formats.md §3.6), other messages as EVE events
// whose known keys come from fields of the same name.
package eve

import (
	"crypto/sha1"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"unsafe"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/internal/alertmsg"
	"github.com/ternlog/tern/internal/jsonx"
	"github.com/ternlog/tern/internal/rfc3339"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
)

//go:embed sample.toml
var sample string

// Type selects this encoder.
const Type = "eve"

// Config is the [encoders.<name>] table with type = "eve".
type Config struct {
	// EventTypeField names the field whose value is event_type for
	// messages that are not alerts; "Type" (the default) uses the message
	// Type. Alerts are always "alert".
	EventTypeField string `toml:"event_type_field"`
	// ExtraKey is the key of the object that holds the fields that are not
	// EVE keys; empty: the event_type (Suricata's own layout: an http event
	// keeps its data under "http").
	ExtraKey string `toml:"extra_key"`
	// CommunityID adds community_id (Community ID v1) to events whose
	// addresses and protocol are known, with the ports for TCP, UDP and
	// SCTP, icmp_type and icmp_code for ICMP and ICMPv6; to alerts for TCP,
	// UDP and SCTP services.
	CommunityID bool `toml:"community_id"`
	// CommunityIDSeed is the Community ID seed (0..65535).
	CommunityIDSeed int `toml:"community_id_seed"`
	// Payload writes payload (base64) from the "payload" field, or from
	// alert.context.payload on alerts.
	Payload bool `toml:"payload"`
	// PayloadPrintable writes payload_printable: printable ASCII kept, other
	// bytes as '.'.
	PayloadPrintable bool `toml:"payload_printable"`
	// Packet writes packet (base64) and packet_info from the "packet" field,
	// or alert.context.packet on alerts.
	Packet bool `toml:"packet"`
	// PacketLinktype is packet_info.linktype (a DLT number; 1 is Ethernet).
	PacketLinktype int `toml:"packet_linktype"`
	// AlertCache is how many alerts are remembered so that an alert update
	// is written as the whole updated alert.
	AlertCache int `toml:"alert_cache"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{EventTypeField: "Type", PacketLinktype: 1, AlertCache: 10000}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.EventTypeField == "" {
		errs = append(errs, errors.New(`event_type_field: required ("Type" or a field name)`))
	}
	if c.CommunityIDSeed < 0 || c.CommunityIDSeed > math.MaxUint16 {
		errs = append(errs, errors.New("community_id_seed: must be 0..65535"))
	}
	if c.PacketLinktype < 0 {
		errs = append(errs, errors.New("packet_linktype: must not be negative"))
	}
	if c.AlertCache < 0 {
		errs = append(errs, errors.New("alert_cache: must not be negative"))
	}
	return errors.Join(errs...)
}

// The EVE keys taken from fields of the same name, in Suricata's order.
const (
	kFlowID = iota
	kParentID
	kSensorID
	kInIface
	kPcapCnt
	kVlan
	kSrcIP
	kSrcPort
	kDestIP
	kDestPort
	kProto
	kIPv
	kICMPType
	kICMPCode
	kPktSrc
	kCommunityID
	kHost
	kTxID
	kTxGuessed
	kAppProto
	kDirection
	nKeys
)

var keyNames = [nKeys]string{
	"flow_id", "parent_id", "sensor_id", "in_iface", "pcap_cnt", "vlan", "src_ip", "src_port",
	"dest_ip", "dest_port", "proto", "ip_v", "icmp_type", "icmp_code", "pkt_src", "community_id",
	"host", "tx_id", "tx_guessed", "app_proto", "direction",
}

// keyTypes is the field type each key needs; other types go to the extra
// object so the record keeps the schema's types.
var keyTypes = [nKeys]pipeline.ValueType{
	pipeline.TypeInteger, pipeline.TypeInteger, pipeline.TypeInteger, pipeline.TypeString, pipeline.TypeInteger,
	pipeline.TypeInteger, pipeline.TypeString, pipeline.TypeInteger, pipeline.TypeString, pipeline.TypeInteger,
	pipeline.TypeString, pipeline.TypeInteger, pipeline.TypeInteger, pipeline.TypeInteger, pipeline.TypeString,
	pipeline.TypeString, pipeline.TypeString, pipeline.TypeInteger, pipeline.TypeBool, pipeline.TypeString,
	pipeline.TypeString,
}

// fits reports whether field f can fill a key of type t: an unsigned field
// (a Zeek count) fills an integer key, as Suricata's counters are unsigned.
func fits(f *pipeline.Field, t pipeline.ValueType) bool {
	if f.HasUnset() {
		return false
	}
	return f.Type == t || t == pipeline.TypeInteger && f.Type == pipeline.TypeUnsigned
}

func keyIndex(name string) int {
	switch name {
	case "flow_id":
		return kFlowID
	case "parent_id":
		return kParentID
	case "sensor_id":
		return kSensorID
	case "in_iface":
		return kInIface
	case "pcap_cnt":
		return kPcapCnt
	case "vlan":
		return kVlan
	case "src_ip":
		return kSrcIP
	case "src_port":
		return kSrcPort
	case "dest_ip":
		return kDestIP
	case "dest_port":
		return kDestPort
	case "proto":
		return kProto
	case "ip_v":
		return kIPv
	case "icmp_type":
		return kICMPType
	case "icmp_code":
		return kICMPCode
	case "pkt_src":
		return kPktSrc
	case "community_id":
		return kCommunityID
	case "host":
		return kHost
	case "tx_id":
		return kTxID
	case "tx_guessed":
		return kTxGuessed
	case "app_proto":
		return kAppProto
	case "direction":
		return kDirection
	}
	return -1
}

// Encoder writes EVE JSON records.
type Encoder struct {
	cfg      Config
	seed     uint16
	alerts   *alertmsg.Store
	replaced func(float64, ...string)
	slots    [nKeys]int
	extra    []int
	// an alert's context: protocol objects, and the rest (alert.context)
	objs, rest tree
	objIdx     []int
	group      []int
	buf        []byte
}

var _ pipeline.Encoder = (*Encoder)(nil)

// New returns an EVE encoder.
func New(set pipeline.Settings, cfg Config) (*Encoder, error) {
	e := &Encoder{cfg: cfg, seed: uint16(cfg.CommunityIDSeed), alerts: alertmsg.NewStore(cfg.AlertCache)}
	if set.Telemetry != nil {
		e.replaced = set.Telemetry.Counter("utf8_replaced_total", "Invalid UTF-8 bytes replaced with U+FFFD.")
	}
	return e, nil
}

// Factory registers the encoder.
func Factory() pipeline.Factory[pipeline.Encoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Encoder, error) {
		return New(s, c)
	}).WithSummary("Suricata EVE JSON")
}

func (e *Encoder) Encode(dst []byte, m *pipeline.Message) ([]byte, error) {
	var replaced int
	if m.Type == alert.Type {
		dst, replaced = e.encodeAlert(dst, m)
	} else {
		dst, replaced = e.encodeEvent(dst, m)
	}
	if replaced > 0 && e.replaced != nil {
		e.replaced(float64(replaced))
	}
	return dst, nil
}

// appendTimestamp writes ns as Suricata does, in UTC:
// 2017-04-07T22:24:37.251547+0000 (sub-microsecond digits truncated).
func appendTimestamp(dst []byte, ns int64) []byte {
	dst = append(dst, `"timestamp":"`...)
	dst = rfc3339.Append(dst, ns, 6)
	dst = dst[:len(dst)-1] // 'Z'
	return append(dst, `+0000"`...)
}

func (e *Encoder) encodeEvent(dst []byte, m *pipeline.Message) ([]byte, int) {
	replaced := 0
	str := func(s string) {
		var n int
		dst, n = jsonx.AppendString(dst, s)
		replaced += n
	}
	for i := range e.slots {
		e.slots[i] = -1
	}
	e.extra = e.extra[:0]
	payload, packet := -1, -1
	eventType, haveType := m.Type, e.cfg.EventTypeField == "Type"
	for i := range m.Fields {
		f := &m.Fields[i]
		if !haveType && f.Name == e.cfg.EventTypeField && f.Len() > 0 && f.Type == pipeline.TypeString {
			eventType, haveType = f.Value(0).Str(), true
			continue
		}
		switch f.Name {
		case "payload":
			if payload < 0 {
				payload = i
			}
			continue
		case "packet":
			if packet < 0 {
				packet = i
			}
			continue
		}
		k := keyIndex(f.Name)
		if k >= 0 && e.slots[k] < 0 && fits(f, keyTypes[k]) && (f.Len() == 1 || k == kVlan) {
			e.slots[k] = i
			continue
		}
		e.extra = append(e.extra, i)
	}
	if eventType == "" {
		eventType = "tern"
	}
	dst = append(dst, '{')
	dst = appendTimestamp(dst, m.Timestamp)
	for k := 0; k < nKeys; k++ {
		if k == kVlan {
			// event_type comes between pcap_cnt and vlan.
			dst = append(dst, `,"event_type":`...)
			str(eventType)
		}
		i := e.slots[k]
		if i < 0 {
			if k == kCommunityID && e.cfg.CommunityID {
				dst = e.communityIDFromFields(dst, m)
			}
			continue
		}
		dst = appendKey(dst, k, &m.Fields[i], &replaced)
	}
	if len(e.extra) > 0 {
		key := e.cfg.ExtraKey
		if key == "" {
			key = eventType
		}
		dst = append(dst, ',')
		str(key)
		dst = append(dst, ':', '{')
		var n int
		dst, n = appendExtra(dst, m, e.extra, key+".")
		replaced += n
		dst = append(dst, '}')
	}
	dst = e.appendPayload(dst, m, payload, packet)
	return append(dst, '}'), replaced
}

// appendKey writes ,"<key k>":<value of f>.
func appendKey(dst []byte, k int, f *pipeline.Field, replaced *int) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, keyNames[k]...)
	dst = append(dst, '"', ':')
	switch {
	case k == kVlan:
		dst = append(dst, '[')
		for j := 0; j < f.Len(); j++ {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = appendText(dst, f, j)
		}
		dst = append(dst, ']')
	case f.Type == pipeline.TypeInteger:
		dst = strconv.AppendInt(dst, f.Value(0).Int(), 10)
	case f.Type == pipeline.TypeUnsigned:
		dst = strconv.AppendUint(dst, f.Value(0).Uint(), 10)
	case f.Type == pipeline.TypeBool:
		dst = strconv.AppendBool(dst, f.Value(0).Bool())
	default:
		var n int
		dst, n = jsonx.AppendString(dst, f.Value(0).Str())
		*replaced += n
	}
	return dst
}

// appendExtra writes fields idx of m as object members; a name repeated by
// several fields gets one array of all their values.
func appendExtra(dst []byte, m *pipeline.Message, idx []int, strip string) ([]byte, int) {
	replaced := 0
	first := true
	for a, i := range idx {
		f := &m.Fields[i]
		dup := false
		for _, j := range idx[:a] {
			if m.Fields[j].Name == f.Name {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		total := f.Len()
		for _, j := range idx[a+1:] {
			if m.Fields[j].Name == f.Name {
				total += m.Fields[j].Len() + 2 // never 1: an array
			}
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		name, _ := strings.CutPrefix(f.Name, strip)
		var n int
		dst, n = jsonx.AppendString(dst, name)
		replaced += n
		dst = append(dst, ':')
		if total != 1 {
			dst = append(dst, '[')
		}
		k := 0
		for _, j := range idx[a:] {
			g := &m.Fields[j]
			if g.Name != f.Name {
				continue
			}
			for v := 0; v < g.Len(); v++ {
				if k > 0 {
					dst = append(dst, ',')
				}
				k++
				dst, n = codec.AppendJSONValue(dst, g.Type, g.Value(v))
				replaced += n
			}
		}
		if total != 1 {
			dst = append(dst, ']')
		}
	}
	return dst, replaced
}

// appendPayload writes payload, payload_printable, packet and packet_info
// from fields pi and ki (-1: none) when the options ask for them.
func (e *Encoder) appendPayload(dst []byte, m *pipeline.Message, pi, ki int) []byte {
	if pi >= 0 && (e.cfg.Payload || e.cfg.PayloadPrintable) {
		f := &m.Fields[pi]
		if f.Len() > 0 && (f.Type == pipeline.TypeBytes || f.Type == pipeline.TypeString) {
			p := f.Value(0).Bytes()
			if e.cfg.Payload {
				dst = append(dst, `,"payload":"`...)
				dst = base64.StdEncoding.AppendEncode(dst, p)
				dst = append(dst, '"')
			}
			if e.cfg.PayloadPrintable {
				dst = append(dst, `,"payload_printable":`...)
				dst = appendPrintable(dst, p)
			}
		}
	}
	if ki >= 0 && e.cfg.Packet {
		f := &m.Fields[ki]
		if f.Len() > 0 && (f.Type == pipeline.TypeBytes || f.Type == pipeline.TypeString) {
			dst = append(dst, `,"packet":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, f.Value(0).Bytes())
			dst = append(dst, `","packet_info":{"linktype":`...)
			dst = strconv.AppendInt(dst, int64(e.cfg.PacketLinktype), 10)
			dst = append(dst, '}')
		}
	}
	return dst
}

// appendPrintable writes Suricata's payload_printable: printable ASCII as
// it is (JSON-escaped), CR and LF as \r and \n, every other byte as '.'.
func appendPrintable(dst []byte, p []byte) []byte {
	dst = append(dst, '"')
	for _, c := range p {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c >= 0x20 && c < 0x7f:
			dst = append(dst, c)
		default:
			dst = append(dst, '.')
		}
	}
	return append(dst, '"')
}

func (e *Encoder) communityIDFromFields(dst []byte, m *pipeline.Message) []byte {
	get := func(k int) *pipeline.Field {
		if i := e.slots[k]; i >= 0 {
			return &m.Fields[i]
		}
		return nil
	}
	src, dstIP, proto := get(kSrcIP), get(kDestIP), get(kProto)
	if src == nil || dstIP == nil || proto == nil {
		return dst
	}
	pn, ok := protoNumber(proto.Value(0).Str())
	if !ok {
		return dst
	}
	var sp, dp *pipeline.Field
	switch pn {
	case protoTCP, protoUDP, protoSCTP:
		sp, dp = get(kSrcPort), get(kDestPort)
	case protoICMP, protoICMPv6:
		sp, dp = get(kICMPType), get(kICMPCode)
	}
	var a, b int64
	if sp != nil && dp != nil {
		a, b = sp.Value(0).Int(), dp.Value(0).Int()
	} else if hasPorts(pn) {
		return dst
	}
	return appendCommunityID(dst, e.seed, src.Value(0).Str(), dstIP.Value(0).Str(), pn, a, b)
}

// appendCommunityID writes ,"community_id":"1:…" (Community ID v1), or
// nothing when the tuple does not allow one.
func appendCommunityID(dst []byte, seed uint16, srcIP, dstIP string, proto uint8, sport, dport int64) []byte {
	id, ok := communityID(seed, srcIP, dstIP, proto, sport, dport)
	if !ok {
		return dst
	}
	dst = append(dst, `,"community_id":"`...)
	dst = append(dst, id[:]...)
	return append(dst, '"')
}

// IP protocol numbers with a Community ID rule of their own.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
)

// protoNumber reads an EVE proto: Suricata's names for the protocols with
// ports or ICMP types, else the protocol number in decimal (what Suricata
// writes for the others).
func protoNumber(proto string) (uint8, bool) {
	switch {
	case strings.EqualFold(proto, "tcp"):
		return protoTCP, true
	case strings.EqualFold(proto, "udp"):
		return protoUDP, true
	case strings.EqualFold(proto, "sctp"):
		return protoSCTP, true
	case strings.EqualFold(proto, "icmp"):
		return protoICMP, true
	case strings.EqualFold(proto, "ipv6-icmp"), strings.EqualFold(proto, "icmpv6"), strings.EqualFold(proto, "icmp6"):
		return protoICMPv6, true
	}
	n, err := strconv.ParseUint(proto, 10, 8)
	return uint8(n), err == nil
}

func hasPorts(proto uint8) bool {
	switch proto {
	case protoTCP, protoUDP, protoSCTP, protoICMP, protoICMPv6:
		return true
	}
	return false
}

// icmpCounterpart maps an ICMP (v4) type to the type of its answer, the
// pseudo-port pairs of Zeek's ICMP4_counterpart that Community ID uses.
// Types not listed (errors, router advertisements) are one-way.
func icmpCounterpart(v6 bool, typ uint16) (uint16, bool) {
	if !v6 {
		switch typ {
		case 8, 0: // echo, echo reply
			return 8 - typ, true
		case 13, 14: // timestamp
			return 27 - typ, true
		case 15, 16: // information
			return 31 - typ, true
		case 17, 18: // address mask
			return 35 - typ, true
		case 10: // router solicitation; advertisements go unasked
			return 9, true
		}
		return 0, false
	}
	switch typ {
	case 128, 129: // echo
		return 257 - typ, true
	case 133, 134: // router solicitation, advertisement
		return 267 - typ, true
	case 135, 136: // neighbor solicitation, advertisement
		return 271 - typ, true
	case 130, 131: // multicast listener query, report
		return 261 - typ, true
	case 139, 140: // node information query, reply
		return 279 - typ, true
	case 144, 145: // home agent address discovery
		return 289 - typ, true
	}
	return 0, false
}

// CommunityID computes the Community ID v1 of a flow (formats.md §3.5):
// "1:" and the base64 SHA-1 of seed, the ordered endpoints, the protocol
// and the ports. proto is tcp, udp, sctp, icmp, ipv6-icmp or a protocol
// number. For TCP, UDP and SCTP sport and dport are the ports; for ICMP
// and ICMPv6 they are the type and code, mapped to pseudo-ports as Zeek
// does; other protocols hash no ports. ok is false for an unknown
// protocol, bad addresses, or ports out of range.
func CommunityID(seed uint16, srcIP, dstIP, proto string, sport, dport int64) (id [30]byte, ok bool) {
	pn, ok := protoNumber(proto)
	if !ok {
		return id, false
	}
	return communityID(seed, srcIP, dstIP, pn, sport, dport)
}

func communityID(seed uint16, srcIP, dstIP string, proto uint8, sport, dport int64) (id [30]byte, ok bool) {
	a, err1 := netip.ParseAddr(srcIP)
	b, err2 := netip.ParseAddr(dstIP)
	if err1 != nil || err2 != nil {
		return id, false
	}
	a, b = a.Unmap(), b.Unmap()
	if a.Is4() != b.Is4() {
		return id, false
	}
	ports := hasPorts(proto)
	var pa, pb uint16
	oneWay := false
	if ports {
		if sport < 0 || sport > 65535 || dport < 0 || dport > 65535 {
			return id, false
		}
		pa, pb = uint16(sport), uint16(dport)
		if proto == protoICMP || proto == protoICMPv6 {
			if proto == protoICMP != a.Is4() || pa > 255 || pb > 255 {
				return id, false // ICMP over IPv6 or ICMPv6 over IPv4; types are bytes
			}
			if c, twoWay := icmpCounterpart(proto == protoICMPv6, pa); twoWay {
				pb = c
			} else {
				oneWay = true // (type, code) as sent, never reordered
			}
		}
	}
	if c := a.Compare(b); !oneWay && (c > 0 || c == 0 && pa > pb) {
		a, b, pa, pb = b, a, pb, pa
	}
	var buf [2 + 16 + 16 + 2 + 4]byte
	binary.BigEndian.PutUint16(buf[0:], seed)
	n := 2
	if a.Is4() {
		a4, b4 := a.As4(), b.As4()
		n += copy(buf[n:], a4[:])
		n += copy(buf[n:], b4[:])
	} else {
		a16, b16 := a.As16(), b.As16()
		n += copy(buf[n:], a16[:])
		n += copy(buf[n:], b16[:])
	}
	buf[n], buf[n+1] = proto, 0
	n += 2
	if ports {
		binary.BigEndian.PutUint16(buf[n:], pa)
		binary.BigEndian.PutUint16(buf[n+2:], pb)
		n += 4
	}
	sum := sha1.Sum(buf[:n])
	id[0], id[1] = '1', ':'
	base64.StdEncoding.Encode(id[2:], sum[:])
	return id, true
}

// alertSlot reports whether context key k becomes that EVE key on an
// alert: the endpoints come from the alert's nodes and proto has its own
// rule (alertmsg.Proto).
func alertSlot(k int) bool {
	switch k {
	case kSrcIP, kSrcPort, kDestIP, kDestPort, kProto:
		return false
	}
	return true
}

// encodeAlert writes a tern alert as an EVE alert record (formats.md §3.6,
// docs/alerts.md "Rendering").
func (e *Encoder) encodeAlert(dst []byte, orig *pipeline.Message) ([]byte, int) {
	m := e.alerts.Resolve(orig)
	replaced := 0
	str := func(s string) {
		var n int
		dst, n = jsonx.AppendString(dst, s)
		replaced += n
	}
	ts := m.Timestamp
	if v, ok := m.FieldInt(alert.FieldStartTime); ok {
		ts = v
	}
	src := alertmsg.EndpointOf(m, alert.FieldSource)
	tgt := alertmsg.EndpointOf(m, alert.FieldTarget)
	proto := strings.ToUpper(alertmsg.Proto(m, src, tgt))

	// The context: EVE keys, alert keys, payload and packet, protocol
	// objects that fit the schema; the rest goes to alert.context.
	for i := range e.slots {
		e.slots[i] = -1
	}
	action, gid, sid, rev, xff, pi, ki := -1, -1, -1, -1, -1, -1, -1
	e.rest.reset()
	e.objs.reset()
	e.objIdx = e.objIdx[:0]
	for i := range m.Fields {
		f := &m.Fields[i]
		name, ok := strings.CutPrefix(f.Name, alert.ContextPrefix)
		if !ok || name == "" {
			continue
		}
		one := f.Len() == 1 && !f.HasUnset()
		isStr := one && f.Type == pipeline.TypeString
		isInt := one && (f.Type == pipeline.TypeInteger || f.Type == pipeline.TypeUnsigned && f.Value(0).Uint() <= math.MaxInt64)
		taken := true
		switch {
		case name == "action" && isStr && action < 0:
			action = i
		case name == "gid" && isInt && gid < 0:
			gid = i
		case name == "signature_id" && isInt && sid < 0:
			sid = i
		case name == "rev" && isInt && rev < 0:
			rev = i
		case name == "xff" && isStr && xff < 0:
			xff = i
		case name == "proto" && isStr:
			// alertmsg.Proto read it
		case name == "payload" && one && (f.Type == pipeline.TypeBytes || f.Type == pipeline.TypeString):
			if pi < 0 {
				pi = i
			}
		case name == "packet" && one && (f.Type == pipeline.TypeBytes || f.Type == pipeline.TypeString):
			if ki < 0 {
				ki = i
			}
		default:
			taken = false
		}
		if taken {
			continue
		}
		if k := keyIndex(name); k >= 0 && alertSlot(k) && e.slots[k] < 0 && fits(f, keyTypes[k]) && (f.Len() == 1 || k == kVlan && f.Len() > 0) {
			e.slots[k] = i
			continue
		}
		if alert.IsEVEObject(alert.ContextName(name)) {
			e.objIdx = append(e.objIdx, i)
			continue
		}
		e.rest.add(f, name, false)
	}
	e.sortObjects(m)

	dst = append(dst, '{')
	dst = appendTimestamp(dst, ts)
	for k := 0; k < nKeys; k++ {
		switch k {
		case kVlan:
			dst = append(dst, `,"event_type":"alert"`...)
		case kSrcIP:
			if src.IP != "" {
				dst = append(dst, `,"src_ip":`...)
				str(src.IP)
			}
			continue
		case kSrcPort:
			if src.HasPort {
				dst = append(dst, `,"src_port":`...)
				dst = strconv.AppendInt(dst, src.Port, 10)
			}
			continue
		case kDestIP:
			if tgt.IP != "" {
				dst = append(dst, `,"dest_ip":`...)
				str(tgt.IP)
			}
			continue
		case kDestPort:
			if tgt.HasPort {
				dst = append(dst, `,"dest_port":`...)
				dst = strconv.AppendInt(dst, tgt.Port, 10)
			}
			continue
		case kProto:
			if proto != "" {
				dst = append(dst, `,"proto":`...)
				str(proto)
			}
			continue
		}
		if i := e.slots[k]; i >= 0 {
			dst = appendKey(dst, k, &m.Fields[i], &replaced)
		} else if k == kCommunityID && e.cfg.CommunityID && src.HasPort && tgt.HasPort {
			// Alert services carry ports only (formats.md §3.6): TCP, UDP, SCTP.
			if pn, ok := protoNumber(proto); ok && (pn == protoTCP || pn == protoUDP || pn == protoSCTP) {
				dst = appendCommunityID(dst, e.seed, src.IP, tgt.IP, pn, src.Port, tgt.Port)
			}
		}
	}

	dst = append(dst, `,"alert":{"action":`...)
	if action >= 0 {
		str(m.Fields[action].Value(0).Str())
	} else {
		dst = append(dst, `"allowed"`...)
	}
	intKey := func(name string, i int, def int64) {
		dst = append(dst, ',', '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
		if i >= 0 {
			def = m.Fields[i].Value(0).Int()
		}
		dst = strconv.AppendInt(dst, def, 10)
	}
	intKey("gid", gid, 1)
	// A defined alert's signature is its definition's key (formats.md §6:
	// keys never change), unless the context names a rule.
	key, _ := m.FieldInt(alert.FieldKey)
	intKey("signature_id", sid, key)
	intKey("rev", rev, 0)
	sig, _ := m.FieldString(alert.FieldDescription)
	dst = append(dst, `,"signature":`...)
	str(sig)
	cat, _ := m.FieldString(alert.FieldMethodDescription)
	dst = append(dst, `,"category":`...)
	str(cat)
	sev := byte('3')
	switch s, _ := m.FieldString(alert.FieldSeverity); s {
	case "high":
		sev = '1'
	case "medium":
		sev = '2'
	}
	dst = append(dst, `,"severity":`...)
	dst = append(dst, sev)
	for _, side := range [...]struct {
		key string
		ep  alertmsg.Endpoint
	}{{"source", src}, {"target", tgt}} {
		if side.ep.IP == "" {
			continue
		}
		dst = append(dst, ',', '"')
		dst = append(dst, side.key...)
		dst = append(dst, `":{"ip":`...)
		str(side.ep.IP)
		if side.ep.HasPort {
			dst = append(dst, `,"port":`...)
			dst = strconv.AppendInt(dst, side.ep.Port, 10)
		}
		dst = append(dst, '}')
	}
	if f := m.FirstField(alert.FieldMethodRef); f != nil && f.Len() > 0 {
		dst = append(dst, `,"references":[`...)
		for j := 0; j < f.Len(); j++ {
			if j > 0 {
				dst = append(dst, ',')
			}
			str(fieldText(f, j))
		}
		dst = append(dst, ']')
	}
	first := true
	meta := func(key string) {
		if first {
			dst = append(dst, `,"metadata":{`...)
		} else {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, key...)
		dst = append(dst, `":[`...)
	}
	if id, ok := alertmsg.ID(m); ok {
		meta("haka_alert_id")
		str(id)
		dst = append(dst, ']')
	}
	if alertmsg.IsUpdate(orig) {
		// An update is the whole alert again (formats.md §3.6); this says
		// it is one, and which keys changed.
		meta("haka_update")
		dst = e.appendUpdated(dst, orig, &replaced)
		dst = append(dst, ']')
	}
	if f := m.FirstField(alert.FieldConfidence); f != nil && f.Len() > 0 {
		meta("confidence")
		str(fieldText(f, 0))
		dst = append(dst, ']')
	}
	if v, ok := m.FieldString(alert.FieldCompletion); ok {
		meta("completion")
		str(v)
		dst = append(dst, ']')
	}
	if v, ok := m.FieldInt(alert.FieldEndTime); ok {
		meta("end_time")
		dst = append(dst, '"')
		dst = rfc3339.Append(dst, v, 6)
		dst = append(dst[:len(dst)-1], `+0000"]`...)
	}
	for _, side := range [...]struct{ key, field string }{{"sources", alert.FieldSource}, {"targets", alert.FieldTarget}} {
		n := 0
		for i := range m.Fields {
			f := &m.Fields[i]
			if f.Name != side.field {
				continue
			}
			if n == 0 {
				meta(side.key)
			} else {
				dst = append(dst, ',')
			}
			n++
			dst = appendNode(dst, f, &replaced)
		}
		if n > 0 {
			dst = append(dst, ']')
		}
	}
	if f := m.FirstField(alert.FieldRef); f != nil && f.Len() > 0 {
		meta("refs")
		for j := 0; j < f.Len(); j++ {
			if j > 0 {
				dst = append(dst, ',')
			}
			str(fieldText(f, j))
		}
		dst = append(dst, ']')
	}
	if !first {
		dst = append(dst, '}')
	}
	if len(e.rest.leaves) > 0 {
		dst = append(dst, `,"context":{`...)
		dst = e.rest.appendMembers(dst, &replaced)
		dst = append(dst, '}')
	}
	if xff >= 0 {
		dst = append(dst, `,"xff":`...)
		str(m.Fields[xff].Value(0).Str())
	}
	dst = append(dst, '}')
	if len(e.objs.leaves) > 0 {
		dst = append(dst, ',')
		dst = e.objs.appendMembers(dst, &replaced)
	}
	dst = e.appendPayload(dst, m, pi, ki)
	return append(dst, '}'), replaced
}

// sortObjects puts the context fields of protocol objects (e.objIdx) in
// e.objs when the whole object fits Suricata's schema, else in e.rest
// (alert.context): a record never breaks the schema and no field is lost.
func (e *Encoder) sortObjects(m *pipeline.Message) {
	for a, i := range e.objIdx {
		name := strings.TrimPrefix(m.Fields[i].Name, alert.ContextPrefix)
		obj := alert.ContextName(name)
		seen := false
		for _, j := range e.objIdx[:a] {
			if alert.ContextName(strings.TrimPrefix(m.Fields[j].Name, alert.ContextPrefix)) == obj {
				seen = true
				break
			}
		}
		if seen {
			continue
		}
		ok := true
		hasRequired := len(alert.EVERequired(obj)) == 0
		e.group = e.group[:0]
		for _, j := range e.objIdx[a:] {
			f := &m.Fields[j]
			n := strings.TrimPrefix(f.Name, alert.ContextPrefix)
			if alert.ContextName(n) != obj {
				continue
			}
			e.group = append(e.group, j)
			g := *f
			g.Name = n
			var err error
			if e.buf, err = alert.FitsEVE(&g, e.buf); err != nil {
				ok = false
			}
		}
		if !hasRequired {
			hasRequired = e.hasRequired(m, obj)
		}
		for _, j := range e.group {
			f := &m.Fields[j]
			n := strings.TrimPrefix(f.Name, alert.ContextPrefix)
			if ok && hasRequired {
				var k alert.EVEKey
				k, e.buf, _ = alert.LookupEVE(n, e.buf)
				e.objs.add(f, n, k.Kind == alert.EVEArray)
			} else {
				e.rest.add(f, n, false)
			}
		}
	}
}

func (e *Encoder) hasRequired(m *pipeline.Message, obj string) bool {
	for _, req := range alert.EVERequired(obj) {
		found := false
		for _, j := range e.group {
			n := strings.TrimPrefix(m.Fields[j].Name, alert.ContextPrefix)
			if rest, ok := strings.CutPrefix(n, obj+"."); ok && alert.ContextName(rest) == req {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// appendUpdated writes the keys an update changed: its alert.updated, or
// for an update of the older kind the keys it carries.
func (e *Encoder) appendUpdated(dst []byte, m *pipeline.Message, replaced *int) []byte {
	n := 0
	add := func(s string) {
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		var r int
		dst, r = jsonx.AppendString(dst, s)
		*replaced += r
	}
	if f := m.FirstField(alert.FieldUpdated); f != nil {
		for j := 0; j < f.Len(); j++ {
			add(fieldText(f, j))
		}
		return dst
	}
	for i := range m.Fields {
		k := alert.TopKey(m.Fields[i].Name)
		dup := k == ""
		for j := 0; j < i && !dup; j++ {
			dup = alert.TopKey(m.Fields[j].Name) == k
		}
		if !dup {
			add(k)
		}
	}
	return dst
}

// appendNode writes a Haka node as its text rendering,
// "address: 192.168.20.99, evil.host.fqdn".
func appendNode(dst []byte, f *pipeline.Field, replaced *int) []byte {
	var b [256]byte
	t := b[:0]
	kind := f.Representation()
	if kind == "" {
		kind = "node"
	}
	t = append(t, kind...)
	t = append(t, ':', ' ')
	for j := 0; j < f.Len(); j++ {
		if j > 0 {
			t = append(t, ',', ' ')
		}
		t = appendText(t, f, j)
	}
	var n int
	// t is not retained: no copy to a string needed.
	dst, n = jsonx.AppendString(dst, unsafe.String(unsafe.SliceData(t), len(t)))
	*replaced += n
	return dst
}

// fieldText renders value j of f as text (numbers as Haka's %g does).
func fieldText(f *pipeline.Field, j int) string {
	if f.Type == pipeline.TypeString || f.Type == pipeline.TypeBytes {
		return f.Value(j).Str()
	}
	return string(appendText(nil, f, j))
}

func appendText(dst []byte, f *pipeline.Field, j int) []byte {
	v := f.Value(j)
	switch f.Type {
	case pipeline.TypeInteger:
		return strconv.AppendInt(dst, v.Int(), 10)
	case pipeline.TypeUnsigned:
		return strconv.AppendUint(dst, v.Uint(), 10)
	case pipeline.TypeDouble:
		return strconv.AppendFloat(dst, v.Double(), 'g', 6, 64)
	case pipeline.TypeBool:
		return strconv.AppendBool(dst, v.Bool())
	}
	return append(dst, v.Str()...)
}
