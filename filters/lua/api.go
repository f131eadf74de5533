package lua

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"

	golua "github.com/Shopify/go-lua"

	"github.com/ternlog/tern/internal/alertdef"
	"github.com/ternlog/tern/internal/sandbox"
	"github.com/ternlog/tern/pipeline"
)

// setup registers Heka's filter API, the alert API and the definitions on
// a fresh State.
func (f *Filter) setup(sb *sandbox.Sandbox) error {
	l := sb.State()
	l.Register("read_config", f.readConfig)
	l.Register("read_message", func(l *golua.State) int { return sb.ReadMessage(l, f.cur, sandbox.ReadPlain) })
	l.Register("read_exact", func(l *golua.State) int { return sb.ReadMessage(l, f.cur, sandbox.ReadExact) })
	l.Register("read_timestamp", func(l *golua.State) int { return sandbox.ReadTimestamp(l, f.cur) })
	l.Register("inject_message", f.injectMessage)
	l.Register("inject_payload", f.injectPayload)
	l.Register("add_to_payload", f.addToPayload)
	if err := f.openAlert(sb); err != nil {
		return err
	}
	sb.SnapshotBuiltins()
	return nil
}

// readConfig is read_config(key): strings, booleans and numbers of the
// [filters.<name>.config] table (TOML integers become numbers); arrays and
// tables come back as Lua tables.
func (f *Filter) readConfig(l *golua.State) int {
	key := golua.CheckString(l, 1)
	v, ok := f.cfg.Config[key]
	if !ok {
		l.PushNil()
		return 1
	}
	pushTOML(l, v, 0)
	return 1
}

func pushTOML(l *golua.State, v any, depth int) {
	if depth > 16 {
		l.PushNil()
		return
	}
	switch v := v.(type) {
	case int64:
		l.PushNumber(float64(v))
	case []any:
		l.CreateTable(len(v), 0)
		for i, e := range v {
			pushTOML(l, e, depth+1)
			l.RawSetInt(-2, i+1)
		}
	case []map[string]any:
		l.CreateTable(len(v), 0)
		for i, e := range v {
			pushTOML(l, e, depth+1)
			l.RawSetInt(-2, i+1)
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		l.CreateTable(0, len(v))
		for _, k := range keys {
			pushTOML(l, v[k], depth+1)
			l.SetField(-2, k)
		}
	default:
		sandbox.PushGo(l, v)
	}
}

// queue adds a message to the call's output, enforcing max_inject and
// output_limit.
func (f *Filter) queue(l *golua.State, m *pipeline.Message) {
	if len(f.pending) >= f.cfg.MaxInject {
		golua.Errorf(l, "max_inject exceeded: more than %d messages in one call", f.cfg.MaxInject)
	}
	if n := m.Size(); n > f.cfg.OutputLimit.N() {
		golua.Errorf(l, "output_limit exceeded: message of %d bytes (limit %d)", n, f.cfg.OutputLimit.N())
	}
	if m.Hostname == "" {
		m.Hostname = f.set.Hostname
	}
	f.pending = append(f.pending, m)
}

// injectMessage is inject_message(table). The Logger is always the filter's
// name and Timestamp defaults to now; Hostname defaults to the router's.
func (f *Filter) injectMessage(l *golua.State) int {
	m, err := sandbox.MessageFromTable(l, 1)
	if err != nil {
		golua.Errorf(l, "%s", err.Error())
	}
	m.Logger = ""
	if m.Timestamp == 0 {
		m.Timestamp = f.callTime().UnixNano()
	}
	f.queue(l, m)
	return 0
}

// addToPayload is add_to_payload(...): strings, numbers and booleans are
// appended to the payload buffer (numbers as %.14g, like Lua prints them).
func (f *Filter) addToPayload(l *golua.State) int {
	for i, n := 1, l.Top(); i <= n; i++ {
		var s string
		switch l.TypeOf(i) {
		case golua.TypeString:
			s, _ = l.ToString(i)
		case golua.TypeNumber:
			v, _ := l.ToNumber(i)
			s = luaNumber(v)
		case golua.TypeBoolean:
			s = strconv.FormatBool(l.ToBoolean(i))
		case golua.TypeNil:
			s = "nil"
		default:
			golua.ArgumentError(l, i, "string, number or boolean expected, got "+golua.TypeNameOf(l, i))
		}
		if f.payload.Len()+len(s) > f.cfg.OutputLimit.N() {
			golua.Errorf(l, "output_limit exceeded: payload larger than %d bytes", f.cfg.OutputLimit.N())
		}
		f.payload.WriteString(s)
	}
	return 0
}

func luaNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 14, 64)
}

// injectPayload is inject_payload([type [, name [, ...]]]): the arguments
// after name are added to the payload first, then the buffer is injected
// as a tern.sandbox-output message with fields payload_type
// (representation file-extension) and payload_name, and emptied.
func (f *Filter) injectPayload(l *golua.State) int {
	typ := golua.OptString(l, 1, "txt")
	name := golua.OptString(l, 2, "")
	if l.Top() > 2 {
		l.Remove(1)
		l.Remove(1)
		f.addToPayload(l)
	}
	m := pipeline.NewMessage()
	m.Type = "tern.sandbox-output"
	m.Timestamp = f.callTime().UnixNano()
	m.Severity = pipeline.SeverityInfo
	m.Payload = f.payload.String()
	m.AddField(pipeline.NewField("payload_type", pipeline.TypeString, "file-extension", pipeline.StringValue(typ)))
	m.AddString("payload_name", name)
	f.payload.Reset()
	f.queue(l, m)
	return 0
}

// loadDefinitionTables runs the definition files of the alerts whose
// description is a function in this State and keeps their tables in the
// registry (tern.alertdefs[key]).
func (f *Filter) loadDefinitionTables(sb *sandbox.Sandbox) error {
	l := sb.State()
	l.NewTable()
	l.SetField(golua.RegistryIndex, "tern.alertdefs")
	if f.defs == nil {
		return nil
	}
	for _, d := range f.defs.Defs {
		if !d.DescFunc {
			continue
		}
		src, err := os.ReadFile(d.File)
		if err != nil {
			return err
		}
		alertdef.PushKeys(l, f.defs.Keys)
		key := d.Key
		err = sb.RunChunk(d.File, string(src), 1, func(l *golua.State) error {
			if !l.IsTable(-1) {
				return fmt.Errorf("%s: no longer returns a table", d.File)
			}
			l.Field(golua.RegistryIndex, "tern.alertdefs")
			l.PushValue(-2)
			l.RawSetInt(-2, key)
			l.Pop(1)
			return nil
		})
		if err != nil {
			return err
		}
	}
	l.PushNil()
	l.SetGlobal("alert_keys")
	return nil
}
