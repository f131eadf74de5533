// Package config loads plugins.toml into a validated Plan: every section
// decoded strictly, key by key, into its plugin's Config (one bad value is
// one error; unknown keys get a suggestion), environment references
// expanded (and hidden again in errors), names resolved and matchers
// compiled, with every error reported at once as file:line: key: message.
// Size and nesting are bounded before decoding. Loading does no I/O beyond
// reading the file.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/matcher"
)

// Global is the [tern] section: engine settings.
type Global struct {
	// Hostname stamps messages tern creates itself; default: os.Hostname.
	Hostname string `toml:"hostname"`
	// DataDir holds state: checkpoints, disk buffers, dead letters nobody
	// routed. Relative to the config file's directory.
	DataDir string `toml:"data_dir"`
	// ShutdownTimeout bounds the drain after SIGTERM.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// MetricsAddress serves /metrics, /health, the dashboard and taps
	// (pipeline/engine/admin.go); "" turns it off.
	MetricsAddress string `toml:"metrics_address"`
	// MetricsTokens and MetricsTokenFile (one token per line, read when tern
	// starts) are the bearer tokens the metrics address requires. Without a
	// token and without mutual TLS it is open to whoever reaches it, and
	// then serves taps (message contents) only on a loopback address.
	MetricsTokens    []string `toml:"metrics_tokens"`
	MetricsTokenFile string   `toml:"metrics_token_file"`
	// MetricsTLS serves the metrics address over HTTPS; with ca_file, only
	// clients with a certificate signed by one of its CAs get through.
	MetricsTLS TLS `toml:"metrics_tls"`
	// QueueMaxBytes is the default byte cap of each output and filter queue.
	QueueMaxBytes Size `toml:"queue_max_bytes"`
	// MaxMessageLoops bounds how often filter output may be re-injected.
	MaxMessageLoops int `toml:"max_message_loops"`
	// LogLevel is debug, info, warn or error; LogFormat is text or json.
	LogLevel  string `toml:"log_level"`
	LogFormat string `toml:"log_format"`
	// ProgressInterval is how often a running tern logs its counters; 0 = never.
	ProgressInterval Duration `toml:"progress_interval"`
	// MemoryLimit is Go's soft memory limit for the process. 0 derives it
	// when Lua scripts run (what they and the queues may hold, plus a
	// working set: Engine.MemoryBudget) and sets none otherwise. The
	// GOMEMLIMIT environment variable, when set, wins.
	MemoryLimit Size `toml:"memory_limit"`
}

// DefaultGlobal returns the engine defaults.
func DefaultGlobal() Global {
	return Global{
		DataDir:          "data",
		ShutdownTimeout:  Duration(30 * time.Second),
		MetricsAddress:   "127.0.0.1:9514",
		MetricsTLS:       DefaultTLS(),
		QueueMaxBytes:    4 << 20,
		MaxMessageLoops:  4,
		LogLevel:         "info",
		LogFormat:        "text",
		ProgressInterval: Duration(30 * time.Second),
	}
}

// Retries is an output's [name.retries] table: capped exponential backoff
// with jitter, retried forever.
type Retries struct {
	Delay     Duration `toml:"delay"`
	MaxDelay  Duration `toml:"max_delay"`
	MaxJitter Duration `toml:"max_jitter"`
}

// Buffering is an output's [name.buffering] table (used with use_buffering).
type Buffering struct {
	// MaxBufferSize caps the bytes on disk.
	MaxBufferSize Size `toml:"max_buffer_size"`
	// MaxFileSize is the segment size.
	MaxFileSize Size `toml:"max_file_size"`
	// FullAction is block, drop_newest or shutdown.
	FullAction string `toml:"full_action"`
	// Sync is always (fsync before acknowledging) or interval.
	Sync string `toml:"sync"`
	// SyncInterval bounds the window of unsynced data with sync = "interval".
	SyncInterval Duration `toml:"sync_interval"`
}

// StringList accepts a string or an array of strings.
type StringList []string

