package codec_test

// The msgpack library's adapters for Message: an encoder and a decoder
// written on github.com/vmihailenco/msgpack/v5 instead of by hand. Tests use
// them as an independent second implementation of the native form; the
// router itself only uses codec.AppendMsgpack and codec.DecodeMsgpackBytes.

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/framing"
)

// libMessage is a Message that the msgpack library encodes and decodes
// through the adapters below.
type libMessage struct{ pipeline.Message }

const msgpackElems = 11 // elements of a version-1 message array

var mpBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// EncodeMsgpack writes the native form of m (see MsgpackVersion); it makes
// Message a msgpack.CustomEncoder. The bytes are those of AppendMsgpack,
// whatever options enc has.
func (lm *libMessage) EncodeMsgpack(enc *msgpack.Encoder) error {
	bp := mpBufPool.Get().(*[]byte)
	buf := codec.AppendMsgpack((*bp)[:0], &lm.Message)
	_, err := enc.Writer().Write(buf)
	if cap(buf) <= 64<<10 {
		*bp = buf
		mpBufPool.Put(bp)
	}
	return err
}

// DecodeMsgpack reads the native form of m from dec; it makes Message a
// msgpack.CustomDecoder. Like DecodeMsgpackBytes, it checks the structure
// as it goes and never trusts a declared length to allocate.
func (lm *libMessage) DecodeMsgpack(dec *msgpack.Decoder) error {
	m := &lm.Message
	m.Reset()
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return fmt.Errorf("msgpack: message: %w", err)
	}
	if n < msgpackElems {
		return fmt.Errorf("msgpack: message array has %d elements, want %d", n, msgpackElems)
	}
	if v, err := dec.DecodeInt64(); err != nil || v != codec.MsgpackVersion {
		if err == nil {
			err = fmt.Errorf("layout version %d, want %d", v, codec.MsgpackVersion)
		}
		return fmt.Errorf("msgpack: version: %w", err)
	}
	u, err := decBytes(dec)
	if err != nil || (len(u) != 16 && len(u) != 0) {
		if err == nil {
			err = fmt.Errorf("%d bytes, want 16", len(u))
		}
		return fmt.Errorf("msgpack: uuid: %w", err)
	}
	copy(m.UUID[:], u)
	if m.Timestamp, err = dec.DecodeInt64(); err != nil {
		return fmt.Errorf("msgpack: timestamp: %w", err)
	}
	if m.Type, err = decString(dec); err != nil {
		return fmt.Errorf("msgpack: type: %w", err)
	}
	if m.Logger, err = decString(dec); err != nil {
		return fmt.Errorf("msgpack: logger: %w", err)
	}
	if m.Severity, err = decInt32(dec); err != nil {
		return fmt.Errorf("msgpack: severity: %w", err)
	}
	if m.Payload, err = decString(dec); err != nil {
		return fmt.Errorf("msgpack: payload: %w", err)
	}
	if m.EnvVersion, err = decString(dec); err != nil {
		return fmt.Errorf("msgpack: env_version: %w", err)
	}
	if m.Pid, err = decInt32(dec); err != nil {
		return fmt.Errorf("msgpack: pid: %w", err)
	}
	if m.Hostname, err = decString(dec); err != nil {
		return fmt.Errorf("msgpack: hostname: %w", err)
	}
	nf, err := dec.DecodeArrayLen()
	if err != nil || nf > pipeline.MaxFields {
		if err == nil {
			err = fmt.Errorf("more than %d", pipeline.MaxFields)
		}
		return fmt.Errorf("msgpack: fields: %w", err)
	}
	values := 0
	for i := 0; i < nf; i++ {
		if err := decField(dec, m, i, &values); err != nil {
			return fmt.Errorf("msgpack: fields[%d]: %w", i, err)
		}
	}
	for k := msgpackElems; k < n; k++ {
		if err := decSkip(dec, 16); err != nil {
			return fmt.Errorf("msgpack: element %d: %w", k, err)
		}
	}
	return nil
}

