// Package alertdef loads ntopng-style alert definitions (formats.md §6): a
// directory of Lua files, each returning
//
//	{ alert_key = alert_keys.builtin.alert_ssh_bruteforce,  -- or alert_keys.user.<name>
//	  i18n_title = "alerts.ssh_bruteforce.title",           -- catalog key, or plain text
//	  i18n_description = "alerts.ssh_bruteforce.description", -- or function(ifid, alert, info)
//	  icon = "fas fa-user-secret",
//	  severity = "high",          -- optional default severity (low, medium, high)
//	  sources = "attacker",       -- optional: raising requires source nodes (their role)
//	  targets = "victim" }        -- optional: raising requires target nodes
//
// Keys come from two namespaces: builtin (tern's, below 32768, listed in
// BuiltinKeys and never renumbered; also named alert_keys.ntopng, as in
// ntopng's definitions) and user (32768 and up, declared by the directory's
// alert_keys.lua, which returns { user = { alert_name = 32768, … } }).
// Every key is unique across both, and every definition must use a declared
// key and a key no other definition uses: the load error names both files.
// A definition may start as ntopng's do, local alert_keys = require
// "alert_keys", and its description function may call i18n(key [, params]).
// Loading calls each description function once with stand-in arguments, so
// a call to an undefined function is a load error with its file and line.
//
// Titles and descriptions are localized through catalogs: Lua files
// returning nested tables, looked up by dotted key. The order is the
// directory's locales/<locale>.lua, tern's built-in catalog for <locale>, the
// directory's locales/en.lua, tern's built-in English, and finally the text
// itself. Descriptions may hold %{name} placeholders filled from the
// alert's parameters.
package alertdef

import (
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	lua "github.com/Shopify/go-lua"

	"github.com/ternlog/tern/internal/sandbox"
)

// UserKeyBase is the first key of the user namespace.
const UserKeyBase = 32768

// Namespaces.
const (
	Builtin = "builtin"
	User    = "user"
)

// KeysFile is the name of a directory's user keys table.
const KeysFile = "alert_keys.lua"

// DefaultLocale is the catalog of last resort.
const DefaultLocale = "en"

// BuiltinKeys are tern's own alert keys. They never change between releases;
// new ones are appended.
var BuiltinKeys = []struct {
	Name string
	Key  int
}{
	{"alert_ssh_bruteforce", 1},
	{"alert_auth_failure_burst", 2},
	{"alert_threshold_exceeded", 3},
	{"alert_flow_flood_attacker", 4},
	{"alert_flow_flood_victim", 5},
	{"alert_repeated", 6},
}

// BuiltinKey returns the key of a builtin name.
func BuiltinKey(name string) (int, bool) {
	for _, k := range BuiltinKeys {
		if k.Name == name {
			return k.Key, true
		}
	}
	return 0, false
}

//go:embed locales/*.lua
var builtinLocales embed.FS

// Def is one alert definition.
type Def struct {
	Key       int    `json:"key"`
	Name      string `json:"key_string"` // the key's name, e.g. alert_ssh_bruteforce
	Namespace string `json:"namespace"`
	File      string `json:"file"`
	TitleKey  string `json:"i18n_title"`
	Title     string `json:"title"` // localized
	// DescKey is the i18n_description string; DescFunc reports a function.
	DescKey  string `json:"i18n_description,omitempty"`
	DescFunc bool   `json:"description_function,omitempty"`
	Icon     string `json:"icon,omitempty"`
	Severity string `json:"severity,omitempty"`
	Sources  string `json:"sources,omitempty"`
	Targets  string `json:"targets,omitempty"`
}

// Set is a loaded definitions directory.
type Set struct {
	Dir    string
	Locale string
	Defs   []*Def // sorted by key
	// Keys maps every declared key name (both namespaces) to its number.
	Keys   map[string]int
	byKey  map[int]*Def
	byName map[string]*Def
	// catalogs in lookup order
	catalogs []map[string]string
}

// ByName returns the definition of a key name.
func (s *Set) ByName(name string) *Def { return s.byName[name] }

// ByKey returns the definition of a key.
func (s *Set) ByKey(key int) *Def { return s.byKey[key] }

// Namespace returns the namespace of a key.
func Namespace(key int) string {
	if key >= UserKeyBase {
		return User
	}
	return Builtin
}