func (l *StringList) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*l = StringList{v}
	case []any:
		out := make(StringList, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("expected a string or an array of strings")
			}
			out = append(out, s)
		}
		*l = out
	default:
		return fmt.Errorf("expected a string or an array of strings")
	}
	return nil
}

// Section is one plugin instance.
type Section struct {
	Kind   string // inputs, decoders, filters, encoders, outputs
	Name   string
	Type   string
	File   string
	Line   int
	Config any // pointer to the plugin's Config, decoded over its defaults

	keyLines map[string]int // line of each key, by its name inside the section
}

// ID is the instance id, "<kind>.<name>".
func (s *Section) ID() string { return s.Kind + "." + s.Name }

// Errors places err (or each error it joins) at this section, on the line
// of the key it names when it reads "key: message", as Validate errors do.
// The engine uses it for what plugins report after the config is read
// (construction, Check).
func (s *Section) Errors(err error) Errors {
	var errs Errors
	for _, one := range Unjoin(err) {
		key, msg := splitKeyMsg(one.Error())
		line, ok := s.keyLines[key]
		if key == "" || !ok {
			errs = append(errs, &Error{File: s.File, Line: s.Line, Key: s.ID(), Msg: one.Error()})
			continue
		}
		errs = append(errs, &Error{File: s.File, Line: line, Key: s.ID() + "." + key, Msg: msg})
	}
	return errs
}

// Input is an [inputs.*] section.
type Input struct {
	Section
	Decoders []string // names of [decoders.*] sections, applied in order
}

// Filter is a [filters.*] section.
type Filter struct {
	Section
	Matcher        *matcher.Matcher
	TickerInterval time.Duration
	QueueMaxBytes  int
}

// Output is an [outputs.*] section.
type Output struct {
	Section
	Matcher       *matcher.Matcher
	Encoder       string // name of an [encoders.*] section
	QueueMaxBytes int
	FullAction    string
	BatchMaxCount int
	BatchMaxBytes int
	FlushInterval time.Duration
	Retries       Retries
	UseBuffering  bool
	Buffering     Buffering
}

// Plan is a loaded, validated config.
type Plan struct {
	File     string
	Dir      string
	Global   Global
	Inputs   []*Input
	Decoders map[string]*Section
	Filters  []*Filter
	Encoders map[string]*Section
	Outputs  []*Output
}

// Error is one problem, placed in the file.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found, in file order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Options change how Load reads a file.
type Options struct {
	// Lookup resolves ${NAME}; default os.LookupEnv.
	Lookup func(string) (string, bool)
}

var kinds = []string{"inputs", "decoders", "filters", "encoders", "outputs"}

// Load reads and validates a config file against the plugin registry.
func Load(path string, reg *pipeline.Registry, opt Options) (*Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxConfigBytes {
		return nil, Errors{{File: path, Msg: tooLarge()}}
	}
	// Not a regular file: read one byte past the limit, never more.
	src, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	return Parse(path, src, reg, opt)
}

type loader struct {
	// covered holds the keys already reported (unknown, or with a bad
	// value, or in a section that cannot be used): keys under them are not
	// reported again as unknown.
	covered map[string]bool
	// meant holds the keys an unknown key was taken for, when they are
	// absent: a Validate error about them is the same mistake again.
	meant   map[string]bool
	parents map[string]bool // tables that hold keys, see knownSubtable
	file    string
	lines   map[string]int
	md      toml.MetaData
	errs    Errors
	opt     Options
	secrets []secret // what ${NAME} put into values, hidden in errors
}

