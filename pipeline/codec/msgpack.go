package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/ternlog/tern/pipeline"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The native binary form of a message is a msgpack array, positional and
// versioned (layout version 1):
//
//	[1, uuid, timestamp, type, logger, severity, payload, env_version, pid, hostname, fields]
//
//	uuid       bin 16 (a decoder also takes nil or an empty bin as the zero UUID)
//	timestamp  int, nanoseconds since the Unix epoch
//	severity   int (int32 range), pid int (int32 range)
//	type, logger, payload, env_version, hostname   str, any bytes (not checked for UTF-8)
//	fields     array of field arrays [name str, type uint 0..5, representation str, value...]
//
// Values follow the field type: string → str, bytes → bin, integer → int,
// double → float64, bool → bool, unsigned → uint (uint 64 above int64); an
// unset value (a hole in a Zeek vector) is nil, whatever the type. Integers
// use the smallest msgpack encoding, lengths the smallest str/bin/array
// header, as msgpack.Encoder writes them. Decoders accept str and bin alike
// for strings and bytes (nil reads as an unset value, which reads as an
// empty string), float32 for a double, and ignore elements after the eleventh of the
// message array (so a later layout may append elements without a new
// version); anything else unexpected is an error.
const MsgpackVersion = 1

const msgpackElems = 11 // elements of a version-1 message array

// AppendMsgpack appends the native form of m (see MsgpackVersion). It does
// not allocate when dst has room.
func AppendMsgpack(dst []byte, m *pipeline.Message) []byte {
	dst = append(dst, msgpcode.FixedArrayLow|msgpackElems, MsgpackVersion, msgpcode.Bin8, 16)
	dst = append(dst, m.UUID[:]...)
	dst = appendMpInt(dst, m.Timestamp)
	dst = appendMpStr(dst, m.Type)
	dst = appendMpStr(dst, m.Logger)
	dst = appendMpInt(dst, int64(m.Severity))
	dst = appendMpStr(dst, m.Payload)
	dst = appendMpStr(dst, m.EnvVersion)
	dst = appendMpInt(dst, int64(m.Pid))
	dst = appendMpStr(dst, m.Hostname)
	dst = appendMpArrayLen(dst, len(m.Fields))
	for i := range m.Fields {
		f := &m.Fields[i]
		t := f.Type
		if !t.Known() {
			t = pipeline.TypeString
		}
		dst = appendMpArrayLen(dst, 3+f.Len())
		dst = appendMpStr(dst, f.Name)
		dst = append(dst, byte(t))
		dst = appendMpStr(dst, f.Representation())
		for j := range f.Len() {
			v := f.Value(j)
			if f.Unset(j) {
				dst = append(dst, msgpcode.Nil)
				continue
			}
			switch t {
			case pipeline.TypeString:
				dst = appendMpStr(dst, v.Str())
			case pipeline.TypeBytes:
				dst = appendMpBin(dst, v.Str())
			case pipeline.TypeInteger:
				dst = appendMpInt(dst, v.Int())
			case pipeline.TypeUnsigned:
				dst = appendMpUint(dst, v.Uint())
			case pipeline.TypeDouble:
				dst = append(dst, msgpcode.Double)
				dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(v.Double()))
			case pipeline.TypeBool:
				if v.Bool() {
					dst = append(dst, msgpcode.True)
				} else {
					dst = append(dst, msgpcode.False)
				}
			}
		}
	}
	return dst
}

func appendMpArrayLen(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, msgpcode.FixedArrayLow|byte(n))
	case n <= math.MaxUint16:
		return append(dst, msgpcode.Array16, byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, msgpcode.Array32), uint32(n))
}

func appendMpStr(dst []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		dst = append(dst, msgpcode.FixedStrLow|byte(n))
	case n < 256:
		dst = append(dst, msgpcode.Str8, byte(n))
	case n <= math.MaxUint16:
		dst = append(dst, msgpcode.Str16, byte(n>>8), byte(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, msgpcode.Str32), uint32(n))
	}
	return append(dst, s...)
}

