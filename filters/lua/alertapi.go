package lua

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	golua "github.com/Shopify/go-lua"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/internal/alertdef"
	"github.com/ternlog/tern/internal/sandbox"
	"github.com/ternlog/tern/pipeline/codec"
)

// Haka's alert API (formats.md §5.1), also reachable as haka.alert:
//
//	local a = alert{ start_time=…, end_time=…, description=…, severity=…, confidence=…,
//	                 completion=…, method={description=…, ref={…}}, sources={…}, targets={…}, ref={…},
//	                 context={…}, http={…}, tls={…}, dns={…}, … }
//	alert.update(a, {…})  or  a:update{…}
//	alert.address(v, …)   alert.service(v, …)
//
// and the defined-alert extension:
//
//	local a = alert.raise(key, fields [, info])
//
// key is a definition's key name ("alert_ssh_bruteforce") or number; fields
// are Haka's; info holds the description's parameters (%{name}, or the
// third argument of an i18n_description function) and an optional context
// table whose entries become alert.context.<name> fields (alertctx.go).
// Times are seconds (numbers, rounded to the microsecond) or exact
// nanoseconds (decimal strings). Every alert is injected as a tern.alert
// message (docs/alerts.md).
//
// A handle is a table {id = "<alert id>", state = "<the alert>"}: state is
// the whole alert as canonical JSON, so that an update can send the whole
// alert after the change, and so that a handle kept in a global survives
// preserve_data (its metatable is given back after the restore).

const handleMeta = "tern.alerthandle"

func (f *Filter) openAlert(sb *sandbox.Sandbox) error {
	l := sb.State()
	// handle metatable: __index = {update = …}
	l.NewTable()
	l.NewTable()
	l.PushGoFunction(f.alertUpdate)
	l.SetField(-2, "update")
	l.SetField(-2, "__index")
	l.SetField(golua.RegistryIndex, handleMeta)

	golua.NewLibrary(l, []golua.RegistryFunction{
		{Name: "address", Function: node(alert.NodeAddress)},
		{Name: "service", Function: node(alert.NodeService)},
		{Name: "update", Function: f.alertUpdate},
		{Name: "raise", Function: f.alertRaise},
	})
	l.NewTable()
	l.PushGoFunction(func(l *golua.State) int {
		l.Remove(1) // the alert table
		return f.alertNew(l)
	})
	l.SetField(-2, "__call")
	l.SetMetaTable(-2)
	l.PushValue(-1)
	l.SetGlobal("alert")
	l.Global("haka")
	l.Insert(-2)
	l.SetField(-2, "alert")
	l.Pop(1)

	alertdef.OpenI18n(l, f.defs, f.cfg.Locale)
	alertdef.WrapRequire(l)
	if err := f.loadDefinitionTables(sb); err != nil {
		return err
	}
	keys := map[string]int{}
	if f.defs != nil {
		keys = f.defs.Keys
	} else {
		for _, k := range alertdef.BuiltinKeys {
			keys[k.Name] = k.Key
		}
	}
	alertdef.PushKeys(l, keys)
	return nil
}

func node(typ string) golua.Function {
	return func(l *golua.State) int {
		n := l.Top()
		l.CreateTable(0, 2)
		l.PushString(typ)
		l.SetField(-2, "type")
		l.CreateTable(n, 0)
		for i := 1; i <= n; i++ {
			golua.ToStringMeta(l, i) // Haka converts every value with tostring
			l.RawSetInt(-2, i)
		}
		l.SetField(-2, "values")
		return 1
	}
}

// pushHandle pushes the handle of alert a (not an update).
func (f *Filter) pushHandle(l *golua.State, a *alert.Alert) {
	l.CreateTable(0, 2)
	l.PushString(a.ID)
	l.SetField(-2, "id")
	l.PushString(f.encodeState(a))
	l.SetField(-2, "state")
	l.Field(golua.RegistryIndex, handleMeta)
	l.SetMetaTable(-2)
}

// encodeState renders the whole alert a for its handle.
func (f *Filter) encodeState(a *alert.Alert) string {
	m := &f.stateMsg
	m.Reset()
	upd, updated := a.Update, a.Updated
	a.Update, a.Updated = false, nil
	a.AddFields(m)
	a.Update, a.Updated = upd, updated
	f.stateBuf = codec.AppendJSON(f.stateBuf[:0], m)
	return string(f.stateBuf)
}