func (l *loader) add(line int, key, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// line finds the line of a key, or of its closest enclosing table.
// sectionLines is the line of every key under the section id, by its name
// inside the section.
func (l *loader) sectionLines(id string) map[string]int {
	out := map[string]int{}
	for k, n := range l.lines {
		if rest, ok := strings.CutPrefix(k, id+"."); ok {
			out[rest] = n
		}
	}
	return out
}

func (l *loader) line(key string) int {
	for k := key; k != ""; {
		if n, ok := l.lines[k]; ok {
			return n
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

var tomlErrRe = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)

// decodeErr turns a TOML decoding error into a placed Error.
func (l *loader) decodeErr(err error, fallbackKey string) {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		key := pe.LastKey
		if key == "" {
			key = fallbackKey
		}
		line := pe.Position.Line
		if line == 0 {
			line = l.line(key)
		}
		l.add(line, key, "%s", pe.Message)
		return
	}
	msg := err.Error()
	if m := tomlErrRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if line == 0 {
			line = l.line(m[2])
		}
		l.add(line, m[2], "%s", m[3])
		return
	}
	l.add(l.line(fallbackKey), fallbackKey, "%s", strings.TrimPrefix(msg, "toml: "))
}

type rawFile struct {
	Tern     toml.Primitive            `toml:"tern"`
	Inputs   map[string]toml.Primitive `toml:"inputs"`
	Decoders map[string]toml.Primitive `toml:"decoders"`
	Filters  map[string]toml.Primitive `toml:"filters"`
	Encoders map[string]toml.Primitive `toml:"encoders"`
	Outputs  map[string]toml.Primitive `toml:"outputs"`
}

type inputKeys struct {
	Type    string     `toml:"type"`
	Decoder StringList `toml:"decoder"`
}

type codecKeys struct {
	Type string `toml:"type"`
}

type filterKeys struct {
	Type           string   `toml:"type"`
	MessageMatcher *string  `toml:"message_matcher"`
	TickerInterval Duration `toml:"ticker_interval"`
	QueueMaxBytes  Size     `toml:"queue_max_bytes"`
}

type outputKeys struct {
	Type           string    `toml:"type"`
	MessageMatcher *string   `toml:"message_matcher"`
	Encoder        string    `toml:"encoder"`
	QueueMaxBytes  Size      `toml:"queue_max_bytes"`
	FullAction     string    `toml:"full_action"`
	BatchMaxCount  int       `toml:"batch_max_count"`
	BatchMaxBytes  Size      `toml:"batch_max_bytes"`
	FlushInterval  Duration  `toml:"flush_interval"`
	Retries        Retries   `toml:"retries"`
	UseBuffering   bool      `toml:"use_buffering"`
	Buffering      Buffering `toml:"buffering"`
}

// EngineKey reports whether key, at the top of a [kind.*] section, is read
// by the engine rather than by the plugin (type, message_matcher, decoder…).
func EngineKey(kind, key string) bool {
	t, ok := engineKeys[kind]
	if !ok {
		return false
	}
	for i := 0; i < t.NumField(); i++ {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ","); name == key {
			return true
		}
	}
	return false
}

// Engine-owned keys per kind, listed once: the section decoding, the error
// that tells a user a key belongs elsewhere and the plugins' sample checks
// (EngineKey) all read them.
var engineKeys = map[string]reflect.Type{
	"inputs": reflect.TypeOf(inputKeys{}), "decoders": reflect.TypeOf(codecKeys{}),
	"filters": reflect.TypeOf(filterKeys{}), "encoders": reflect.TypeOf(codecKeys{}),
	"outputs": reflect.TypeOf(outputKeys{}),
}

