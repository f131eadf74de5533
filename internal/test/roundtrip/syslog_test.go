package roundtrip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	sysdec "github.com/ternlog/tern/decoders/syslog"
	sysenc "github.com/ternlog/tern/encoders/syslog"
	"github.com/ternlog/tern/internal/rfc3339"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/framing"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// printable is the documented normalisation of RFC 5424 header fields:
// bytes outside PRINTUSASCII become '_', the value is cut at max bytes, and
// "" or "-" is the NILVALUE (absent).
func printable(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x21 || c > 0x7E {
			b[i] = '_'
		}
	}
	if string(b) == "-" {
		return ""
	}
	return string(b)
}

// octal is escape_newlines: every control character but TAB as #ooo.
func octal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' {
			fmt.Fprintf(&b, "#%03o", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// random5424 makes a message for the syslog encoder and the message the
// decoder must return for it (after the documented normalisation), and
// the number of bytes the encoder replaces with U+FFFD.
func random5424(r *rand.Rand, escape bool) (in, want *pipeline.Message, replaced int) {
	in, want = pipeline.NewMessage(), pipeline.NewMessage()
	in.Type, want.Type = "syslog", "syslog"
	fac := r.IntN(24)
	in.Severity = int32(r.IntN(8))
	want.Severity = in.Severity
	if r.IntN(10) > 0 {
		in.Timestamp = r.Int64N(4e18) // 1970..2096
		want.Timestamp = in.Timestamp - in.Timestamp%1000
	}
	in.AddInt("facility", int64(fac))
	want.AddInt("facility", int64(fac))
	in.Hostname = hostile(r)
	want.Hostname = printable(in.Hostname, 255)
	for _, h := range []struct {
		name string
		max  int
	}{{"appname", 48}, {"procid", 128}, {"msgid", 32}} {
		v := hostile(r)
		if h.name == "procid" && r.IntN(3) == 0 {
			v = strconv.Itoa(r.IntN(1 << 31))
		}
		in.AddString(h.name, v)
		if p := printable(v, h.max); p != "" {
			want.AddString(h.name, p)
			if h.name == "procid" {
				if pid, err := strconv.ParseInt(p, 10, 32); err == nil && pid >= 0 && !strings.HasPrefix(p, "+") {
					want.Pid = int32(pid)
				}
			}
		}
	}
	for e := r.IntN(4); e > 0; e-- {
		id := word(r, 20) + "@" + strconv.Itoa(r.IntN(99999))
		if want.FirstField("sd."+id) != nil || want.FirstField("sd."+id+".x") != nil {
			continue
		}
		params := r.IntN(4)
		if params == 0 {
			f := pipeline.NewField("sd."+id, pipeline.TypeString, "")
			in.AddField(f)
			want.AddField(f)
		}
		for ; params > 0; params-- {
			name := "sd." + id + "." + word(r, 30)
			v := hostile(r)
			in.AddString(name, v)
			w, n := replaceInvalid(v)
			replaced += n
			if escape {
				w = octal(w)
			}
			want.AddString(name, w)
		}
	}
	in.Payload = hostile(r)
	want.Payload = in.Payload
	if escape {
		want.Payload = octal(in.Payload)
	}
	return in, want, replaced
}

func newSyslog(t testing.TB, mod func(*sysenc.Config), dmod func(*sysdec.Config), now time.Time) (*sysenc.Encoder, *sysdec.Decoder, func() int) {
	set, tel := settings(t, "encoders.syslog")
	set.Now = func() time.Time { return now }
	cfg := sysenc.DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	enc, err := sysenc.New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dcfg := sysdec.DefaultConfig()
	if dmod != nil {
		dmod(&dcfg)
	}
	dec, err := sysdec.New(set, dcfg)
	if err != nil {
		t.Fatal(err)
	}
	return enc, dec, func() int { return counted(tel, "utf8_replaced_total") }
}

func sameHeader(got, want *pipeline.Message) string {
	if got.Type != want.Type || got.Severity != want.Severity || got.Timestamp != want.Timestamp ||
		got.Hostname != want.Hostname || got.Pid != want.Pid || got.Payload != want.Payload {
		return fmt.Sprintf("header: got %q %d %d %q pid %d payload %q, want %q %d %d %q pid %d payload %q",
			got.Type, got.Severity, got.Timestamp, got.Hostname, got.Pid, got.Payload,
			want.Type, want.Severity, want.Timestamp, want.Hostname, want.Pid, want.Payload)
	}
	return diffFields(got.Fields, want.Fields)
}

// TestSyslog5424RoundTrip: RFC 5424 over octet counting carries any MSG;
// decode(encode(m)) equals m after the documented normalisation, and an
// independent strict parser agrees, frame by frame.
func TestSyslog5424RoundTrip(t *testing.T) {
	// Byte for byte: no escaping, and a MSG may end with LF.
	enc, dec, replacedCount := newSyslog(t, func(c *sysenc.Config) { c.EscapeNewlines = false },
		func(c *sysdec.Config) { c.DropTrailingLF = false }, pipelinetest.Now)
	r := rand.New(rand.NewPCG(3, 3))
	n := records(t)
	var stream []byte
	var wants []*pipeline.Message
	wantReplaced := 0
	check := func() {
		frames := framing.NewSyslogReader(bytes.NewReader(stream), 1<<20, framing.FramingAuto)
		b := pipeline.NewBatch()
		for i, want := range wants {
			frame, err := frames.Next()
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if err := dec.Decode(pipeline.Record{Data: frame}, b); err != nil {
				t.Fatalf("decode %q: %v", frame, err)
			}
			if d := sameHeader(b.Msgs[len(b.Msgs)-1], want); d != "" {
				t.Fatalf("decoder: %s\nframe %q", d, frame)
			}
			got, err := strict5424(frame)
			if err != nil {
				t.Fatalf("strict parser: %v\nframe %q", err, frame)
			}
			if d := sameHeader(got, want); d != "" {
				t.Fatalf("strict parser: %s\nframe %q", d, frame)
			}
		}
		if _, err := frames.Next(); err != io.EOF {
			t.Fatalf("after the last frame: %v", err)
		}
		stream, wants = stream[:0], wants[:0]
	}
	for i := range n {
		in, want, replaced := random5424(r, false)
		wantReplaced += replaced
		rec, err := enc.Encode(nil, in)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		stream = strconv.AppendInt(stream, int64(len(rec)), 10)
		stream = append(append(stream, ' '), rec...)
		wants = append(wants, want)
		if len(wants) == 256 {
			check()
		}
	}
	check()
	if got := replacedCount(); got != wantReplaced {
		t.Errorf("utf8_replaced_total = %d, want %d", got, wantReplaced)
	}
}

// TestSyslog5424Newlines: with escape_newlines, an LF-framed stream has
// exactly one line per message, which decodes to m after the octal
// escaping of control characters.
func TestSyslog5424Newlines(t *testing.T) {
	enc, dec, _ := newSyslog(t, func(c *sysenc.Config) { c.EscapeNewlines = true }, nil, pipelinetest.Now)
	r := rand.New(rand.NewPCG(4, 4))
	n := records(t) / 5
	var stream []byte
	var wants []*pipeline.Message
	for i := range n {
		in, want, _ := random5424(r, true)
		rec, err := enc.Encode(nil, in)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		stream = append(append(stream, rec...), '\n')
		wants = append(wants, want)
	}
	lines := framing.NewLineReader(bytes.NewReader(stream), 1<<20)
	lines.KeepCR = true
	b := pipeline.NewBatch()
	for i, want := range wants {
		line, err := lines.Next()
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if err := dec.Decode(pipeline.Record{Data: line}, b); err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
		if d := sameHeader(b.Msgs[len(b.Msgs)-1], want); d != "" {
			t.Fatalf("decoder: %s\nline %q", d, line)
		}
		if bytes.ContainsFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' }) {
			t.Fatalf("control character in %q", line)
		}
		if i%256 == 0 {
			b = pipeline.NewBatch()
		}
	}
	if _, err := lines.Next(); err != io.EOF {
		t.Fatalf("%d messages made more lines (%v)", n, err)
	}
}