// isHandle reports whether the table at idx has the handle metatable.
func isHandle(l *golua.State, idx int) bool {
	idx = l.AbsIndex(idx)
	if !l.IsTable(idx) || !l.MetaTable(idx) {
		return false
	}
	l.Field(golua.RegistryIndex, handleMeta)
	same := l.RawEqual(-1, -2)
	l.Pop(2)
	return same
}

// handleID returns the id of the alert handle at idx.
func handleID(l *golua.State, idx int) (string, bool) {
	idx = l.AbsIndex(idx)
	if !isHandle(l, idx) {
		return "", false
	}
	l.Field(idx, "id")
	id, _ := l.ToString(-1)
	ok := l.TypeOf(-1) == golua.TypeString
	l.Pop(1)
	return id, ok
}

// handleAlert reads the alert a handle holds.
func (f *Filter) handleAlert(l *golua.State, idx int) (*alert.Alert, error) {
	idx = l.AbsIndex(idx)
	id, ok := handleID(l, idx)
	if !ok {
		return nil, fmt.Errorf("alert handle expected")
	}
	l.Field(idx, "state")
	state, _ := l.ToString(-1)
	l.Pop(1)
	m := &f.stateMsg
	if err := codec.DecodeJSON([]byte(state), m, nil); err != nil {
		return nil, fmt.Errorf("alert handle %s: its state is damaged: %v", id, err)
	}
	a, err := alert.Parse(m)
	if err != nil || a.ID != id {
		return nil, fmt.Errorf("alert handle %s: its state is damaged", id)
	}
	return a, nil
}

// reattachHandles gives the handles that preserve_data restored (tables
// {id = <alert id>, state = <string>} without a metatable) their
// metatable back, so that h:update{} works after a restart.
func reattachHandles(l *golua.State) int {
	seen := map[any]bool{}
	n := 0
	var walk func(idx, depth int)
	walk = func(idx, depth int) {
		idx = l.AbsIndex(idx)
		p := l.ToValue(idx)
		if seen[p] || depth > 64 {
			return
		}
		seen[p] = true
		if !l.MetaTable(idx) {
			l.Field(idx, "id")
			id, _ := l.ToString(-1)
			isID := l.TypeOf(-1) == golua.TypeString && alert.ValidID(id)
			l.Field(idx, "state")
			isState := l.TypeOf(-1) == golua.TypeString
			l.Pop(2)
			if isID && isState {
				l.Field(golua.RegistryIndex, handleMeta)
				l.SetMetaTable(idx)
				n++
				return
			}
		} else {
			l.Pop(1)
		}
		l.PushNil()
		for l.Next(idx) {
			if l.IsTable(-1) {
				walk(-1, depth+1)
			}
			l.Pop(1)
		}
	}
	l.PushGlobalTable()
	walk(-1, 0)
	l.Pop(1)
	return n
}

// alertNew is alert{…}.
func (f *Filter) alertNew(l *golua.State) int {
	golua.CheckType(l, 1, golua.TypeTable)
	a := &alert.Alert{}
	if _, err := parseAlert(l, 1, a); err != nil {
		golua.Errorf(l, "%s", err.Error())
	}
	a.ID = f.ids.New(f.callTime())
	f.emit(l, a)
	f.pushHandle(l, a)
	return 1
}

// alertUpdate is alert.update(handle, {…}) and handle:update{…}: the
// message holds the whole alert after the change, alert.updated names the
// keys the update replaced, and the text shows only those (Haka's).
func (f *Filter) alertUpdate(l *golua.State) int {
	a, err := f.handleAlert(l, 1)
	if err != nil {
		golua.ArgumentError(l, 1, err.Error())
	}
	golua.CheckType(l, 2, golua.TypeTable)
	u := &alert.Alert{}
	if _, err := parseAlert(l, 2, u); err != nil {
		golua.Errorf(l, "%s", err.Error())
	}
	a.Updated = a.Apply(u)
	a.Update = true
	f.emit(l, a)
	l.PushString(f.encodeState(a))
	l.SetField(1, "state")
	l.PushValue(1)
	return 1
}