// Parse validates config text; path is used for error messages and relative paths.
func Parse(path string, src []byte, reg *pipeline.Registry, opt Options) (*Plan, error) {
	if opt.Lookup == nil {
		opt.Lookup = os.LookupEnv
	}
	if len(src) > MaxConfigBytes {
		return nil, Errors{{File: path, Msg: tooLarge()}}
	}
	if line := prescan(src); line > 0 {
		return nil, Errors{{File: path, Line: line, Msg: fmt.Sprintf("nested deeper than %d levels (table header parts, dotted key parts, arrays and inline tables count together)", MaxNesting)}}
	}
	l := &loader{file: path, lines: keyLines(string(src)), opt: opt, meant: map[string]bool{}}
	abs, _ := filepath.Abs(path)
	plan := &Plan{
		File: path, Dir: filepath.Dir(abs), Global: DefaultGlobal(),
		Decoders: map[string]*Section{}, Encoders: map[string]*Section{},
	}
	var raw rawFile
	md, err := toml.Decode(string(src), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			l.add(pe.Position.Line, "", "%s", pe.Message)
		} else {
			l.add(0, "", "%v", err)
		}
		return nil, l.errs
	}
	l.md = md

	if md.IsDefined("tern") {
		if t, ok := l.table([]string{"tern"}, raw.Tern); ok {
			l.decodeKeys([]string{"tern"}, t, reflect.ValueOf(&plan.Global))
		}
		l.expand(reflect.ValueOf(&plan.Global), []string{"tern"})
	}
	l.checkGlobal(&plan.Global)

	// Decoders and encoders first: inputs and outputs refer to them.
	for _, name := range sortedKeys(raw.Decoders, l, "decoders") {
		var k codecKeys
		sec := l.section("decoders", name, raw.Decoders[name], &k, func(typ string) (func() any, bool) {
			f, ok := pipeline.Lookup(reg.Decoders, typ)
			return f.NewConfig, ok
		}, reg.Decoders)
		if sec != nil && sec.Config != nil {
			plan.Decoders[name] = sec
		}
	}
	for _, name := range sortedKeys(raw.Encoders, l, "encoders") {
		var k codecKeys
		sec := l.section("encoders", name, raw.Encoders[name], &k, func(typ string) (func() any, bool) {
			f, ok := pipeline.Lookup(reg.Encoders, typ)
			return f.NewConfig, ok
		}, reg.Encoders)
		if sec != nil && sec.Config != nil {
			plan.Encoders[name] = sec
		}
	}
	for _, name := range sortedKeys(raw.Inputs, l, "inputs") {
		var k inputKeys
		sec := l.section("inputs", name, raw.Inputs[name], &k, func(typ string) (func() any, bool) {
			f, ok := pipeline.Lookup(reg.Inputs, typ)
			return f.NewConfig, ok
		}, reg.Inputs)
		if sec == nil {
			continue
		}
		in := &Input{Section: *sec}
		for _, d := range k.Decoder {
			if l.resolveCodec(plan.Decoders, "decoders", d, sec.ID()+".decoder", reg.Decoders, func(typ string) (func() any, bool) {
				f, ok := pipeline.Lookup(reg.Decoders, typ)
				return f.NewConfig, ok
			}) {
				in.Decoders = append(in.Decoders, d)
			}
		}
		if sec.Config != nil {
			plan.Inputs = append(plan.Inputs, in)
		}
	}
	for _, name := range sortedKeys(raw.Filters, l, "filters") {
		k := filterKeys{QueueMaxBytes: plan.Global.QueueMaxBytes}
		sec := l.section("filters", name, raw.Filters[name], &k, func(typ string) (func() any, bool) {
			f, ok := pipeline.Lookup(reg.Filters, typ)
			return f.NewConfig, ok
		}, reg.Filters)
		if sec == nil {
			continue
		}
		f := &Filter{Section: *sec, TickerInterval: k.TickerInterval.D(), QueueMaxBytes: int(k.QueueMaxBytes)}
		f.Matcher = l.matcher(sec, k.MessageMatcher)
		if sec.Config != nil {
			plan.Filters = append(plan.Filters, f)
		}
	}
	for _, name := range sortedKeys(raw.Outputs, l, "outputs") {
		k := outputKeys{
			QueueMaxBytes: plan.Global.QueueMaxBytes, FullAction: "block",
			BatchMaxCount: 1024, BatchMaxBytes: 4 << 20,
			Retries:   Retries{Delay: Duration(250 * time.Millisecond), MaxDelay: Duration(30 * time.Second), MaxJitter: Duration(500 * time.Millisecond)},
			Buffering: Buffering{MaxBufferSize: 1 << 30, MaxFileSize: 64 << 20, FullAction: "block", Sync: "always", SyncInterval: Duration(time.Second)},
		}
		sec := l.section("outputs", name, raw.Outputs[name], &k, func(typ string) (func() any, bool) {
			f, ok := pipeline.Lookup(reg.Outputs, typ)
			return f.NewConfig, ok
		}, reg.Outputs)
		if sec == nil {
			continue
		}
		o := &Output{
			Section: *sec, Encoder: k.Encoder, QueueMaxBytes: int(k.QueueMaxBytes), FullAction: k.FullAction,
			BatchMaxCount: k.BatchMaxCount, BatchMaxBytes: int(k.BatchMaxBytes), FlushInterval: k.FlushInterval.D(),
			Retries: k.Retries, UseBuffering: k.UseBuffering, Buffering: k.Buffering,
		}
		o.Matcher = l.matcher(sec, k.MessageMatcher)
		if o.Encoder == "" {
			if f, ok := pipeline.Lookup(reg.Outputs, sec.Type); ok {
				o.Encoder = f.DefaultEncoder
			}
		}
		if o.Encoder == "" {
			if !md.IsDefined("outputs", name, "encoder") { // else its value was reported
				l.add(sec.Line, sec.ID()+".encoder", "required (an [encoders.*] section or an encoder type: %s)", strings.Join(pipeline.Types(reg.Encoders), ", "))
			}
		} else if !l.resolveCodec(plan.Encoders, "encoders", o.Encoder, sec.ID()+".encoder", reg.Encoders, func(typ string) (func() any, bool) {
			f, ok := pipeline.Lookup(reg.Encoders, typ)
			return f.NewConfig, ok
		}) {
			o.Encoder = ""
		}
		l.checkOutput(o)
		if sec.Config != nil {
			plan.Outputs = append(plan.Outputs, o)
		}
	}

	for _, k := range md.Undecoded() {
		if l.knownSubtable(k) || l.isCovered(k) {
			continue
		}
		key := k.String()
		l.add(l.line(key), key, "unknown key%s", l.hint(k))
	}
	if len(plan.Inputs) == 0 && len(l.errs) == 0 {
		l.add(0, "", "no [inputs.*] section: nothing would run")
	}
	if len(l.errs) > 0 {
		for _, e := range l.errs {
			e.Msg = l.redact(e.Msg)
		}
		sort.SliceStable(l.errs, func(i, j int) bool { return l.errs[i].Line < l.errs[j].Line })
		return plan, l.errs
	}
	return plan, nil
}

