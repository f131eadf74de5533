package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
	"github.com/ternlog/tern/pipeline/matcher"
)

// optList collects repeated -o key=value flags.
type optList []string

func (o *optList) String() string     { return strings.Join(*o, " ") }
func (o *optList) Set(v string) error { *o = append(*o, v); return nil }

func settingsFor(name string) pipeline.Settings {
	return pipeline.Settings{
		Name: name, Logger: newLogger(io.Discard, config.DefaultGlobal()), Now: time.Now,
		Telemetry: pipeline.NopTelemetry{},
	}
}

// cmdDecode reads raw records (one per line, or RFC 6587 syslog frames
// with -framing) and prints canonical JSON messages, filling UUID,
// Timestamp and Logger as the engine would.
func cmdDecode(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("decode")
	typ := fs.String("d", "", "decoder `TYPE` (required; listed below)")
	var opts optList
	fs.Var(&opts, "o", "set a decoder option `key=value`, as in its config table (repeatable)")
	seed := fs.Uint64("seed", 0, "generate UUIDs from this `SEED` (0: random)")
	nowFlag := fs.String("now", "", "receive `TIME` for records without one (RFC 3339; default: now)")
	maxLine := fs.Int("max-line", framing.DefaultMaxLine, "longest record in `BYTES`")
	framingFlag := fs.String("framing", "newline", "delimit records by `MODE`: newline, octet-counting or auto (octet counting when the input starts with a digit, RFC 6587)")
	if code, done := parseFlags(fs, "decode", args, stdout, stderr); done {
		return code
	}
	var syslogFraming framing.SyslogFraming
	switch *framingFlag {
	case "newline":
	case "octet-counting", "auto":
		syslogFraming, _ = framing.ParseSyslogFraming(*framingFlag)
	default:
		fmt.Fprintf(stderr, "tern decode: -framing must be newline, octet-counting or auto, not %q\n", *framingFlag)
		return 2
	}
	reg := registry()
	f, ok := pipeline.Lookup(reg.Decoders, *typ)
	if !ok {
		return unknownType(stderr, "decode", "decoder", *typ, pipeline.Types(reg.Decoders))
	}
	cfg := f.NewConfig()
	if err := config.DecodeOptions(cfg, opts); err != nil {
		fmt.Fprintf(stderr, "tern decode: %v\n", err)
		return 2
	}
	now := time.Now()
	set := settingsFor("decoders." + *typ)
	if *nowFlag != "" {
		var err error
		if now, err = time.Parse(time.RFC3339Nano, *nowFlag); err != nil {
			fmt.Fprintf(stderr, "tern decode: -now: %v\n", err)
			return 2
		}
		// The decoder's clock too: it dates year-less timestamps.
		set.Now = func() time.Time { return now }
	}
	dec, err := f.Build(set, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tern decode: %v\n", err)
		return 2
	}
	uuid := pipeline.NewUUID
	if *seed != 0 {
		uuid = pipeline.SeededUUIDs(*seed)
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	var records interface{ Next() ([]byte, error) }
	var lines *framing.LineReader
	var frames *framing.SyslogReader
	if *framingFlag == "newline" {
		lines = framing.NewLineReader(stdin, *maxLine)
		records = lines
	} else {
		frames = framing.NewSyslogReader(stdin, *maxLine, syslogFraming)
		records = frames
	}
	failed := false
	var buf []byte
	for n := 1; ; n++ {
		line, err := records.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintf(stderr, "tern decode: %v\n", err)
				failed = true
			}
			break
		}
		b := pipeline.NewBatch()
		if err := safeDecode(dec, pipeline.Record{Data: line, Source: "stdin"}, b); err != nil {
			fmt.Fprintf(stderr, "record %d: %v\n", n, err)
			failed = true
			continue
		}
		for _, m := range b.Msgs {
			if m.UUID == ([16]byte{}) {
				m.UUID = uuid()
			}
			if m.Timestamp == 0 {
				m.Timestamp = now.UnixNano()
			}
			if m.Logger == "" {
				m.Logger = "stdin"
			}
			buf = append(codec.AppendJSON(buf[:0], m), '\n')
			out.Write(buf)
		}
	}
	oversize := 0
	if lines != nil {
		oversize = lines.Oversize()
	} else {
		oversize = frames.Oversize()
	}
	if oversize > 0 {
		fmt.Fprintf(stderr, "tern decode: %d record(s) over %d bytes skipped\n", oversize, *maxLine)
		failed = true
	}
	if failed {
		return 1
	}
	return 0
}