func appendMpBin(dst []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 256:
		dst = append(dst, msgpcode.Bin8, byte(n))
	case n <= math.MaxUint16:
		dst = append(dst, msgpcode.Bin16, byte(n>>8), byte(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, msgpcode.Bin32), uint32(n))
	}
	return append(dst, s...)
}

func appendMpInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0:
		switch {
		case v <= math.MaxInt8:
			return append(dst, byte(v))
		case v <= math.MaxUint8:
			return append(dst, msgpcode.Uint8, byte(v))
		case v <= math.MaxUint16:
			return append(dst, msgpcode.Uint16, byte(v>>8), byte(v))
		case v <= math.MaxUint32:
			return binary.BigEndian.AppendUint32(append(dst, msgpcode.Uint32), uint32(v))
		}
		return binary.BigEndian.AppendUint64(append(dst, msgpcode.Uint64), uint64(v))
	case v >= -32:
		return append(dst, byte(v))
	case v >= math.MinInt8:
		return append(dst, msgpcode.Int8, byte(v))
	case v >= math.MinInt16:
		return append(dst, msgpcode.Int16, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, msgpcode.Int32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, msgpcode.Int64), uint64(v))
}

// appendMpUint writes u in the smallest unsigned form.
func appendMpUint(dst []byte, u uint64) []byte {
	if u <= math.MaxInt64 {
		return appendMpInt(dst, int64(u))
	}
	return binary.BigEndian.AppendUint64(append(dst, msgpcode.Uint64), u)
}

// errTruncated is returned for input that ends inside a message.
var errTruncated = errors.New("truncated input")

// mpReader reads msgpack from a byte slice. Every declared length is
// checked against the bytes left before anything is allocated.
type mpReader struct {
	data []byte
	pos  int
	// base is data copied once into a batch's arena; strings are slices
	// of it. Empty when decoding without a batch.
	base string
}

func (r *mpReader) code() (byte, error) {
	if r.pos >= len(r.data) {
		return 0, errTruncated
	}
	c := r.data[r.pos]
	r.pos++
	return c, nil
}

func (r *mpReader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.data)-r.pos {
		return nil, errTruncated
	}
	p := r.data[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return p, nil
}

func (r *mpReader) uintN(size int) (uint64, error) {
	p, err := r.take(size)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
	return binary.BigEndian.Uint64(p), nil
}

func mpCodeError(c byte, want string) error {
	return fmt.Errorf("%s expected, found msgpack code 0x%02x", want, c)
}

// arrayLen reads an array header. Each element takes at least minElem
// bytes, so a length the remaining input cannot hold is refused at once.
func (r *mpReader) arrayLen(minElem int) (int, error) {
	c, err := r.code()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c >= msgpcode.FixedArrayLow && c <= msgpcode.FixedArrayHigh:
		n = uint64(c & msgpcode.FixedArrayMask)
	case c == msgpcode.Array16:
		n, err = r.uintN(2)
	case c == msgpcode.Array32:
		n, err = r.uintN(4)
	default:
		r.pos--
		return 0, mpCodeError(c, "array")
	}
	if err != nil {
		return 0, err
	}
	if n > uint64(len(r.data)-r.pos)/uint64(minElem) {
		return 0, fmt.Errorf("array of %d elements in %d bytes", n, len(r.data)-r.pos)
	}
	return int(n), nil
}

// raw reads a str, bin or nil and returns its bytes.
func (r *mpReader) raw() ([]byte, error) {
	c, err := r.code()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c >= msgpcode.FixedStrLow && c <= msgpcode.FixedStrHigh:
		n = uint64(c & msgpcode.FixedStrMask)
	case c == msgpcode.Str8 || c == msgpcode.Bin8:
		n, err = r.uintN(1)
	case c == msgpcode.Str16 || c == msgpcode.Bin16:
		n, err = r.uintN(2)
	case c == msgpcode.Str32 || c == msgpcode.Bin32:
		n, err = r.uintN(4)
	case c == msgpcode.Nil:
		return nil, nil
	default:
		r.pos--
		return nil, mpCodeError(c, "string")
	}
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.data)-r.pos) {
		return nil, fmt.Errorf("string of %d bytes in %d bytes", n, len(r.data)-r.pos)
	}
	return r.take(int(n))
}