// knownSubtable skips tables in Undecoded's list that have keys: those keys
// are reported one by one, each on its own line.
func (l *loader) knownSubtable(k toml.Key) bool {
	if l.md.Type(k...) != "Hash" {
		return false
	}
	if l.parents == nil {
		// Every table that holds a key, found once: comparing each
		// undecoded table with every key cost time quadratic in the keys.
		l.parents = map[string]bool{}
		for _, key := range l.md.Keys() {
			for i := len(key) - 1; i > 0; i-- {
				p := key[:i].String()
				if l.parents[p] {
					break // and so are its ancestors
				}
				l.parents[p] = true
			}
		}
	}
	return l.parents[k.String()]
}

var topKeys = map[string]bool{"tern": true, "inputs": true, "decoders": true, "filters": true, "encoders": true, "outputs": true}

// hint suggests where a misplaced key belongs, or the top-level table a
// misspelt one meant.
func (l *loader) hint(k toml.Key) string {
	if len(k) > 0 && !topKeys[k[0]] {
		return didYouMean(k[0], topKeys)
	}
	if len(k) != 3 {
		return ""
	}
	var in []string
	for _, kind := range kinds {
		if kind == k[0] {
			continue
		}
		if EngineKey(kind, k[2]) {
			in = append(in, "["+kind+".*]")
		}
	}
	if len(in) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s is a key of %s sections)", k[2], strings.Join(in, " and "))
}