// alertRaise is alert.raise(key, fields [, info]).
func (f *Filter) alertRaise(l *golua.State) int {
	if f.defs == nil {
		golua.Errorf(l, "alert.raise: no alert_definitions configured")
	}
	var d *alertdef.Def
	switch l.TypeOf(1) {
	case golua.TypeString:
		name, _ := l.ToString(1)
		d = f.defs.ByName(name)
	case golua.TypeNumber:
		k, _ := l.ToNumber(1)
		d = f.defs.ByKey(int(k))
	}
	if d == nil {
		s, _ := golua.ToStringMeta(l, 1)
		golua.Errorf(l, "alert.raise: unknown alert key '%s'", s)
	}
	if l.IsNoneOrNil(2) {
		l.NewTable()
		l.Replace(2)
	}
	golua.CheckType(l, 2, golua.TypeTable)
	if l.IsNoneOrNil(3) {
		l.SetTop(2)
		l.NewTable()
	}
	golua.CheckType(l, 3, golua.TypeTable)
	a := &alert.Alert{Key: d.Key, KeyName: d.Name, Title: d.Title}
	ctx, err := parseAlert(l, 2, a)
	if err != nil {
		golua.Errorf(l, "%s", err.Error())
	}
	if a.Severity == "" {
		a.Severity = d.Severity
	}
	if d.Sources != "" && len(a.Sources) == 0 {
		golua.Errorf(l, "%s: sources required (%s)", d.Name, d.Sources)
	}
	if d.Targets != "" && len(a.Targets) == 0 {
		golua.Errorf(l, "%s: targets required (%s)", d.Name, d.Targets)
	}
	l.Field(3, "context")
	switch {
	case l.IsNil(-1):
	case !l.IsTable(-1):
		golua.Errorf(l, "info.context: a table expected")
	default:
		if err := ctx.entries(-1); err != nil {
			golua.Errorf(l, "%s", err.Error())
		}
		a.Context = ctx.out
	}
	l.Pop(1)
	if !a.HasDescription {
		a.Description = f.describe(l, d)
		a.HasDescription = a.Description != ""
	}
	a.ID = f.ids.New(f.callTime())
	f.emit(l, a)
	f.pushHandle(l, a)
	return 1
}

// describe renders a definition's description: its function called as
// (ifid, alert, info), or its localized text with %{name} taken from info,
// then from the alert's fields.
func (f *Filter) describe(l *golua.State, d *alertdef.Def) string {
	if d.DescFunc {
		l.Field(golua.RegistryIndex, "tern.alertdefs")
		l.RawGetInt(-1, d.Key)
		l.Field(-1, "i18n_description")
		l.PushString(f.name())
		l.PushValue(2)
		l.PushValue(3)
		l.Call(3, 1)
		if l.TypeOf(-1) != golua.TypeString {
			golua.Errorf(l, "%s: i18n_description must return a string", d.Name)
		}
		s, _ := l.ToString(-1)
		l.Pop(3)
		return s
	}
	if d.DescKey == "" {
		return ""
	}
	return alertdef.Render(f.defs.Localize(d.DescKey), func(name string) (string, bool) {
		for _, idx := range []int{3, 2} {
			l.Field(idx, name)
			t := l.TypeOf(-1)
			var v string
			switch t {
			case golua.TypeString:
				v, _ = l.ToString(-1)
			case golua.TypeNumber:
				n, _ := l.ToNumber(-1)
				v = luaNumber(n)
			case golua.TypeBoolean:
				v = strconv.FormatBool(l.ToBoolean(-1))
			}
			l.Pop(1)
			if t == golua.TypeString || t == golua.TypeNumber || t == golua.TypeBoolean {
				return v, true
			}
		}
		return "", false
	})
}

func (f *Filter) name() string {
	if i := strings.IndexByte(f.set.Name, '.'); i >= 0 {
		return f.set.Name[i+1:]
	}
	return f.set.Name
}

func (f *Filter) emit(l *golua.State, a *alert.Alert) {
	m := a.Message(f.callTime(), f.set.Hostname, f.name())
	f.queue(l, m)
}