func (r *mpReader) int64() (int64, error) {
	c, err := r.code()
	if err != nil {
		return 0, err
	}
	if c <= msgpcode.PosFixedNumHigh || c >= msgpcode.NegFixedNumLow {
		return int64(int8(c)), nil
	}
	var u uint64
	switch c {
	case msgpcode.Uint8, msgpcode.Int8:
		u, err = r.uintN(1)
		if c == msgpcode.Int8 {
			return int64(int8(u)), err
		}
	case msgpcode.Uint16, msgpcode.Int16:
		u, err = r.uintN(2)
		if c == msgpcode.Int16 {
			return int64(int16(u)), err
		}
	case msgpcode.Uint32, msgpcode.Int32:
		u, err = r.uintN(4)
		if c == msgpcode.Int32 {
			return int64(int32(u)), err
		}
	case msgpcode.Uint64, msgpcode.Int64:
		u, err = r.uintN(8)
		if c == msgpcode.Uint64 && u > math.MaxInt64 {
			return 0, errors.New("integer out of range")
		}
	default:
		r.pos--
		return 0, mpCodeError(c, "integer")
	}
	return int64(u), err
}

func (r *mpReader) int32() (int32, error) {
	v, err := r.int64()
	if err == nil && (v < math.MinInt32 || v > math.MaxInt32) {
		err = fmt.Errorf("integer out of range: %d", v)
	}
	return int32(v), err
}