func sortedKeys(m map[string]toml.Primitive, l *loader, kind string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		return l.line(kind+"."+names[i]) < l.line(kind+"."+names[j])
	})
	return names
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// section decodes one plugin instance: its engine keys into keys, the rest
// into the plugin's Config. It returns nil when the section cannot be used.
func (l *loader) section(kind, name string, prim toml.Primitive, keys any, lookup func(string) (func() any, bool), fs any) *Section {
	id := kind + "." + name
	line := l.line(id)
	if !nameRe.MatchString(name) {
		l.add(line, id, "instance names use letters, digits, '_' and '-'")
	}
	path := []string{kind, name}
	raw, ok := l.table(path, prim)
	if !ok {
		return nil
	}
	// The type first: it says which keys the rest of the table may hold.
	var typ string
	if p, ok := raw["type"]; ok {
		if err := l.md.PrimitiveDecode(p, &typ); err != nil {
			l.decodeErr(err, id+".type")
			l.cover(path)
			return nil
		}
	}
	if typ == "" {
		l.add(line, id+".type", "required")
		l.cover(path)
		return nil
	}
	newCfg, ok := lookup(typ)
	if !ok {
		names := typeNames(fs)
		known := map[string]bool{}
		for _, n := range names {
			known[n] = true
		}
		hint := ""
		if c := closest(typ, known); c != "" {
			hint = fmt.Sprintf(": did you mean `%s`?", c)
		}
		l.add(l.line(id+".type"), id+".type", "unknown %s type %q%s (known: %s)", strings.TrimSuffix(kind, "s"), typ, hint, strings.Join(names, ", "))
		l.cover(path)
		return nil
	}
	cfg := newCfg()
	bad := !l.decodeKeys(path, raw, reflect.ValueOf(keys), reflect.ValueOf(cfg))
	l.expand(reflect.ValueOf(keys), []string{kind, name})
	l.expand(reflect.ValueOf(cfg), []string{kind, name})
	if v, ok := cfg.(pipeline.Validator); ok && !bad {
		if err := v.Validate(); err != nil {
			for _, e := range Unjoin(err) {
				key, msg := splitKeyMsg(e.Error())
				full := id
				if key != "" {
					full = id + "." + key
				}
				if l.meant[full] {
					continue
				}
				l.add(l.line(full), full, "%s", msg)
			}
		}
	}
	sec := &Section{Kind: kind, Name: name, Type: typ, File: l.file, Line: line, Config: cfg, keyLines: l.sectionLines(id)}
	if bad {
		// Keep checking the engine keys (matcher, references) so every
		// mistake is reported, but leave the section out of the plan.
		sec.Config = nil
	}
	return sec
}

func typeNames(fs any) []string {
	switch fs := fs.(type) {
	case []pipeline.Factory[pipeline.Input]:
		return pipeline.Types(fs)
	case []pipeline.Factory[pipeline.Decoder]:
		return pipeline.Types(fs)
	case []pipeline.Factory[pipeline.Filter]:
		return pipeline.Types(fs)
	case []pipeline.Factory[pipeline.Encoder]:
		return pipeline.Types(fs)
	case []pipeline.Factory[pipeline.Output]:
		return pipeline.Types(fs)
	}
	return nil
}

// splitKeyMsg reads a Validate error of the form "key: message" so the key
// can be placed on its line.
func splitKeyMsg(s string) (string, string) {
	k, msg, ok := strings.Cut(s, ": ")
	if ok && k != "" && !strings.ContainsAny(k, " \"'") {
		return k, msg
	}
	return "", s
}

// Unjoin flattens errors.Join trees into their leaves, so each is reported
// on its own line.
func Unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

func (l *loader) expand(v reflect.Value, path []string) {
	x := &expander{lookup: l.opt.Lookup, report: func(p []string, err error) {
		key := strings.Join(p, ".")
		l.add(l.line(key), key, "%v", err)
	}}
	x.expand(v, path)
	l.secrets = append(l.secrets, x.secrets...)
}