// Localize resolves a catalog key through the fallback chain; text that is
// no key is returned as it is.
func (s *Set) Localize(key string) string {
	for _, c := range s.catalogs {
		if v, ok := c[key]; ok {
			return v
		}
	}
	return key
}

// Render fills %{name} placeholders from params (missing ones stay as
// written).
func Render(tmpl string, params func(string) (string, bool)) string {
	if !strings.Contains(tmpl, "%{") {
		return tmpl
	}
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "%{")
		if i < 0 {
			break
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(tmpl[:i])
		name := tmpl[i+2 : i+j]
		if v, ok := params(name); ok {
			b.WriteString(v)
		} else {
			b.WriteString(tmpl[i : i+j+1])
		}
		tmpl = tmpl[i+j+1:]
	}
	b.WriteString(tmpl)
	return b.String()
}

// Load reads the definitions in dir for locale ("" is English). It does not
// keep description functions: the Lua filter runs the files again in its
// own State for those. The error lists every problem found.
func Load(dir, locale string) (*Set, error) {
	if locale == "" {
		locale = DefaultLocale
	}
	set := &Set{Dir: dir, Locale: locale, Keys: map[string]int{}, byKey: map[int]*Def{}, byName: map[string]*Def{}}
	for _, k := range BuiltinKeys {
		set.Keys[k.Name] = k.Key
	}
	sb := sandbox.New(sandbox.Config{Name: "alert definitions"}, "alertdef", "", func(sb *sandbox.Sandbox) error {
		WrapRequire(sb.State())
		OpenI18n(sb.State(), set, locale)
		return nil
	})
	if _, err := sb.Load(); err != nil {
		return nil, err
	}
	var errs []error
	keysPath := filepath.Join(dir, KeysFile)
	userKeys, err := loadUserKeys(sb, keysPath)
	if err != nil {
		errs = append(errs, err)
	}
	for _, k := range userKeys {
		if other, dup := set.Keys[k.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: user key %s is also a builtin key (%d)", keysPath, k.Name, other))
			continue
		}
		set.Keys[k.Name] = k.Key
	}
	byNumber := map[int]string{}
	for name, key := range set.Keys {
		if prev, dup := byNumber[key]; dup {
			a, b := prev, name
			if a > b {
				a, b = b, a
			}
			errs = append(errs, fmt.Errorf("%s: key %d is declared twice (%s and %s)", keysPath, key, a, b))
			continue
		}
		byNumber[key] = name
	}

	// catalogs: dir's locale, builtin locale, dir's English, builtin English
	langs := []string{locale}
	if locale != DefaultLocale {
		langs = append(langs, DefaultLocale)
	}
	for _, lang := range langs {
		for _, builtin := range []bool{false, true} {
			c, err := loadCatalog(sb, dir, lang, builtin)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if c != nil {
				set.catalogs = append(set.catalogs, c)
			}
		}
	}

	files, err := filepath.Glob(filepath.Join(dir, "*.lua"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("alert definitions: %w", err)
	}
	sort.Strings(files)
	for _, file := range files {
		if filepath.Base(file) == KeysFile {
			continue
		}
		d, err := loadDef(sb, file, keysPath, set.Keys)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d.Name = byNumber[d.Key]
		if d.Name == "" {
			errs = append(errs, fmt.Errorf("%s: alert_key %d is not declared: neither a builtin key nor a user key of %s", file, d.Key, keysPath))
			continue
		}
		if prev := set.byKey[d.Key]; prev != nil {
			errs = append(errs, fmt.Errorf("%s: alert_key %d (%s) is already defined by %s", file, d.Key, d.Name, prev.File))
			continue
		}
		d.Namespace = Namespace(d.Key)
		d.Title = set.Localize(d.TitleKey)
		set.byKey[d.Key] = d
		set.byName[d.Name] = d
		set.Defs = append(set.Defs, d)
	}
	sort.Slice(set.Defs, func(i, j int) bool { return set.Defs[i].Key < set.Defs[j].Key })
	if len(errs) > 0 {
		return set, errors.Join(errs...)
	}
	return set, nil
}

type namedKey struct {
	Name string
	Key  int
}

func loadUserKeys(sb *sandbox.Sandbox, path string) ([]namedKey, error) {
	src, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []namedKey
	var problems []string
	err = sb.DoChunk(path, string(src), 1, func(l *lua.State) error {
		if !l.IsTable(-1) {
			return errors.New("must return a table { user = { alert_name = 32768, … } }")
		}
		l.PushNil()
		for l.Next(-2) {
			ns, _ := l.ToString(-2)
			if l.TypeOf(-2) != lua.TypeString || (ns != User && ns != Builtin) || !l.IsTable(-1) {
				problems = append(problems, "only a user table of keys is allowed at the top level")
				l.Pop(1)
				continue
			}
			if ns == Builtin {
				problems = append(problems, "builtin keys are tern's; declare yours under user")
				l.Pop(1)
				continue
			}
			l.PushNil()
			for l.Next(-2) {
				name, _ := l.ToString(-2)
				f, ok := l.ToNumber(-1)
				switch {
				case l.TypeOf(-2) != lua.TypeString || !strings.HasPrefix(name, "alert_"):
					problems = append(problems, fmt.Sprintf("key names start with alert_ (got %q)", name))
				case !ok || l.TypeOf(-1) != lua.TypeNumber || f != float64(int(f)):
					problems = append(problems, fmt.Sprintf("%s: the key must be an integer", name))
				case int(f) < UserKeyBase || f > 1<<31:
					problems = append(problems, fmt.Sprintf("%s: user keys are %d or more (got %d)", name, UserKeyBase, int(f)))
				default:
					out = append(out, namedKey{name, int(f)})
				}
				l.Pop(1)
			}
			l.Pop(1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return out, fmt.Errorf("%s: %s", path, strings.Join(problems, "; "))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// PushKeys sets the global alert_keys = {builtin = {…}, user = {…}},
// with ntopng as another name of builtin (ntopng's definitions say
// alert_keys.ntopng.<name>), and makes it what require "alert_keys"
// returns (WrapRequire).
func PushKeys(l *lua.State, keys map[string]int) {
	l.NewTable()
	l.NewTable()
	l.NewTable()
	for name, key := range keys {
		l.PushInteger(key)
		if key >= UserKeyBase {
			l.SetField(-2, name)
		} else {
			l.SetField(-3, name)
		}
	}
	l.SetField(-3, User)
	l.PushValue(-1)
	l.SetField(-3, NtopngNamespace)
	l.SetField(-2, Builtin)
	l.PushValue(-1)
	l.SetField(lua.RegistryIndex, keysRegistry)
	l.SetGlobal("alert_keys")
}

// NtopngNamespace is ntopng's name of the builtin namespace.
const NtopngNamespace = "ntopng"

const keysRegistry = "tern.alert_keys"

// WrapRequire makes require "alert_keys" return the alert_keys table, as
// ntopng's definitions load it (local alert_keys = require "alert_keys");
// other names go to the require the State had.
func WrapRequire(l *lua.State) {
	l.Global("require")
	l.PushGoClosure(func(l *lua.State) int {
		if name, ok := l.ToString(1); ok && l.TypeOf(1) == lua.TypeString && name == "alert_keys" {
			l.Field(lua.RegistryIndex, keysRegistry)
			return 1
		}
		if l.IsNil(lua.UpValueIndex(1)) {
			lua.Errorf(l, "require: module %q not found", lua.CheckString(l, 1))
		}
		l.PushValue(lua.UpValueIndex(1))
		l.Insert(1)
		l.Call(l.Top()-1, 1)
		return 1
	}, 1)
	l.SetGlobal("require")
}

// OpenI18n sets the global i18n(key [, params]) of ntopng's descriptions:
// key localized through set's catalogs (tern's own for locale when set is
// nil), then %{name} placeholders filled from the params table.
func OpenI18n(l *lua.State, set *Set, locale string) {
	if set == nil {
		set = builtinSet(locale)
	}
	l.Register("i18n", func(l *lua.State) int {
		key := lua.CheckString(l, 1)
		text := set.Localize(key)
		if l.IsTable(2) {
			text = Render(text, func(name string) (string, bool) {
				l.Field(2, name)
				defer l.Pop(1)
				switch l.TypeOf(-1) {
				case lua.TypeString, lua.TypeNumber:
					s, _ := l.ToString(-1)
					return s, true
				case lua.TypeBoolean:
					return strconv.FormatBool(l.ToBoolean(-1)), true
				}
				return "", false
			})
		}
		l.PushString(text)
		return 1
	})
}

var defFields = map[string]bool{
	"alert_key": true, "i18n_title": true, "i18n_description": true, "icon": true,
	"severity": true, "sources": true, "targets": true,
}

func loadDef(sb *sandbox.Sandbox, file, keysPath string, keys map[string]int) (*Def, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	PushKeys(sb.State(), keys)
	d := &Def{File: file}
	var probeErr error // names its file and line already
	err = sb.DoChunk(file, string(src), 1, func(l *lua.State) error {
		if !l.IsTable(-1) {
			return errors.New("must return a table with alert_key and i18n_title")
		}
		if err := ReadDef(l, -1, d); err != nil {
			return err
		}
		if d.DescFunc {
			probeErr = probeDescription(l, l.AbsIndex(-1), file)
		}
		return nil
	})
	if err != nil {
		if d.Key == 0 {
			return nil, fmt.Errorf("%s: %v (declared keys: tern's builtin ones and the user ones of %s)", file, err, keysPath)
		}
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if probeErr != nil {
		return nil, probeErr
	}
	return d, nil
}

// probeDescription calls the i18n_description function of the definition
// table at idx once, as alert.raise would, with stand-in arguments and
// reading an undefined global made an error, so that loading (and `tern
// check`) catches a call to a function that does not exist (a misspelt
// i18n) with its file and line. Other errors are the stand-in data's and
// are ignored: the alert's own values are only known when it is raised.
func probeDescription(l *lua.State, idx int, file string) error {
	var undefined string
	l.PushGlobalTable()
	hadMeta := l.MetaTable(-1)
	if hadMeta {
		l.Pop(2)
		return nil // the definitions' globals are their own business
	}
	l.NewTable()
	l.PushGoFunction(func(l *lua.State) int {
		name, _ := l.ToString(2)
		// The whole path, where Lua's short source would cut a long one.
		where := file
		if ar, ok := lua.Stack(l, 1); ok {
			if d, ok := lua.Info(l, "l", ar); ok && d.CurrentLine > 0 {
				where = fmt.Sprintf("%s:%d", file, d.CurrentLine)
			}
		}
		undefined = fmt.Sprintf("%s: i18n_description: undefined global '%s'", where, name)
		lua.Errorf(l, "undefined global '%s'", name)
		return 0
	})
	l.SetField(-2, "__index")
	l.SetMetaTable(-2)
	l.Pop(1)
	defer func() {
		l.PushGlobalTable()
		l.PushNil()
		l.SetMetaTable(-2)
		l.Pop(1)
	}()

	l.Field(idx, "i18n_description")
	l.PushString("check")
	pushProbe(l)
	pushProbe(l)
	if err := l.ProtectedCall(3, 1, 0); err != nil {
		l.Pop(1)
	} else {
		l.Pop(1)
	}
	if undefined != "" {
		return errors.New(undefined)
	}
	return nil
}

// pushProbe pushes a stand-in alert or info table: every key reads as
// "0", which works as a string and as a number.
func pushProbe(l *lua.State) {
	l.NewTable()
	l.NewTable()
	l.PushGoFunction(func(l *lua.State) int {
		l.PushString("0")
		return 1
	})
	l.SetField(-2, "__index")
	l.SetMetaTable(-2)
}

// ReadDef reads the definition table at idx into d (all but Name,
// Namespace, File and Title).
func ReadDef(l *lua.State, idx int, d *Def) error {
	idx = l.AbsIndex(idx)
	var problems []string
	l.PushNil()
	for l.Next(idx) {
		k, _ := l.ToString(-2)
		if l.TypeOf(-2) != lua.TypeString || !defFields[k] {
			problems = append(problems, fmt.Sprintf("unexpected field '%s'", k))
		}
		l.Pop(1)
	}
	str := func(name string, required bool) string {
		l.Field(idx, name)
		defer l.Pop(1)
		if l.IsNil(-1) {
			if required {
				problems = append(problems, name+" is required")
			}
			return ""
		}
		if l.TypeOf(-1) != lua.TypeString {
			problems = append(problems, name+" must be a string")
			return ""
		}
		v, _ := l.ToString(-1)
		return v
	}
	l.Field(idx, "alert_key")
	switch {
	case l.IsNil(-1):
		problems = append(problems, "alert_key is missing or names no declared key (use alert_keys.builtin.<name> or alert_keys.user.<name>)")
	case l.TypeOf(-1) != lua.TypeNumber:
		problems = append(problems, "alert_key must be an integer from alert_keys")
	default:
		f, _ := l.ToNumber(-1)
		if f != float64(int(f)) || f < 1 {
			problems = append(problems, "alert_key must be a positive integer, got "+strconv.FormatFloat(f, 'g', -1, 64))
		}
		d.Key = int(f)
	}
	l.Pop(1)
	d.TitleKey = str("i18n_title", true)
	l.Field(idx, "i18n_description")
	switch l.TypeOf(-1) {
	case lua.TypeNil:
	case lua.TypeString:
		d.DescKey, _ = l.ToString(-1)
	case lua.TypeFunction:
		d.DescFunc = true
	default:
		problems = append(problems, "i18n_description must be a string or a function(ifid, alert, info)")
	}
	l.Pop(1)
	d.Icon = str("icon", false)
	d.Severity = str("severity", false)
	if d.Severity != "" && d.Severity != "low" && d.Severity != "medium" && d.Severity != "high" {
		problems = append(problems, "severity must be low, medium or high")
	}
	d.Sources = str("sources", false)
	d.Targets = str("targets", false)
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// loadCatalog reads locales/<lang>.lua from dir or from the built-in
// catalogs and flattens it to dotted keys. A missing catalog is nil.
func loadCatalog(sb *sandbox.Sandbox, dir, lang string, builtin bool) (map[string]string, error) {
	if strings.ContainsAny(lang, "/\\.") || lang == "" {
		return nil, fmt.Errorf("locale %q: invalid name", lang)
	}
	var src []byte
	var err error
	name := filepath.Join(dir, "locales", lang+".lua")
	if builtin {
		name = "builtin:locales/" + lang + ".lua"
		src, err = builtinLocales.ReadFile("locales/" + lang + ".lua")
	} else {
		src, err = os.ReadFile(name)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	out := map[string]string{}
	err = sb.DoChunk(name, string(src), 1, func(l *lua.State) error {
		if !l.IsTable(-1) {
			return errors.New("a catalog returns a table of strings")
		}
		flatten(l, l.AbsIndex(-1), "", out, 0)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return out, nil
}

func flatten(l *lua.State, idx int, prefix string, out map[string]string, depth int) {
	if depth > 16 {
		return
	}
	l.PushNil()
	for l.Next(idx) {
		if l.TypeOf(-2) == lua.TypeString {
			k, _ := l.ToString(-2)
			switch l.TypeOf(-1) {
			case lua.TypeString:
				v, _ := l.ToString(-1)
				out[prefix+k] = v
			case lua.TypeTable:
				flatten(l, l.AbsIndex(-1), prefix+k+".", out, depth+1)
			}
		}
		l.Pop(1)
	}
}

var (
	builtinMu   sync.Mutex
	builtinSets = map[string]*Set{}
)

// builtinSet returns tern's own catalogs for locale (then English).
func builtinSet(locale string) *Set {
	if locale == "" {
		locale = DefaultLocale
	}
	builtinMu.Lock()
	defer builtinMu.Unlock()
	set := builtinSets[locale]
	if set == nil {
		set = &Set{Locale: locale}
		sb := sandbox.New(sandbox.Config{Name: "alert catalogs"}, "alertdef", "", nil)
		langs := []string{locale}
		if locale != DefaultLocale {
			langs = append(langs, DefaultLocale)
		}
		for _, lang := range langs {
			if c, err := loadCatalog(sb, "", lang, true); err == nil && c != nil {
				set.catalogs = append(set.catalogs, c)
			}
		}
		builtinSets[locale] = set
	}
	return set
}

// BuiltinText returns the localized title and description template of a
// builtin key from tern's own catalogs (locale, then English), for Go
// filters that raise builtin alerts without a definitions directory. The
// catalog keys are alerts.<name without "alert_">.title and .description.
func BuiltinText(locale, keyName string) (title, description string) {
	set := builtinSet(locale)
	base := "alerts." + strings.TrimPrefix(keyName, "alert_")
	title = set.Localize(base + ".title")
	description = set.Localize(base + ".description")
	if title == base+".title" {
		title = keyName
	}
	if description == base+".description" {
		description = ""
	}
	return title, description
}
