package sandbox

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	lua "github.com/Shopify/go-lua"
)

// The measurement of a State: what the script holds, found by walking
// everything reachable from the State's roots (registry, metatables of the
// basic types, the whole stack with the stale slots above its top, since
// they pin what they point to) and adding up estimated Go heap sizes.
//
// go-lua's API cannot do this: lua_next over a table's hash part is
// quadratic there (each call searches the key it resumes from) and
// allocates a key list kept on the table, and locals of outer frames are not
// reachable at all. So the walker reads go-lua's internal structures,
// read-only, at field offsets it looks up by name with reflect and checks
// against a scratch State once per process (layout below). A go-lua upgrade
// that changes them makes every Load fail with a clear error, and the tests
// fail, rather than measure wrong.
//
// Sizes are estimates of what the Go heap holds, rounded the way the
// allocator does for small objects where it matters:
//   - a number or string in a slot is boxed: 8 bytes for a float64, 16 for
//     a string header plus the bytes (long strings once per backing array);
//   - a table is its struct, 16 bytes per array slot and per cached
//     iteration key, and its Go map (48 bytes, one 8-slot group once used,
//     then about 72 bytes per entry);
//   - closures, upvalues, userdata and function prototypes (code,
//     constants, debug info) their structs and slices;
//   - userdata whose value is Sized count MemSize().
//
// Not seen: capacity a Go map keeps after keys are deleted (maps never
// shrink), and Go values behind userdata that are not Sized.

// layout is where the fields the walker reads sit in go-lua's structs.
type layout struct {
	// value types, as the type word of an interface holding them
	tTable, tLuaClosure, tGoClosure, tGoFunction, tUserData, tState, tStackLoc unsafe.Pointer

	stStack, stTop, stStackLast, stGlobal, stBaseCI uintptr // State
	glRegistry, glMetaTables                        uintptr // globalState
	nMetaTables                                     int
	tbArray, tbHash, tbMeta, tbIterKeys             uintptr // table
	tableSize                                       int64
	lcProto, lcUpValues                             uintptr // luaClosure
	uvHome                                          uintptr // upValue
	gcUpValues                                      uintptr // goClosure
	udMeta, udEnv, udData                           uintptr // userData
	ptConstants, ptCode, ptProtos, ptLines          uintptr // prototype
	ptLocals, ptUpValues, ptCache, ptSource         uintptr
	protoSize, localSize, upDescSize                int64
	ciNext                                          uintptr // callInfo
}

var (
	layoutOnce sync.Once
	theLayout  *layout
	layoutErr  error
)

// goLuaLayout returns the layout, or why go-lua's internals are not the
// ones the walker knows.
func goLuaLayout() (*layout, error) {
	layoutOnce.Do(func() {
		theLayout, layoutErr = findLayout()
		if layoutErr != nil {
			layoutErr = fmt.Errorf("memory accounting: go-lua's internal layout is not the expected one (%w); update internal/sandbox/walk.go", layoutErr)
		}
	})
	return theLayout, layoutErr
}

// field returns the offset of name in struct t after checking its kind.
func field(t reflect.Type, name string, kind reflect.Kind) (reflect.StructField, error) {
	f, ok := t.FieldByName(name)
	if !ok || len(f.Index) != 1 {
		return f, fmt.Errorf("%s.%s missing", t.Name(), name)
	}
	if f.Type.Kind() != kind {
		return f, fmt.Errorf("%s.%s is a %s, not a %s", t.Name(), name, f.Type.Kind(), kind)
	}
	return f, nil
}

// isValueSlice reports whether t is a slice of empty interfaces (go-lua's
// []value), which the walker reads as []any.
func isValueSlice(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Interface && t.Elem().NumMethod() == 0
}

