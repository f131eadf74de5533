package pipeline

import "unsafe"

// DeepClone returns a copy of m that shares no memory with it, strings
// included. Clone shares strings, and a decoder's strings are views into
// chunks its Batch shares with the other messages of the batch (Batch.Str):
// a copy kept after the batch is acknowledged, by an observer such as the
// engine's taps, would hold those chunks alive. DeepClone copies every
// string into one allocation sized for the message.
func (m *Message) DeepClone() *Message {
	n := len(m.Type) + len(m.Logger) + len(m.Payload) + len(m.EnvVersion) + len(m.Hostname)
	for i := range m.Fields {
		f := &m.Fields[i]
		n += len(f.Name) + len(f.v0.s)
		if x := f.x; x != nil && !isCommon(x) {
			n += len(x.repr)
			for j := 0; j < int(f.n)-1; j++ {
				n += len(x.more[j].s)
			}
		}
	}
	a := arena{buf: make([]byte, 0, n)}
	c := *m
	c.Type, c.Logger, c.Payload = a.str(m.Type), a.str(m.Logger), a.str(m.Payload)
	c.EnvVersion, c.Hostname = a.str(m.EnvVersion), a.str(m.Hostname)
	if m.Fields != nil {
		c.Fields = make([]Field, len(m.Fields))
		for i := range m.Fields {
			f := m.Fields[i].clone() // an ext of its own, unless a common one
			f.Name = a.str(f.Name)
			f.v0.s = a.str(f.v0.s) // numbers hold "", and the unset value its own
			if x := f.x; x != nil && !isCommon(x) {
				x.repr = a.str(x.repr)
				for j := range x.more {
					x.more[j].s = a.str(x.more[j].s)
				}
			}
			c.Fields[i] = f
		}
	}
	return &c
}

// arena hands out strings copied into buf, whose capacity the caller sized
// so that it never moves.
type arena struct{ buf []byte }

func (a *arena) str(s string) string {
	if s == "" {
		return ""
	}
	start := len(a.buf)
	a.buf = append(a.buf, s...)
	return unsafe.String(&a.buf[start], len(s))
}