// skip passes over one value of any kind, nested at most depth levels.
func (r *mpReader) skip(depth int) error {
	c, err := r.code()
	if err != nil {
		return err
	}
	var n uint64 // elements of a container
	switch {
	case c <= msgpcode.PosFixedNumHigh || c >= msgpcode.NegFixedNumLow,
		c == msgpcode.Nil, c == msgpcode.False, c == msgpcode.True:
		return nil
	case c >= msgpcode.FixedStrLow && c <= msgpcode.FixedStrHigh,
		c == msgpcode.Str8, c == msgpcode.Str16, c == msgpcode.Str32,
		c == msgpcode.Bin8, c == msgpcode.Bin16, c == msgpcode.Bin32:
		r.pos--
		_, err = r.raw()
		return err
	case c >= msgpcode.FixedMapLow && c <= msgpcode.FixedMapHigh:
		n = 2 * uint64(c&msgpcode.FixedMapMask)
	case c >= msgpcode.FixedArrayLow && c <= msgpcode.FixedArrayHigh:
		n = uint64(c & msgpcode.FixedArrayMask)
	case c == msgpcode.Array16, c == msgpcode.Map16:
		n, err = r.uintN(2)
	case c == msgpcode.Array32, c == msgpcode.Map32:
		n, err = r.uintN(4)
	case c == msgpcode.Uint8, c == msgpcode.Int8:
		_, err = r.take(1)
		return err
	case c == msgpcode.Uint16, c == msgpcode.Int16:
		_, err = r.take(2)
		return err
	case c == msgpcode.Uint32, c == msgpcode.Int32, c == msgpcode.Float:
		_, err = r.take(4)
		return err
	case c == msgpcode.Uint64, c == msgpcode.Int64, c == msgpcode.Double:
		_, err = r.take(8)
		return err
	case c >= msgpcode.FixExt1 && c <= msgpcode.FixExt16:
		_, err = r.take(1 + 1<<(c-msgpcode.FixExt1))
		return err
	case c == msgpcode.Ext8, c == msgpcode.Ext16, c == msgpcode.Ext32:
		size := 1 << (c - msgpcode.Ext8) // 1, 2, 4
		if n, err = r.uintN(size); err != nil {
			return err
		}
		if n >= uint64(len(r.data)-r.pos) {
			return errTruncated
		}
		_, err = r.take(1 + int(n))
		return err
	default:
		return fmt.Errorf("invalid msgpack code 0x%02x", c)
	}
	if err != nil {
		return err
	}
	if c == msgpcode.Map16 || c == msgpcode.Map32 {
		n *= 2
	}
	if n > uint64(len(r.data)-r.pos) {
		return errTruncated
	}
	if depth <= 0 {
		return errors.New("nesting too deep")
	}
	for ; n > 0; n-- {
		if err := r.skip(depth - 1); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpackBytes reads the native form of one message from data into m,
// which it resets first. Strings are copied into b's arena when b is not nil
// and allocated otherwise. It refuses truncated input, trailing bytes, and
// lengths that the input cannot hold, before allocating.
func DecodeMsgpackBytes(data []byte, m *pipeline.Message, b *pipeline.Batch) error {
	m.Reset()
	r := mpReader{data: data}
	if b != nil {
		r.base = b.Str(data)
	}
	if err := r.message(m, b); err != nil {
		return err
	}
	if r.pos != len(data) {
		return fmt.Errorf("msgpack: %d bytes after the message", len(data)-r.pos)
	}
	return nil
}

// str returns p, the bytes of a string just read, as a string.
func (r *mpReader) str(p []byte) string {
	if r.base != "" {
		return r.base[r.pos-len(p) : r.pos]
	}
	return string(p)
}

var mpHeaderNames = [...]string{"version", "uuid", "timestamp", "type", "logger", "severity", "payload", "env_version", "pid", "hostname", "fields"}

func (r *mpReader) message(m *pipeline.Message, b *pipeline.Batch) error {
	n, err := r.arrayLen(1)
	if err != nil {
		return fmt.Errorf("msgpack: message: %w", err)
	}
	if n < msgpackElems {
		return fmt.Errorf("msgpack: message array has %d elements, want %d", n, msgpackElems)
	}
	elem := 0
	wrap := func(err error) error {
		return fmt.Errorf("msgpack: %s: %w", mpHeaderNames[elem], err)
	}
	v, err := r.int64()
	if err != nil {
		return wrap(err)
	}
	if v != MsgpackVersion {
		return fmt.Errorf("msgpack: layout version %d, want %d", v, MsgpackVersion)
	}
	elem++
	p, err := r.raw()
	if err != nil {
		return wrap(err)
	}
	switch len(p) {
	case 16:
		copy(m.UUID[:], p)
	case 0:
	default:
		return wrap(fmt.Errorf("%d bytes, want 16", len(p)))
	}
	elem++
	if m.Timestamp, err = r.int64(); err != nil {
		return wrap(err)
	}
	for _, dst := range [...]*string{&m.Type, &m.Logger} {
		elem++
		if p, err = r.raw(); err != nil {
			return wrap(err)
		}
		*dst = r.str(p)
	}
	elem++
	if m.Severity, err = r.int32(); err != nil {
		return wrap(err)
	}
	for _, dst := range [...]*string{&m.Payload, &m.EnvVersion} {
		elem++
		if p, err = r.raw(); err != nil {
			return wrap(err)
		}
		*dst = r.str(p)
	}
	elem++
	if m.Pid, err = r.int32(); err != nil {
		return wrap(err)
	}
	elem++
	if p, err = r.raw(); err != nil {
		return wrap(err)
	}
	m.Hostname = r.str(p)
	elem++
	if err := r.fields(m, b); err != nil {
		return err
	}
	for k := msgpackElems; k < n; k++ {
		if err := r.skip(16); err != nil {
			return fmt.Errorf("msgpack: element %d: %w", k, err)
		}
	}
	return nil
}

func (r *mpReader) fields(m *pipeline.Message, b *pipeline.Batch) error {
	nf, err := r.arrayLen(4) // the smallest field is [name, type, repr]: 4 bytes
	if err != nil {
		return fmt.Errorf("msgpack: fields: %w", err)
	}
	if nf > pipeline.MaxFields {
		return fmt.Errorf("msgpack: fields: more than %d", pipeline.MaxFields)
	}
	if cap(m.Fields) < nf {
		m.Fields = make([]pipeline.Field, 0, nf)
	}
	values := 0
	for i := range nf {
		nv, err := r.arrayLen(1)
		if err != nil {
			return fmt.Errorf("msgpack: fields[%d]: %w", i, err)
		}
		if nv < 3 {
			return fmt.Errorf("msgpack: fields[%d]: array of %d elements, want at least 3", i, nv)
		}
		nv -= 3
		if values += nv; values > pipeline.MaxValues {
			return fmt.Errorf("msgpack: more than %d values", pipeline.MaxValues)
		}
		m.Fields = append(m.Fields, pipeline.Field{})
		f := &m.Fields[len(m.Fields)-1]
		p, err := r.raw()
		if err != nil {
			return fmt.Errorf("msgpack: fields[%d].name: %w", i, err)
		}
		f.Name = r.str(p)
		t, err := r.int64()
		if err == nil && (t < 0 || !pipeline.ValueType(min(t, 255)).Known()) {
			err = fmt.Errorf("unknown value type %d", t)
		}
		if err != nil {
			return fmt.Errorf("msgpack: fields[%d].type: %w", i, err)
		}
		f.Type = pipeline.ValueType(t)
		if p, err = r.raw(); err != nil {
			return fmt.Errorf("msgpack: fields[%d].representation: %w", i, err)
		}
		f.SetRepresentation(r.str(p))
		if nv > 1 {
			f.Grow(nv)
		}
		for j := range nv {
			v, err := r.value(f.Type, b)
			if err != nil {
				return fmt.Errorf("msgpack: fields[%d].value[%d]: %w", i, j, err)
			}
			f.Append(v)
		}
	}
	return nil
}

func (r *mpReader) value(t pipeline.ValueType, b *pipeline.Batch) (pipeline.Value, error) {
	if r.pos < len(r.data) && r.data[r.pos] == msgpcode.Nil {
		r.pos++
		return pipeline.UnsetValue(), nil // a slot that holds nothing
	}
	switch t {
	case pipeline.TypeString, pipeline.TypeBytes:
		p, err := r.raw()
		return pipeline.StringValue(r.str(p)), err
	case pipeline.TypeInteger:
		n, err := r.int64()
		return pipeline.IntValue(n), err
	case pipeline.TypeUnsigned:
		if r.pos < len(r.data) && r.data[r.pos] == msgpcode.Uint64 {
			r.pos++
			u, err := r.uintN(8)
			return pipeline.UintValue(u), err
		}
		n, err := r.int64()
		if err == nil && n < 0 {
			err = fmt.Errorf("unsigned integer expected, got %d", n)
		}
		return pipeline.UintValue(uint64(n)), err
	case pipeline.TypeDouble:
		c, err := r.code()
		if err != nil {
			return pipeline.Value{}, err
		}
		switch c {
		case msgpcode.Double:
			u, err := r.uintN(8)
			return pipeline.DoubleValue(math.Float64frombits(u)), err
		case msgpcode.Float:
			u, err := r.uintN(4)
			return pipeline.DoubleValue(float64(math.Float32frombits(uint32(u)))), err
		}
		r.pos--
		return pipeline.Value{}, mpCodeError(c, "double")
	default: // pipeline.TypeBool
		c, err := r.code()
		if err != nil {
			return pipeline.Value{}, err
		}
		switch c {
		case msgpcode.True:
			return pipeline.BoolValue(true), nil
		case msgpcode.False:
			return pipeline.Value{}, nil
		}
		r.pos--
		return pipeline.Value{}, mpCodeError(c, "bool")
	}
}