// resolveCodec makes sure a decoder or encoder name refers to a section, or
// to a registered type used with its defaults.
func (l *loader) resolveCodec(secs map[string]*Section, kind, name, key string, fs any, lookup func(string) (func() any, bool)) bool {
	if _, ok := secs[name]; ok {
		return true
	}
	if newCfg, ok := lookup(name); ok {
		secs[name] = &Section{Kind: kind, Name: name, Type: name, File: l.file, Line: l.line(key), Config: newCfg()}
		return true
	}
	names := make([]string, 0, len(secs))
	for n := range secs {
		names = append(names, n)
	}
	sort.Strings(names)
	known := strings.Join(names, ", ")
	if known == "" {
		known = "none"
	}
	l.add(l.line(key), key, "no [%s.%s] section and no %s type %q (sections: %s; types: %s)", kind, name, strings.TrimSuffix(kind, "s"), name, known, strings.Join(typeNames(fs), ", "))
	return false
}

func (l *loader) matcher(sec *Section, expr *string) *matcher.Matcher {
	key := sec.ID() + ".message_matcher"
	if expr == nil {
		if !l.md.IsDefined(sec.Kind, sec.Name, "message_matcher") { // else its value was reported
			l.add(sec.Line, key, "required (use \"TRUE\" to match every message)")
		}
		return nil
	}
	m, err := matcher.Compile(*expr)
	if err != nil {
		l.add(l.line(key), key, "%v", err)
		return nil
	}
	return m
}

func (l *loader) checkGlobal(g *Global) {
	if g.MaxMessageLoops < 0 {
		l.add(l.line("tern.max_message_loops"), "tern.max_message_loops", "must be >= 0")
	}
	switch g.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		l.add(l.line("tern.log_level"), "tern.log_level", "must be debug, info, warn or error")
	}
	switch g.LogFormat {
	case "text", "json":
	default:
		l.add(l.line("tern.log_format"), "tern.log_format", "must be text or json")
	}
	if g.QueueMaxBytes < 1<<10 {
		l.add(l.line("tern.queue_max_bytes"), "tern.queue_max_bytes", "must be at least 1KiB")
	}
	for i, t := range g.MetricsTokens {
		if err := CheckToken(t); err != nil {
			l.add(l.line("tern.metrics_tokens"), "tern.metrics_tokens", "token %d %v", i+1, err)
		}
	}
	if err := g.MetricsTLS.ValidateServer("tern.metrics_tls"); err != nil {
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, one := range errs {
			key, msg, _ := strings.Cut(one.Error(), ": ")
			l.add(l.line(key), key, "%s", msg)
		}
	}
}

// CheckToken refuses a bearer token that cannot travel in an HTTP header.
// The error never quotes the token.
func CheckToken(t string) error {
	if t == "" {
		return errors.New("is empty")
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] == 0x7f {
			return errors.New("holds a space or control character")
		}
	}
	return nil
}

func (l *loader) checkOutput(o *Output) {
	id := o.ID()
	switch o.FullAction {
	case "block", "drop_newest":
	default:
		l.add(l.line(id+".full_action"), id+".full_action", "must be block or drop_newest")
	}
	if o.BatchMaxCount < 1 {
		l.add(l.line(id+".batch_max_count"), id+".batch_max_count", "must be at least 1")
	}
	if o.QueueMaxBytes < 1<<10 {
		l.add(l.line(id+".queue_max_bytes"), id+".queue_max_bytes", "must be at least 1KiB")
	}
	if o.UseBuffering {
		b := o.Buffering
		switch b.FullAction {
		case "block", "drop_newest", "shutdown":
		default:
			l.add(l.line(id+".buffering.full_action"), id+".buffering.full_action", "must be block, drop_newest or shutdown")
		}
		switch b.Sync {
		case "always", "interval":
		default:
			l.add(l.line(id+".buffering.sync"), id+".buffering.sync", "must be always or interval")
		}
		if b.MaxFileSize < 1<<10 || b.MaxBufferSize < b.MaxFileSize {
			l.add(l.line(id+".buffering"), id+".buffering", "need max_file_size >= 1KiB and max_buffer_size >= max_file_size")
		}
	}
}