var alertKeys = map[string]bool{
	"start_time": true, "end_time": true, "description": true, "severity": true, "confidence": true,
	"completion": true, "method": true, "sources": true, "targets": true, "ref": true,
	"context": true, // tern's: alert.context.<name> fields
}

// tostr is Lua's tostring of the value at idx (for error messages).
func tostr(l *golua.State, idx int) string {
	s, _ := golua.ToStringMeta(l, idx)
	l.Pop(1)
	return s
}

// parseAlert validates Haka's alert table at idx into a; the errors are
// Haka's: unexpected field '<name>', invalid <field> value '<v>'. Besides
// Haka's keys it takes context = {…} and the protocol objects (http = {…}
// is context = {http = {…}}). It returns the context reader, for
// alert.raise's info.context.
func parseAlert(l *golua.State, idx int, a *alert.Alert) (*ctxReader, error) {
	idx = l.AbsIndex(idx)
	ctx := &ctxReader{l: l}
	var keys []string
	l.PushNil()
	for l.Next(idx) {
		k := tostr(l, -2)
		keys = append(keys, k)
		if l.TypeOf(-2) != golua.TypeString || !alertKeys[k] && !alert.IsEVEObject(k) {
			l.Pop(2)
			return nil, fmt.Errorf("unexpected field '%s'", k)
		}
		l.Pop(1)
	}
	sort.Strings(keys)
	for _, k := range keys {
		l.Field(idx, k)
		var err error
		switch {
		case k == "context":
			if !l.IsTable(-1) {
				err = invalid(l, k)
			} else {
				err = ctx.entries(-1)
			}
		case alert.IsEVEObject(k):
			err = ctx.entry(k, -1)
		default:
			err = parseAlertField(l, k, a)
		}
		l.Pop(1)
		if err != nil {
			return nil, err
		}
	}
	a.Context = ctx.out
	return ctx, nil
}

func invalid(l *golua.State, field string) error {
	return fmt.Errorf("invalid %s value '%s'", field, tostr(l, -1))
}

// parseAlertField reads the value on the stack top for key k.
func parseAlertField(l *golua.State, k string, a *alert.Alert) error {
	switch k {
	case "start_time", "end_time":
		ns, ok := sandbox.TimestampArg(l, -1)
		if !ok {
			return invalid(l, k)
		}
		if k == "start_time" {
			a.StartTime = &ns
		} else {
			a.EndTime = &ns
		}
	case "description":
		if t := l.TypeOf(-1); t != golua.TypeString && t != golua.TypeNumber {
			return invalid(l, k)
		}
		a.Description = tostr(l, -1)
		a.HasDescription = true
	case "severity":
		v := tostr(l, -1)
		if l.TypeOf(-1) != golua.TypeString || !alert.ValidLevel(v) {
			return invalid(l, k)
		}
		a.Severity = v
	case "confidence":
		switch l.TypeOf(-1) {
		case golua.TypeNumber:
			n, _ := l.ToNumber(-1)
			a.ConfidenceNum = &n
		case golua.TypeString:
			v := tostr(l, -1)
			if !alert.ValidLevel(v) {
				return invalid(l, k)
			}
			a.Confidence = v
		default:
			return invalid(l, k)
		}
	case "completion":
		v := tostr(l, -1)
		if l.TypeOf(-1) != golua.TypeString || !alert.ValidCompletion(v) {
			return invalid(l, k)
		}
		a.Completion = v
	case "method":
		if !l.IsTable(-1) {
			return invalid(l, k)
		}
		m, err := parseMethod(l, l.AbsIndex(-1))
		if err != nil {
			return err
		}
		a.Method = m
	case "sources", "targets":
		nodes, err := parseNodes(l, l.AbsIndex(-1), k)
		if err != nil {
			return err
		}
		if k == "sources" {
			a.Sources = nodes
		} else {
			a.Targets = nodes
		}
	case "ref":
		refs, err := parseRefs(l, l.AbsIndex(-1))
		if err != nil {
			return err
		}
		a.Refs = refs
	}
	return nil
}