// unknownType reports a -d or -e that names no type: with the closest type
// when one is near, else with every type.
func unknownType(stderr io.Writer, verb, kind, typ string, known []string) int {
	if typ == "" {
		return usageError(stderr, verb, fmt.Sprintf("missing %s type (known: %s)", kind, strings.Join(known, ", ")))
	}
	if hint := didYouMean(typ, known); hint != "" {
		return usageError(stderr, verb, fmt.Sprintf("unknown %s type %q%s", kind, typ, hint))
	}
	return usageError(stderr, verb, fmt.Sprintf("unknown %s type %q (known: %s)", kind, typ, strings.Join(known, ", ")))
}

func safeDecode(d pipeline.Decoder, rec pipeline.Record, b *pipeline.Batch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoder panic: %v", p)
		}
	}()
	return d.Decode(rec, b)
}

// readMessages calls fn for every canonical JSON message on r, one a line;
// blank lines are skipped. It reports bad lines on stderr and returns
// whether all were good.
func readMessages(r io.Reader, stderr io.Writer, fn func(n int, line []byte, m *pipeline.Message)) bool {
	lines := framing.NewLineReader(r, framing.DefaultMaxFrame)
	ok := true
	for n := 1; ; n++ {
		line, err := lines.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintf(stderr, "tern: %v\n", err)
				ok = false
			}
			return ok
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		m := pipeline.NewMessage()
		if err := codec.DecodeJSON(line, m, nil); err != nil {
			fmt.Fprintf(stderr, "message %d: %v\n", n, err)
			ok = false
			continue
		}
		fn(n, line, m)
	}
}

// payloadBody lists the encoders whose record body is the message Payload.
var payloadBody = map[string]bool{"syslog": true, "payload": true}

func cmdEncode(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("encode")
	typ := fs.String("e", "", "encoder `TYPE` (required; listed below)")
	var opts optList
	fs.Var(&opts, "o", "set an encoder option `key=value`, as in its config table (repeatable)")
	if code, done := parseFlags(fs, "encode", args, stdout, stderr); done {
		return code
	}
	reg := registry()
	f, ok := pipeline.Lookup(reg.Encoders, *typ)
	if !ok {
		return unknownType(stderr, "encode", "encoder", *typ, pipeline.Types(reg.Encoders))
	}
	cfg := f.NewConfig()
	if err := config.DecodeOptions(cfg, opts); err != nil {
		fmt.Fprintf(stderr, "tern encode: %v\n", err)
		return 2
	}
	enc, err := f.Build(settingsFor("encoders."+*typ), cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tern encode: %v\n", err)
		return 2
	}
	delim := "\n"
	if d, ok := enc.(pipeline.Delimited); ok {
		delim = d.Delimiter()
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	var buf []byte
	encFailed := false
	good := readMessages(stdin, stderr, func(n int, _ []byte, m *pipeline.Message) {
		// What a router would give the message before an output saw it.
		m.FillDefaults(pipeline.NewUUID, time.Now().UnixNano(), "tern-encode")
		if m.Payload == "" && payloadBody[*typ] {
			fmt.Fprintf(stderr, "message %d: warning: empty payload, so the %s record has no message text\n", n, *typ)
		}
		var err error
		buf, err = enc.Encode(buf[:0], m)
		if err != nil {
			fmt.Fprintf(stderr, "message %d: %v\n", n, err)
			encFailed = true
			return
		}
		out.Write(buf)
		out.WriteString(delim)
	})
	if !good || encFailed {
		return 1
	}
	return 0
}

func cmdMatch(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("match")
	if code, done := parseFlags(fs, "match", args, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(stderr, "match", "want one EXPR")
	}
	m, err := matcher.Compile(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "tern match: %v\n", err)
		return 2
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	good := readMessages(stdin, stderr, func(_ int, line []byte, msg *pipeline.Message) {
		if m.Match(msg) {
			out.Write(line)
			out.WriteByte('\n')
		}
	})
	if !good {
		return 1
	}
	return 0
}