// decBytes reads a str, bin or nil. It refuses lengths over DefaultMaxFrame
// and grows its buffer with the data that arrives, so a header declaring
// gigabytes costs nothing.
func decBytes(dec *msgpack.Decoder) ([]byte, error) {
	n, err := dec.DecodeBytesLen()
	if err != nil || n <= 0 {
		return nil, err
	}
	if n > framing.DefaultMaxFrame {
		return nil, fmt.Errorf("string of %d bytes, more than %d", n, framing.DefaultMaxFrame)
	}
	buf := make([]byte, 0, min(n, 64<<10))
	for len(buf) < n {
		k := min(n-len(buf), max(64<<10, len(buf)))
		buf = slices.Grow(buf, k)
		if err := dec.ReadFull(buf[len(buf) : len(buf)+k]); err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+k]
	}
	return buf, nil
}

func decString(dec *msgpack.Decoder) (string, error) {
	p, err := decBytes(dec)
	if len(p) == 0 {
		return "", err
	}
	return unsafe.String(&p[0], len(p)), err
}

func decInt32(dec *msgpack.Decoder) (int32, error) {
	v, err := dec.DecodeInt64()
	if err == nil && (v < math.MinInt32 || v > math.MaxInt32) {
		err = fmt.Errorf("integer out of range: %d", v)
	}
	return int32(v), err
}

func decField(dec *msgpack.Decoder, m *pipeline.Message, i int, values *int) error {
	nv, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if nv < 3 {
		return fmt.Errorf("array of %d elements, want at least 3", nv)
	}
	nv -= 3
	if *values += nv; *values > pipeline.MaxValues {
		return fmt.Errorf("more than %d values in the message", pipeline.MaxValues)
	}
	var f pipeline.Field
	if f.Name, err = decString(dec); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	t, err := dec.DecodeInt64()
	if err == nil && (t < 0 || !pipeline.ValueType(min(t, 255)).Known()) {
		err = fmt.Errorf("unknown value type %d", t)
	}
	if err != nil {
		return fmt.Errorf("type: %w", err)
	}
	f.Type = pipeline.ValueType(t)
	repr, err := decString(dec)
	if err != nil {
		return fmt.Errorf("representation: %w", err)
	}
	f.SetRepresentation(repr)
	for j := 0; j < nv; j++ {
		var v pipeline.Value
		if c, perr := dec.PeekCode(); perr == nil && c == msgpcode.Nil {
			_ = dec.Skip()
			f.AppendUnset()
			continue
		}
		switch f.Type {
		case pipeline.TypeString, pipeline.TypeBytes:
			var str string
			str, err = decString(dec)
			v = pipeline.StringValue(str)
		case pipeline.TypeInteger:
			var n int64
			n, err = dec.DecodeInt64()
			v = pipeline.IntValue(n)
		case pipeline.TypeUnsigned:
			var u uint64
			u, err = dec.DecodeUint64()
			v = pipeline.UintValue(u)
		case pipeline.TypeDouble:
			var x float64
			x, err = dec.DecodeFloat64()
			v = pipeline.DoubleValue(x)
		case pipeline.TypeBool:
			var b bool
			b, err = dec.DecodeBool()
			v = pipeline.BoolValue(b)
		}
		if err != nil {
			return fmt.Errorf("value[%d]: %w", j, err)
		}
		f.Append(v)
	}
	m.Fields = append(m.Fields, f)
	return nil
}

// decSkip skips one value; unlike Decoder.Skip it bounds the nesting, and it
// reads strings and extensions through a small buffer instead of allocating
// what their headers declare.
func decSkip(dec *msgpack.Decoder, depth int) error {
	c, err := dec.PeekCode()
	if err != nil {
		return err
	}
	var n, per int
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err = dec.DecodeArrayLen()
		per = 1
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err = dec.DecodeMapLen()
		per = 2
	case msgpcode.IsString(c) || msgpcode.IsBin(c):
		if n, err = dec.DecodeBytesLen(); err != nil {
			return err
		}
		return decDiscard(dec, n)
	case msgpcode.IsExt(c):
		if _, n, err = dec.DecodeExtHeader(); err != nil {
			return err
		}
		return decDiscard(dec, n)
	default:
		return dec.Skip() // scalars
	}
	if err != nil {
		return err
	}
	if depth <= 0 {
		return errors.New("nesting too deep")
	}
	for k := 0; k < n*per; k++ {
		if err := decSkip(dec, depth-1); err != nil {
			return err
		}
	}
	return nil
}

func decDiscard(dec *msgpack.Decoder, n int) error {
	var buf [512]byte
	for n > 0 {
		k := min(n, len(buf))
		if err := dec.ReadFull(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
