package pipeline

import (
	"encoding/hex"
	"math"
	"unsafe"
)

// Severity levels are syslog's (RFC 5424 §6.2.1): 0 is the most severe.
const (
	SeverityEmergency int32 = iota
	SeverityAlert
	SeverityCritical
	SeverityError
	SeverityWarning
	SeverityNotice
	SeverityInfo
	SeverityDebug
)

// DefaultSeverity is the severity of a message nobody set one on (Heka's default).
const DefaultSeverity = SeverityDebug

// Limits on one message that decoders enforce (the canonical JSON and native
// msgpack codecs among them): larger messages are refused, not truncated.
const (
	MaxFields = 1 << 16 // fields per message
	MaxValues = 1 << 20 // values per message, all fields together
)

// Message is tern's unit of data, Heka's schema: a fixed header plus ordered,
// typed fields. Fields may repeat a name; they are addressed by name and index.
//
// A message is mutable only while the decoder or filter that creates it builds
// it. Once handed to the engine it is shared read-only by every filter and
// output that matched it; a plugin that wants a changed copy calls Clone.
type Message struct {
	UUID       [16]byte // random (v4); assigned by the engine when zero
	Timestamp  int64    // nanoseconds since the Unix epoch, UTC
	Type       string
	Logger     string // the data source; the input's name unless a decoder sets it
	Severity   int32  // syslog severity 0..7; NewMessage sets DefaultSeverity
	Payload    string // may hold any bytes, including invalid UTF-8
	EnvVersion string
	Pid        int32
	Hostname   string
	Fields     []Field
}

// NewMessage returns an empty message with Heka's default severity.
func NewMessage() *Message { return &Message{Severity: DefaultSeverity} }

// Reset empties m for reuse, keeping the capacity of its field slice.
func (m *Message) Reset() {
	f := m.Fields[:0]
	*m = Message{Severity: DefaultSeverity, Fields: f}
}

// Clone returns a deep copy of m. Strings are immutable and shared.
func (m *Message) Clone() *Message {
	c := *m
	if m.Fields != nil {
		c.Fields = make([]Field, len(m.Fields))
		for i := range m.Fields {
			c.Fields[i] = m.Fields[i].clone()
		}
	}
	return &c
}

// UUIDString renders the UUID in the canonical 36-character lower-case form.
func (m *Message) UUIDString() string {
	var b [36]byte
	return string(AppendUUID(b[:0], m.UUID))
}

// AppendUUID appends the 8-4-4-4-12 hex form of u to dst.
func AppendUUID(dst []byte, u [16]byte) []byte {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return append(dst, b[:]...)
}