// SD-NAME is PRINTUSASCII except '=', ']' and '"': [!#-<>-\^-~].
var (
	re5424 = regexp.MustCompile(`(?s)^<(0|[1-9][0-9]{0,2})>1 (-|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z) ` +
		`([!-~]{1,255}) ([!-~]{1,48}) ([!-~]{1,128}) ([!-~]{1,32}) ` +
		`(-|(?:\[[!#-<>-\\^-~]{1,32}(?: [!#-<>-\\^-~]{1,32}="(?:[^"\\\]]|\\["\\\]])*")*\])+)(?: (.*))?$`)
	reElem  = regexp.MustCompile(`\[([!#-<>-\\^-~]+)((?: [!#-<>-\\^-~]+="(?:[^"\\\]]|\\["\\\]])*")*)\]`)
	reParam = regexp.MustCompile(` ([!#-<>-\\^-~]+)="((?:[^"\\\]]|\\["\\\]])*)"`)
	unSD    = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\]`, `]`)
)

// strict5424 is an independent parser of what the encoder writes: RFC 5424
// with VERSION 1, UTC timestamps of at most six fraction digits, only the
// three SD escapes, UTF-8 PARAM-VALUEs, each SD-ID once.
func strict5424(frame []byte) (*pipeline.Message, error) {
	sm := re5424.FindSubmatch(frame)
	if sm == nil {
		return nil, errors.New("not RFC 5424")
	}
	m := pipeline.NewMessage()
	m.Type = "syslog"
	pri, _ := strconv.Atoi(string(sm[1]))
	if pri > 191 {
		return nil, fmt.Errorf("PRI %d", pri)
	}
	m.Severity = int32(pri % 8)
	m.AddInt("facility", int64(pri/8))
	if ts := sm[2]; string(ts) != "-" {
		ns, err := rfc3339.Parse(ts)
		if err != nil {
			return nil, err
		}
		m.Timestamp = ns
	}
	nilable := func(b []byte) string {
		if string(b) == "-" {
			return ""
		}
		return string(b)
	}
	m.Hostname = nilable(sm[3])
	for i, name := range []string{"appname", "procid", "msgid"} {
		if v := nilable(sm[4+i]); v != "" {
			m.AddString(name, v)
		}
	}
	if pid, err := strconv.ParseInt(string(sm[5]), 10, 32); err == nil && pid >= 0 && sm[5][0] != '+' {
		m.Pid = int32(pid)
	}
	if sd := sm[7]; string(sd) != "-" {
		seen := map[string]bool{}
		for _, e := range reElem.FindAllSubmatch(sd, -1) {
			id := string(e[1])
			if seen[id] {
				return nil, fmt.Errorf("SD-ID %s twice", id)
			}
			seen[id] = true
			ps := reParam.FindAllSubmatch(e[2], -1)
			if len(ps) == 0 {
				m.AddField(pipeline.NewField("sd."+id, pipeline.TypeString, ""))
			}
			for _, p := range ps {
				if !utf8.Valid(p[2]) {
					return nil, fmt.Errorf("PARAM-VALUE %q is not UTF-8", p[2])
				}
				m.AddString("sd."+id+"."+string(p[1]), unSD.Replace(string(p[2])))
			}
		}
	}
	m.Payload = string(sm[8])
	return m, nil
}

// TestSyslog3164RoundTrip: RFC 3164 keeps facility, severity, the time to
// the second, hostname, TAG, PID and MSG; with escape_newlines each
// message is one line, and an independent parser agrees.
func TestSyslog3164RoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	enc, dec, _ := newSyslog(t, func(c *sysenc.Config) {
		c.Format = "rfc3164"
		c.EscapeNewlines = true
	}, func(c *sysdec.Config) { c.Format = "rfc3164" }, now)
	r := rand.New(rand.NewPCG(5, 5))
	n := records(t) / 5
	var stream []byte
	var wants []*pipeline.Message
	for i := range n {
		in, want := pipeline.NewMessage(), pipeline.NewMessage()
		in.Type, want.Type = "syslog", "syslog"
		fac := r.IntN(24)
		in.Severity = int32(r.IntN(8))
		want.Severity = in.Severity
		// A time this year before now, so the year inference finds it.
		in.Timestamp = time.Date(2026, 1+time.Month(r.IntN(10)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e9), time.UTC).UnixNano()
		want.Timestamp = in.Timestamp - in.Timestamp%1e9
		in.AddInt("facility", int64(fac))
		want.AddInt("facility", int64(fac))
		in.Hostname = hostile(r)
		want.Hostname = printable(in.Hostname, 255)
		if strings.HasSuffix(want.Hostname, ":") {
			want.Hostname = want.Hostname[:len(want.Hostname)-1] + "_"
		}
		if in.Hostname == "" {
			want.Hostname = ""
		}
		if in.Hostname == "-" {
			want.Hostname = "-" // RFC 3164 has no NILVALUE
		}
		app := word(r, 40)
		in.AddString("appname", app)
		want.AddString("appname", app[:min(len(app), 32)])
		if r.IntN(2) == 0 {
			pid := strconv.Itoa(r.IntN(1 << 20))
			in.AddString("procid", pid)
			want.AddString("procid", pid)
			want.Pid = int32(mustAtoi(pid))
		}
		in.Payload = hostile(r)
		want.Payload = octal(in.Payload)
		rec, err := enc.Encode(nil, in)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		stream = append(append(stream, rec...), '\n')
		wants = append(wants, want)
	}
	lines := framing.NewLineReader(bytes.NewReader(stream), 1<<20)
	lines.KeepCR = true
	b := pipeline.NewBatch()
	for i, want := range wants {
		line, err := lines.Next()
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if err := dec.Decode(pipeline.Record{Data: line}, b); err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
		if d := sameHeader(b.Msgs[len(b.Msgs)-1], want); d != "" {
			t.Fatalf("decoder: %s\nline %q", d, line)
		}
		got, err := strict3164(line, now)
		if err != nil {
			t.Fatalf("strict parser: %v\nline %q", err, line)
		}
		if d := sameHeader(got, want); d != "" {
			t.Fatalf("strict parser: %s\nline %q", d, line)
		}
		if i%256 == 0 {
			b = pipeline.NewBatch()
		}
	}
	if _, err := lines.Next(); err != io.EOF {
		t.Fatalf("%d messages made more lines (%v)", n, err)
	}
}

func mustAtoi(s string) int {
	v, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return v
}

var re3164 = regexp.MustCompile(`^<(0|[1-9][0-9]{0,2})>((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 1-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]) ` +
	`(?:([!-~]*[!-9;-~]) )?([!-9;-Z\\^-~]{1,32})(?:\[([!-Z\\^-~]{1,128})\])?: (.*)$`)

// strict3164 is an independent parser of the encoder's RFC 3164 form with
// escape_newlines: no control character but TAB anywhere.
func strict3164(line []byte, now time.Time) (*pipeline.Message, error) {
	if bytes.ContainsFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' }) {
		return nil, errors.New("control character")
	}
	sm := re3164.FindSubmatch(line)
	if sm == nil {
		return nil, errors.New("not RFC 3164")
	}
	m := pipeline.NewMessage()
	m.Type = "syslog"
	pri, _ := strconv.Atoi(string(sm[1]))
	m.Severity = int32(pri % 8)
	m.AddInt("facility", int64(pri/8))
	ts, err := time.Parse("Jan _2 15:04:05 2006", string(sm[2])+" "+strconv.Itoa(now.Year()))
	if err != nil {
		return nil, err
	}
	m.Timestamp = ts.UnixNano()
	m.Hostname = string(sm[3])
	m.AddString("appname", string(sm[4]))
	if len(sm[5]) > 0 {
		m.AddString("procid", string(sm[5]))
		m.Pid = int32(mustAtoi(string(sm[5])))
	}
	m.Payload = string(sm[6])
	return m, nil
}