func parseMethod(l *golua.State, idx int) (*alert.Method, error) {
	m := &alert.Method{}
	l.PushNil()
	for l.Next(idx) {
		k := tostr(l, -2)
		if l.TypeOf(-2) != golua.TypeString || (k != "description" && k != "ref") {
			l.Pop(2)
			return nil, fmt.Errorf("unexpected field '%s'", k)
		}
		l.Pop(1)
	}
	l.Field(idx, "description")
	if !l.IsNil(-1) {
		if t := l.TypeOf(-1); t != golua.TypeString && t != golua.TypeNumber {
			err := invalid(l, "method.description")
			l.Pop(1)
			return nil, err
		}
		m.Description = tostr(l, -1)
		m.HasDesc = true
	}
	l.Pop(1)
	l.Field(idx, "ref")
	defer l.Pop(1)
	switch l.TypeOf(-1) {
	case golua.TypeNil:
	case golua.TypeString, golua.TypeNumber:
		m.Ref = []string{tostr(l, -1)}
	case golua.TypeTable:
		n := golua.LengthEx(l, -1)
		for i := 1; i <= n; i++ {
			l.RawGetInt(-1, i)
			if t := l.TypeOf(-1); t != golua.TypeString && t != golua.TypeNumber {
				err := invalid(l, "method.ref")
				l.Pop(1)
				return nil, err
			}
			m.Ref = append(m.Ref, tostr(l, -1))
			l.Pop(1)
		}
	default:
		return nil, invalid(l, "method.ref")
	}
	return m, nil
}

// isNode reports whether the table at idx is an address or service node.
func isNode(l *golua.State, idx int) bool {
	if !l.IsTable(idx) {
		return false
	}
	l.Field(idx, "type")
	defer l.Pop(1)
	return l.TypeOf(-1) == golua.TypeString
}

func parseNodes(l *golua.State, idx int, field string) ([]alert.Node, error) {
	if !l.IsTable(idx) {
		return nil, invalid(l, field)
	}
	if isNode(l, idx) {
		n, err := parseNode(l, idx, field)
		if err != nil {
			return nil, err
		}
		return []alert.Node{n}, nil
	}
	var out []alert.Node
	n := golua.LengthEx(l, idx)
	for i := 1; i <= n; i++ {
		l.RawGetInt(idx, i)
		if !isNode(l, -1) {
			err := invalid(l, field)
			l.Pop(1)
			return nil, err
		}
		nd, err := parseNode(l, l.AbsIndex(-1), field)
		l.Pop(1)
		if err != nil {
			return nil, err
		}
		out = append(out, nd)
	}
	return out, nil
}

func parseNode(l *golua.State, idx int, field string) (alert.Node, error) {
	l.Field(idx, "type")
	typ, _ := l.ToString(-1)
	l.Pop(1)
	if typ != alert.NodeAddress && typ != alert.NodeService {
		l.PushValue(idx)
		err := invalid(l, field)
		l.Pop(1)
		return alert.Node{}, err
	}
	nd := alert.Node{Type: typ}
	l.Field(idx, "values")
	defer l.Pop(1)
	if !l.IsTable(-1) {
		return nd, invalid(l, field)
	}
	n := golua.LengthEx(l, -1)
	for i := 1; i <= n; i++ {
		l.RawGetInt(-1, i)
		nd.Values = append(nd.Values, tostr(l, -1))
		l.Pop(1)
	}
	return nd, nil
}

// parseRefs reads ref: alert handles or alert ids, one or a list.
func parseRefs(l *golua.State, idx int) ([]string, error) {
	one := func(i int) (string, error) {
		if id, ok := handleID(l, i); ok {
			return id, nil
		}
		if s, ok := l.ToString(i); ok && l.TypeOf(i) == golua.TypeString && alert.ValidID(s) {
			return s, nil
		}
		l.PushValue(i)
		err := invalid(l, "ref")
		l.Pop(1)
		return "", err
	}
	if isHandle(l, idx) || !l.IsTable(idx) {
		id, err := one(idx)
		if err != nil {
			return nil, err
		}
		return []string{id}, nil
	}
	var out []string
	n := golua.LengthEx(l, idx)
	for i := 1; i <= n; i++ {
		l.RawGetInt(idx, i)
		id, err := one(l.AbsIndex(-1))
		l.Pop(1)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}