// ParseUUID parses the 36-character dashed hex form (either case).
func ParseUUID(s string) (u [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Field returns the fi-th field named name (0-based, in message order).
func (m *Message) Field(name string, fi int) *Field {
	for i := range m.Fields {
		if m.Fields[i].Name == name {
			if fi == 0 {
				return &m.Fields[i]
			}
			fi--
		}
	}
	return nil
}

// FirstField returns the first field named name, or nil.
func (m *Message) FirstField(name string) *Field { return m.Field(name, 0) }

// FieldString returns the first value of the first field named name when that
// field is a string or bytes field.
func (m *Message) FieldString(name string) (string, bool) {
	f := m.Field(name, 0)
	if f == nil || f.n == 0 || (f.Type != TypeString && f.Type != TypeBytes) {
		return "", false
	}
	return f.v0.s, true
}

// FieldInt returns the first value of the first field named name when that
// field is an integer field, or an unsigned one whose value fits an int64.
func (m *Message) FieldInt(name string) (int64, bool) {
	f := m.Field(name, 0)
	if f == nil || f.n == 0 || f.v0 == unset {
		return 0, false
	}
	switch {
	case f.Type == TypeInteger, f.Type == TypeUnsigned && f.v0.n <= math.MaxInt64:
		return int64(f.v0.n), true
	}
	return 0, false
}

// FillDefaults gives m what the engine gives every message its decoder or
// filter left without: an id from uuid, the time now (ns since the epoch)
// and the logger (the plugin's name). Tools that encode messages outside
// the engine (tern encode) call it too, so they write what a router would.
func (m *Message) FillDefaults(uuid func() [16]byte, now int64, logger string) {
	if m.UUID == ([16]byte{}) {
		m.UUID = uuid()
	}
	if m.Timestamp == 0 {
		m.Timestamp = now
	}
	if m.Logger == "" {
		m.Logger = logger
	}
}

// AddField appends f. Names may repeat.
func (m *Message) AddField(f Field) { m.Fields = append(m.Fields, f) }

// AddString appends a single-valued string field.
func (m *Message) AddString(name, v string) {
	m.Fields = append(m.Fields, Field{Name: name, Type: TypeString, n: 1, v0: Value{s: v}})
}

// AddBytes appends a single-valued bytes field holding a copy of v.
func (m *Message) AddBytes(name string, v []byte) {
	m.Fields = append(m.Fields, Field{Name: name, Type: TypeBytes, n: 1, v0: Value{s: string(v)}})
}

// AddInt appends a single-valued integer field.
func (m *Message) AddInt(name string, v int64) {
	m.Fields = append(m.Fields, Field{Name: name, Type: TypeInteger, n: 1, v0: Value{n: uint64(v)}})
}

// AddUint appends a single-valued unsigned integer field.
func (m *Message) AddUint(name string, v uint64) {
	m.Fields = append(m.Fields, Field{Name: name, Type: TypeUnsigned, n: 1, v0: Value{n: v}})
}

// AddDouble appends a single-valued double field.
func (m *Message) AddDouble(name string, v float64) {
	m.Fields = append(m.Fields, Field{Name: name, Type: TypeDouble, n: 1, v0: Value{n: math.Float64bits(v)}})
}

// AddBool appends a single-valued bool field.
func (m *Message) AddBool(name string, v bool) {
	m.Fields = append(m.Fields, Field{Name: name, Type: TypeBool, n: 1, v0: BoolValue(v)})
}

// SetField replaces the first field named f.Name, or appends f.
func (m *Message) SetField(f Field) {
	for i := range m.Fields {
		if m.Fields[i].Name == f.Name {
			m.Fields[i] = f
			return
		}
	}
	m.Fields = append(m.Fields, f)
}

// DeleteField removes the fi-th field named name and reports whether it existed.
func (m *Message) DeleteField(name string, fi int) bool {
	for i := range m.Fields {
		if m.Fields[i].Name == name {
			if fi == 0 {
				m.Fields = append(m.Fields[:i], m.Fields[i+1:]...)
				return true
			}
			fi--
		}
	}
	return false
}

// Size estimates the memory m holds, in bytes: the message, the pointer a
// queue keeps to it, its fields, values and strings. Queues are bounded
// with it. What m shares with other messages (the chunks and slabs of the
// Batch it was decoded in) is not counted: the engine copies the messages
// of a destination that takes a small share of a batch, and batches are
// sized for what they hold, so that what a queue keeps stays near the sum.
func (m *Message) Size() int {
	n := messageBytes + len(m.Type) + len(m.Logger) + len(m.Payload) + len(m.EnvVersion) + len(m.Hostname)
	n += fieldBytes * len(m.Fields)
	for i := range m.Fields {
		f := &m.Fields[i]
		// Numbers keep s empty (the unset value's one byte is counted).
		n += len(f.Name) + len(f.v0.s)
		if x := f.x; x != nil && !isCommon(x) {
			n += extBytes + len(x.repr)
			if cap(x.more) > len(x.inline) { // values on the heap
				n += valueBytes * cap(x.more)
			}
			for j := 0; j < int(f.n)-1; j++ {
				n += len(x.more[j].s)
			}
		}
	}
	return n
}

const (
	messageBytes = int(unsafe.Sizeof(Message{})) + 8
	fieldBytes   = int(unsafe.Sizeof(Field{}))
	valueBytes   = int(unsafe.Sizeof(Value{}))
	extBytes     = int(unsafe.Sizeof(fieldExt{}))
)
