package client

import (
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cefdec "github.com/ternlog/tern/decoders/cef"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestEventLine(t *testing.T) {
	e := NewEvent(AuthFailure, "Login failed | for\r\nroot", 5).
		Set("suser", "root").
		Set("msg", "a=b\\c\nd\re").
		Set("act", "blocked a |")
	line, err := e.Line("Mozilla", "web\\app", "1.0")
	require.NoError(t, err)
	assert.Equal(t, `CEF:0|Mozilla|web\\app|1.0|AuthFail|Login failed \| for root|5|suser=root msg=a\=b\\c\nd\re act=blocked a |`, line)

	_, err = NewEvent(AuthFailure, "x", 11).Line("v", "p", "1")
	assert.ErrorContains(t, err, "severity 11")
	_, err = NewEvent(AuthFailure, "x", 1).Set("x-forwarded-for", "1.2.3.4").Line("v", "p", "1")
	assert.ErrorContains(t, err, "not a CEF extension key")
	assert.Len(t, NewEvent("s", "n", 0).Set("a", "1").Set("a", "2").Extensions, 1, "Set replaces")
}

func TestConstants(t *testing.T) {
	assert.Equal(t, []string{"AuthFail", "CaptchaFail", "InvalidAdmin", "AccountLockout", "PasswordResetCleared"},
		[]string{AuthFailure, CaptchaFailure, OverrideFailure, AccountLocked, PasswdResetClr})
	assert.True(t, LOCAL4.Valid())
	assert.False(t, Facility("LOCAL8").Valid())
	assert.Equal(t, 6, INFO.Level())
	assert.Equal(t, 0, EMERG.Level())
	assert.Equal(t, 7, DEBUG.Level())
	assert.Equal(t, -1, Priority("LOUD").Level())
	d := DefaultCEFConfig()
	assert.Equal(t, LOCAL4, d.Facility)
	assert.Equal(t, INFO, d.Priority)
}

func TestMessage(t *testing.T) {
	cfg := CEFConfig{Vendor: "Acme", Product: "shop", Version: "2", Facility: AUTH, Ident: "shop", Priority: WARNING, Hostname: "web-1"}
	m, err := cfg.Message(NewEvent(AccountLocked, "Account locked", 7).Set("suser", "alice"))
	require.NoError(t, err)
	assert.Equal(t, "cef", m.Type)
	assert.Equal(t, "CEF:0|Acme|shop|2|AccountLockout|Account locked|7|suser=alice", m.Payload)
	assert.Equal(t, int32(4), m.Severity)
	assert.Equal(t, "web-1", m.Hostname)
	for k, want := range map[string]string{
		FieldSyslogFacility: "AUTH", FieldSyslogIdent: "shop", FieldSyslogPriority: "WARNING",
		"deviceEventClassId": "AccountLockout", "name": "Account locked", "severity": "7", "suser": "alice",
	} {
		got, ok := m.FieldString(k)
		assert.True(t, ok, k)
		assert.Equal(t, want, got, k)
	}
	ev := NewEvent(AccountLocked, "Account locked", 9)
	ev.Priority = ALERT
	m, err = cfg.Message(ev)
	require.NoError(t, err)
	assert.Equal(t, int32(1), m.Severity)
	p, _ := m.FieldString(FieldSyslogPriority)
	assert.Equal(t, "ALERT", p, "the event's priority wins")
	cfg.Facility = "LOCAL9"
	_, err = cfg.Message(NewEvent("s", "n", 1))
	assert.ErrorContains(t, err, "facility")
	cfg.Facility, cfg.Priority = LOCAL4, "LOUD"
	_, err = cfg.Message(NewEvent("s", "n", 1))
	assert.ErrorContains(t, err, "priority")
}

func TestFromRequest(t *testing.T) {
	r := httptest.NewRequest("POST", "/login?next=%2Fhome", nil)
	r.RemoteAddr = "203.0.113.7:51234"
	r.Host = "shop.example:8443"
	r.Header.Set("User-Agent", "curl/8.0")
	r.Header.Set("X-Forwarded-For", "10.0.0.1")
	e := NewEvent(AuthFailure, "Login failed", 5).FromRequest(r)
	got := map[string]string{}
	for _, x := range e.Extensions {
		got[x.Key] = x.Value
	}
	assert.Equal(t, map[string]string{
		"src": "203.0.113.7", "requestMethod": "POST", "request": "http://shop.example:8443/login?next=%2Fhome",
		"requestClientApplication": "curl/8.0", "dhost": "shop.example",
	}, got)
}

// Whatever the header and extension values hold, the line decodes (tern's
// CEF decoder, formats.md §1.3 contract) to exactly those values: one
// record, no forged keys.
func TestLineDecodesBack(t *testing.T) {
	dec, err := cefdec.New(pipelinetest.Settings(t, "decoders.cef"), cefdec.DefaultConfig())
	require.NoError(t, err)
	alphabet := []string{"a", "b", " ", "=", "|", "\\", "\n", "\r", "\t", "x=", " k=v", "é", "\\n"}
	r := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 2000 {
		name := str()
		vals := []string{"v" + str(), str(), str() + "z"}
		e := NewEvent(AuthFailure, name, r.IntN(11)).Set("msg", vals[0]).Set("cs1", vals[1]).Set("suser", vals[2])
		line, err := e.Line("tern", "test", "1")
		require.NoError(t, err)
		b := pipeline.NewBatch()
		require.NoError(t, dec.Decode(pipeline.Record{Data: []byte(line)}, b), "%q", line)
		m := b.Msgs[0]
		wantName := strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(name)
		gotName, _ := m.FieldString("name")
		require.Equal(t, wantName, gotName, "%q", line)
		for i, k := range []string{"msg", "cs1", "suser"} {
			got, _ := m.FieldString(k)
			want := strings.TrimRight(vals[i], " \t")
			if i < 2 {
				want = vals[i] // only the last value loses trailing blanks
			}
			require.Equal(t, want, got, "%s in %q", k, line)
		}
	}
}

// Every CEF message carries the process id, and the mozilla cef library's
// "<date> <host> CEF:…" form stays available; tern's cef decoder reads it
// back with the same fields.
func TestMessagePidAndSyslogPrefix(t *testing.T) {
	cfg := CEFConfig{Vendor: "Acme", Product: "shop", Version: "2", Facility: AUTH, Ident: "shop", Priority: WARNING, Hostname: "web-1"}
	ev := NewEvent(AuthFailure, "Login failed", 5).Set("suser", "bob")
	m, err := cfg.Message(ev)
	require.NoError(t, err)
	assert.Equal(t, int32(os.Getpid()), m.Pid)
	assert.NotZero(t, m.Timestamp)

	cfg.SyslogPrefix = true
	m, err = cfg.Message(ev)
	require.NoError(t, err)
	want := time.Unix(0, m.Timestamp).Format(time.Stamp) + " web-1 CEF:0|Acme|shop|2|AuthFail|Login failed|5|suser=bob"
	assert.Equal(t, want, m.Payload)
	assert.Regexp(t, `^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d web-1 CEF:0\|`, m.Payload)

	dec, err := cefdec.New(pipelinetest.Settings(t, "decoders.cef"), cefdec.DefaultConfig())
	require.NoError(t, err)
	b := pipeline.NewBatch()
	require.NoError(t, dec.Decode(pipeline.Record{Data: []byte(m.Payload)}, b))
	d := b.Msgs[0]
	for k, v := range map[string]string{"deviceEventClassId": "AuthFail", "name": "Login failed", "suser": "bob"} {
		got, _ := d.FieldString(k)
		assert.Equal(t, v, got, k)
	}
	prefix, _ := d.FieldString("cefPrefix")
	assert.Equal(t, time.Unix(0, m.Timestamp).Format(time.Stamp)+" web-1", prefix)
}

// Send fills a zero Pid with the client's process id, and keeps one set.
func TestSendFillsPid(t *testing.T) {
	r := startRouter(t, nil, "")
	c := dial(t, r.Addr, WithBatch(4<<10, 10, time.Millisecond))
	ctx := context.Background()
	require.NoError(t, c.Send(ctx, message("zero")))
	set := message("set")
	set.Pid = 77
	require.NoError(t, c.Send(ctx, set))
	require.NoError(t, flush(t, c))
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Equal(t, int32(os.Getpid()), r.pids["zero"])
	assert.Equal(t, int32(77), r.pids["set"])
}