func typeWord(v any) unsafe.Pointer { return (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[0] }
func dataWord(v any) unsafe.Pointer { return (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1] }

func findLayout() (*layout, error) {
	var lay layout
	var errs []error
	off := func(t reflect.Type, name string, kind reflect.Kind) (uintptr, reflect.Type) {
		f, err := field(t, name, kind)
		if err != nil {
			errs = append(errs, err)
			return 0, nil
		}
		return f.Offset, f.Type
	}
	slice := func(t reflect.Type, name string) uintptr {
		o, ft := off(t, name, reflect.Slice)
		if ft != nil && !isValueSlice(ft) {
			errs = append(errs, fmt.Errorf("%s.%s is not a []value", t.Name(), name))
		}
		return o
	}
	st := reflect.TypeFor[lua.State]()
	lay.stStack = slice(st, "stack")
	lay.stTop, _ = off(st, "top", reflect.Int)
	lay.stStackLast, _ = off(st, "stackLast", reflect.Int)
	var glT, ciT reflect.Type
	lay.stGlobal, glT = off(st, "global", reflect.Pointer)
	lay.stBaseCI, ciT = off(st, "baseCallInfo", reflect.Struct)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	glT = glT.Elem()
	var tblT, metasT reflect.Type
	lay.glRegistry, tblT = off(glT, "registry", reflect.Pointer)
	lay.glMetaTables, metasT = off(glT, "metaTables", reflect.Array)
	lay.ciNext, _ = off(ciT, "next", reflect.Pointer)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if metasT.Elem() != tblT {
		return nil, errors.New("globalState.metaTables does not hold tables")
	}
	lay.nMetaTables = metasT.Len()
	tblT = tblT.Elem()
	lay.tableSize = int64(tblT.Size())
	lay.tbArray = slice(tblT, "array")
	var hashT reflect.Type
	lay.tbHash, hashT = off(tblT, "hash", reflect.Map)
	lay.tbMeta, _ = off(tblT, "metaTable", reflect.Pointer)
	lay.tbIterKeys = slice(tblT, "iterationKeys")
	if hashT != nil && (hashT.Key().Kind() != reflect.Interface || hashT.Elem().Kind() != reflect.Interface) {
		errs = append(errs, errors.New("table.hash is not a map[value]value"))
	}

	// The dynamic types of values, from a scratch State.
	l := lua.NewState()
	probe := func(push func()) any {
		push()
		v := topValue(l, &lay)
		l.Pop(1)
		return v
	}
	tbl := probe(l.NewTable)
	if reflect.TypeOf(tbl) != reflect.PointerTo(tblT) {
		errs = append(errs, fmt.Errorf("a table is a %T", tbl))
	}
	lay.tTable = typeWord(tbl)
	if err := lua.LoadString(l, "local u = {} return function() return u end"); err != nil {
		return nil, err
	}
	l.Call(0, 1)
	lc := probe(func() {})
	lay.tLuaClosure = typeWord(lc)
	gc := probe(func() { l.PushNil(); l.PushGoClosure(func(*lua.State) int { return 0 }, 1) })
	lay.tGoClosure = typeWord(gc)
	lay.tGoFunction = typeWord(probe(func() { l.PushGoFunction(func(*lua.State) int { return 0 }) }))
	ud := probe(func() { l.PushUserData(nullSentinel{}) })
	lay.tUserData = typeWord(ud)
	lay.tState = typeWord(probe(func() { l.PushThread() }))
	for _, v := range []any{tbl, lc, gc, ud} {
		if t := reflect.TypeOf(v); t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
			errs = append(errs, fmt.Errorf("a value of type %T", v))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	lcT := reflect.TypeOf(lc).Elem()
	var protoT, uvsT reflect.Type
	lay.lcProto, protoT = off(lcT, "prototype", reflect.Pointer)
	lay.lcUpValues, uvsT = off(lcT, "upValues", reflect.Slice)
	lay.gcUpValues = slice(reflect.TypeOf(gc).Elem(), "upValues")
	udT := reflect.TypeOf(ud).Elem()
	lay.udMeta, _ = off(udT, "metaTable", reflect.Pointer)
	lay.udEnv, _ = off(udT, "env", reflect.Pointer)
	lay.udData, _ = off(udT, "data", reflect.Interface)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if uvsT.Elem().Kind() != reflect.Pointer || uvsT.Elem().Elem().Kind() != reflect.Struct {
		return nil, errors.New("luaClosure.upValues is not a slice of pointers")
	}
	uvT := uvsT.Elem().Elem()
	lay.uvHome, _ = off(uvT, "home", reflect.Interface)
	protoT = protoT.Elem()
	lay.protoSize = int64(protoT.Size())
	lay.ptConstants = slice(protoT, "constants")
	var codeT, protosT, linesT, localsT, upsT reflect.Type
	lay.ptCode, codeT = off(protoT, "code", reflect.Slice)
	lay.ptProtos, protosT = off(protoT, "prototypes", reflect.Slice)
	lay.ptLines, linesT = off(protoT, "lineInfo", reflect.Slice)
	lay.ptLocals, localsT = off(protoT, "localVariables", reflect.Slice)
	lay.ptUpValues, upsT = off(protoT, "upValues", reflect.Slice)
	var cacheT reflect.Type
	lay.ptCache, cacheT = off(protoT, "cache", reflect.Pointer)
	lay.ptSource, _ = off(protoT, "source", reflect.String)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	switch {
	case codeT.Elem().Size() != 4:
		errs = append(errs, errors.New("prototype.code is not 32-bit instructions"))
	case protosT.Elem() != protoT:
		errs = append(errs, errors.New("prototype.prototypes is not a []prototype"))
	case linesT.Elem().Size() != 4:
		errs = append(errs, errors.New("prototype.lineInfo is not a []int32"))
	case cacheT.Elem() != lcT:
		errs = append(errs, errors.New("prototype.cache is not a luaClosure"))
	}
	lay.localSize = int64(localsT.Elem().Size())
	lay.upDescSize = int64(upsT.Elem().Size())

	// An open upvalue's home is a stack location: see one by handing a
	// closure to Go while its upvalue's variable is still on the stack.
	if err := lua.LoadString(l, "local x = 1 local function f() return x end return (...)(f)"); err != nil {
		return nil, err
	}
	l.PushGoFunction(func(l *lua.State) int {
		uvs := *(*[]unsafe.Pointer)(unsafe.Add(dataWord(topValue(l, &lay)), lay.lcUpValues))
		if len(uvs) == 1 {
			lay.tStackLoc = typeWord(*(*any)(unsafe.Add(uvs[0], lay.uvHome)))
		}
		return 0
	})
	l.Call(1, 0)
	if lay.tStackLoc == nil {
		errs = append(errs, errors.New("no open upvalue seen"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &lay, nil
}

// topValue is the value on top of l's stack, as go-lua holds it.
func topValue(l *lua.State, lay *layout) any {
	p := unsafe.Pointer(l)
	return (*(*[]any)(unsafe.Add(p, lay.stStack)))[*(*int)(unsafe.Add(p, lay.stTop))-1]
}

// Estimated sizes of go-lua's small objects (struct plus allocator
// rounding).
const (
	sizeNumber    = 16 // a boxed float64: 8 bytes, but a 16-byte tiny block stays live for it
	sizeStrHeader = 16 // a boxed string header
	sizeSlot      = 16 // an interface value in a slice or map
	sizeMap       = 48 // a Go map's header
	sizeMapGroup  = 8 + 8*2*sizeSlot
	// sizeMapEntry is a map entry: 33 bytes a slot (key, value, control
	// byte) at a load between 7/16 and 7/8 as the map grows; measured
	// 48 to 86 bytes an entry, 67 on average, so a little over that.
	sizeMapEntry = 72
	sizeClosure  = 32
	sizeUpValue  = 16
	sizeUserData = 48
	sizeGoFunc   = 16
	sizeCallInfo = 160 // callInfo with its luaCallInfo
	// longString is the length from which the walker counts a string's
	// bytes once per backing array rather than once per value.
	longString = 64
	// keepSeen is the size up to which the walker keeps its sets between
	// measurements; larger ones are dropped so a big State once measured
	// does not leave them behind.
	keepSeen = 1 << 14
)

const (
	kTable = iota
	kLuaClosure
	kGoClosure
	kUserData
	kProto
)

type workItem struct {
	kind uint8
	p    unsafe.Pointer
}

// walker measures a State; its sets are reused between measurements.
type walker struct {
	lay   *layout
	seen  map[unsafe.Pointer]struct{}
	strs  map[unsafe.Pointer]struct{}
	work  []workItem
	n     int64 // bytes
	sized int64 // bytes of Sized userdata (part of n)
	objs  int   // objects visited by the last walk
	// lastSeen is the size of the last walk's set
	lastSeen int
	stack    int // slots in the stack
}

// measure returns the estimated bytes held by l.
func (w *walker) measure(l *lua.State) int64 {
	lay := w.lay
	if w.seen == nil {
		// Sized for the last walk: growing a map costs more than the walk.
		w.seen = make(map[unsafe.Pointer]struct{}, w.lastSeen+w.lastSeen/8)
		w.strs = map[unsafe.Pointer]struct{}{}
	}
	w.n, w.sized, w.objs = 0, 0, 0
	p := unsafe.Pointer(l)
	stack := *(*[]any)(unsafe.Add(p, lay.stStack))
	w.stack = len(stack)
	w.n += int64(cap(stack)) * sizeSlot
	for _, v := range stack {
		w.value(v)
	}
	for ci := *(*unsafe.Pointer)(unsafe.Add(p, lay.stBaseCI+lay.ciNext)); ci != nil; ci = *(*unsafe.Pointer)(unsafe.Add(ci, lay.ciNext)) {
		w.n += sizeCallInfo
	}
	g := *(*unsafe.Pointer)(unsafe.Add(p, lay.stGlobal))
	w.ref(kTable, *(*unsafe.Pointer)(unsafe.Add(g, lay.glRegistry)))
	metas := unsafe.Slice((*unsafe.Pointer)(unsafe.Add(g, lay.glMetaTables)), lay.nMetaTables)
	for _, t := range metas {
		w.ref(kTable, t)
	}
	for len(w.work) > 0 {
		it := w.work[len(w.work)-1]
		w.work = w.work[:len(w.work)-1]
		w.visit(it)
	}
	clear(w.work[:cap(w.work)]) // what was popped must not stay reachable from here
	w.lastSeen = len(w.seen)
	if len(w.seen) > keepSeen {
		w.seen, w.strs = nil, nil
	} else {
		clear(w.seen)
		clear(w.strs)
	}
	if cap(w.work) > keepSeen {
		w.work = nil
	}
	return w.n
}

// ref queues the object p of kind k unless it was seen.
func (w *walker) ref(k uint8, p unsafe.Pointer) {
	if p == nil {
		return
	}
	if _, ok := w.seen[p]; ok {
		return
	}
	w.seen[p] = struct{}{}
	w.work = append(w.work, workItem{k, p})
}

// value counts what a slot holding v points to (the slot is counted by its
// container).
func (w *walker) value(v any) {
	switch x := v.(type) {
	case nil, bool:
	case float64:
		w.n += sizeNumber
	case string:
		w.str(x)
	default:
		lay := w.lay
		switch t := typeWord(v); t {
		case lay.tTable:
			w.ref(kTable, dataWord(v))
		case lay.tLuaClosure:
			w.ref(kLuaClosure, dataWord(v))
		case lay.tGoClosure:
			w.ref(kGoClosure, dataWord(v))
		case lay.tUserData:
			w.ref(kUserData, dataWord(v))
		case lay.tGoFunction:
			w.n += sizeGoFunc
		}
	}
}

func (w *walker) str(s string) {
	w.n += sizeStrHeader
	if len(s) < longString {
		// Short strings share 16-byte blocks with other small objects,
		// which garbage does not free while one lives.
		w.n += int64(len(s)+15) &^ 15
		return
	}
	d := unsafe.Pointer(unsafe.StringData(s))
	if _, ok := w.strs[d]; ok {
		return
	}
	w.strs[d] = struct{}{}
	w.n += int64(len(s))
}

func mapSize(n int) int64 {
	switch {
	case n == 0:
		return sizeMap
	case n <= 8:
		return sizeMap + sizeMapGroup
	}
	return sizeMap + int64(n)*sizeMapEntry
}

func (w *walker) visit(it workItem) {
	lay, p := w.lay, it.p
	w.objs++
	switch it.kind {
	case kTable:
		arr := *(*[]any)(unsafe.Add(p, lay.tbArray))
		hash := *(*map[any]any)(unsafe.Add(p, lay.tbHash))
		keys := *(*[]any)(unsafe.Add(p, lay.tbIterKeys))
		w.n += lay.tableSize + int64(cap(arr)+cap(keys))*sizeSlot + mapSize(len(hash))
		for _, v := range arr {
			w.value(v)
		}
		for k, v := range hash {
			w.value(k)
			w.value(v)
		}
		w.ref(kTable, *(*unsafe.Pointer)(unsafe.Add(p, lay.tbMeta)))
	case kLuaClosure:
		uvs := *(*[]unsafe.Pointer)(unsafe.Add(p, lay.lcUpValues))
		w.n += sizeClosure + int64(cap(uvs))*8
		for _, uv := range uvs {
			if uv == nil {
				continue
			}
			if _, ok := w.seen[uv]; ok {
				continue
			}
			w.seen[uv] = struct{}{}
			w.n += sizeUpValue
			if home := *(*any)(unsafe.Add(uv, lay.uvHome)); typeWord(home) != lay.tStackLoc {
				w.value(home) // closed: the upvalue holds the value
			}
		}
		w.ref(kProto, *(*unsafe.Pointer)(unsafe.Add(p, lay.lcProto)))
	case kGoClosure:
		uvs := *(*[]any)(unsafe.Add(p, lay.gcUpValues))
		w.n += sizeClosure + int64(cap(uvs))*sizeSlot
		for _, v := range uvs {
			w.value(v)
		}
	case kUserData:
		w.n += sizeUserData
		w.ref(kTable, *(*unsafe.Pointer)(unsafe.Add(p, lay.udMeta)))
		w.ref(kTable, *(*unsafe.Pointer)(unsafe.Add(p, lay.udEnv)))
		if sz, ok := (*(*any)(unsafe.Add(p, lay.udData))).(Sized); ok {
			n := max(sz.MemSize(), 0)
			w.n += n
			w.sized += n
		}
	case kProto:
		consts := *(*[]any)(unsafe.Add(p, lay.ptConstants))
		code := *(*[]uint32)(unsafe.Add(p, lay.ptCode))
		lines := *(*[]int32)(unsafe.Add(p, lay.ptLines))
		locals := (*sliceHeader)(unsafe.Add(p, lay.ptLocals))
		ups := (*sliceHeader)(unsafe.Add(p, lay.ptUpValues))
		protos := (*sliceHeader)(unsafe.Add(p, lay.ptProtos))
		w.n += int64(cap(consts))*sizeSlot + int64(cap(code)+cap(lines))*4 +
			int64(locals.cap)*lay.localSize + int64(ups.cap)*lay.upDescSize + int64(protos.cap)*lay.protoSize
		for _, v := range consts {
			w.value(v)
		}
		w.str(*(*string)(unsafe.Add(p, lay.ptSource)))
		for i := range protos.len {
			w.ref(kProto, unsafe.Add(protos.data, uintptr(i)*uintptr(lay.protoSize)))
		}
		w.ref(kLuaClosure, *(*unsafe.Pointer)(unsafe.Add(p, lay.ptCache)))
	}
}

type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}
