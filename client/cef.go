package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ternlog/tern/internal/cefx"
	"github.com/ternlog/tern/pipeline"
)

// CEF signatures of the mozilla cef library (formats.md §1.6), for the
// events web applications report most.
const (
	AuthFailure     = "AuthFail"
	CaptchaFailure  = "CaptchaFail"
	OverrideFailure = "InvalidAdmin"
	AccountLocked   = "AccountLockout"
	PasswdResetClr  = "PasswordResetCleared"
)

// Facility is a syslog facility, by the name the mozilla cef library and
// tern's encoders use.
type Facility string

// The syslog facilities, KERN (0) to LOCAL7 (23).
const (
	KERN     Facility = "KERN"
	USER     Facility = "USER"
	MAIL     Facility = "MAIL"
	DAEMON   Facility = "DAEMON"
	AUTH     Facility = "AUTH"
	SYSLOG   Facility = "SYSLOG"
	LPR      Facility = "LPR"
	NEWS     Facility = "NEWS"
	UUCP     Facility = "UUCP"
	CRON     Facility = "CRON"
	AUTHPRIV Facility = "AUTHPRIV"
	FTP      Facility = "FTP"
	LOCAL0   Facility = "LOCAL0"
	LOCAL1   Facility = "LOCAL1"
	LOCAL2   Facility = "LOCAL2"
	LOCAL3   Facility = "LOCAL3"
	LOCAL4   Facility = "LOCAL4"
	LOCAL5   Facility = "LOCAL5"
	LOCAL6   Facility = "LOCAL6"
	LOCAL7   Facility = "LOCAL7"
)

var facilities = []Facility{KERN, USER, MAIL, DAEMON, AUTH, SYSLOG, LPR, NEWS, UUCP, CRON, AUTHPRIV, FTP,
	LOCAL0, LOCAL1, LOCAL2, LOCAL3, LOCAL4, LOCAL5, LOCAL6, LOCAL7}

// Valid reports whether f is one of the named facilities.
func (f Facility) Valid() bool {
	for _, v := range facilities {
		if f == v {
			return true
		}
	}
	return false
}

// Priority is a syslog priority (severity), EMERG (0) to DEBUG (7).
type Priority string

// The syslog priorities.
const (
	EMERG   Priority = "EMERG"
	ALERT   Priority = "ALERT"
	CRIT    Priority = "CRIT"
	ERR     Priority = "ERR"
	WARNING Priority = "WARNING"
	NOTICE  Priority = "NOTICE"
	INFO    Priority = "INFO"
	DEBUG   Priority = "DEBUG"
)

var priorities = []Priority{EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG}

// Level is the priority's number (0..7), -1 when it is not one.
func (p Priority) Level() int {
	for i, v := range priorities {
		if p == v {
			return i
		}
	}
	return -1
}

// Field names of the syslog envelope a CEF message carries beside its
// line, as heka-cef named them; tern's cef and syslog encoders build the
// syslog header from them.
const (
	FieldSyslogFacility = cefx.MetaSyslogFacility
	FieldSyslogIdent    = cefx.MetaSyslogIdent
	FieldSyslogPriority = cefx.MetaSyslogPriority
)

// CEFConfig is what every CEF event of an application shares: the device
// triple of the CEF header and the syslog envelope.
type CEFConfig struct {
	Vendor, Product, Version string
	// Facility, Ident and Priority travel as cef_meta.* fields; defaults
	// LOCAL4, the program name, INFO (heka-cef's).
	Facility Facility
	Ident    string
	Priority Priority
	// Hostname is the message Hostname (default: the client's).
	Hostname string
	// SyslogPrefix writes the Payload as the mozilla cef library logs a
	// record, "<Mmm dd hh:mm:ss> <host> CEF:0|…", instead of the bare CEF
	// line (tern's cef decoder reads both).
	SyslogPrefix bool
}

// DefaultCEFConfig returns the defaults: vendor and product "tern-client",
// version "1", LOCAL4, INFO, the program name as ident.
func DefaultCEFConfig() CEFConfig {
	return CEFConfig{Vendor: "tern-client", Product: "tern-client", Version: "1", Facility: LOCAL4, Ident: progName(), Priority: INFO}
}

// WithCEF sets the CEF header's vendor, product and version.
func WithCEF(vendor, product, version string) Option {
	return func(o *options) { o.cef.Vendor, o.cef.Product, o.cef.Version = vendor, product, version }
}

// WithSyslogPrefix makes CEF events carry their line with the date and host
// prefix the mozilla cef library writes, for consumers that expect it.
func WithSyslogPrefix() Option {
	return func(o *options) { o.cef.SyslogPrefix = true }
}

// WithSyslog sets the syslog envelope of CEF events.
func WithSyslog(f Facility, ident string, p Priority) Option {
	return func(o *options) { o.cef.Facility, o.cef.Ident, o.cef.Priority = f, ident, p }
}

// Extension is one key=value pair of a CEF record.
type Extension struct{ Key, Value string }

// Event is one CEF event.
type Event struct {
	// Signature is the Device Event Class ID (AuthFailure, ...).
	Signature string
	// Name says what happened, for people.
	Name string
	// Severity is CEF's, 0 (least) to 10 (most important).
	Severity int
	// Extensions are written in this order; keys match
	// [A-Za-z0-9_][A-Za-z0-9_.,\[\]]*.
	Extensions []Extension
	// Priority overrides the client's syslog priority for this event
	// (empty: the client's, INFO by default).
	Priority Priority
}

// NewEvent returns an event.
func NewEvent(signature, name string, severity int) *Event {
	return &Event{Signature: signature, Name: name, Severity: severity}
}

// Set adds key=value, or replaces the value of key.
func (e *Event) Set(key, value string) *Event {
	for i := range e.Extensions {
		if e.Extensions[i].Key == key {
			e.Extensions[i].Value = value
			return e
		}
	}
	e.Extensions = append(e.Extensions, Extension{key, value})
	return e
}

// FromRequest sets what an HTTP request tells about an event: src (the
// peer's address; X-Forwarded-For is not trusted), requestMethod, request
// (the URL), requestClientApplication (the User-Agent) and dhost (the Host
// asked for).
func (e *Event) FromRequest(r *http.Request) *Event {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		e.Set("src", host)
	} else if r.RemoteAddr != "" {
		e.Set("src", r.RemoteAddr)
	}
	e.Set("requestMethod", r.Method)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if r.URL != nil {
		u := *r.URL
		if u.Host == "" {
			u.Scheme, u.Host = scheme, r.Host
		}
		e.Set("request", u.String())
	}
	if ua := r.UserAgent(); ua != "" {
		e.Set("requestClientApplication", ua)
	}
	if r.Host != "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		e.Set("dhost", host)
	}
	return e
}

// Line renders the CEF record: CEF:0|vendor|product|version|signature|
// name|severity|extensions, escaped as formats.md §1.2 says (header: \ and
// | escaped, line breaks become spaces; values: \ and = escaped, line
// breaks as \n and \r).
func (e *Event) Line(vendor, product, version string) (string, error) {
	if e.Severity < 0 || e.Severity > 10 {
		return "", fmt.Errorf("client: CEF severity %d is not 0..10", e.Severity)
	}
	var b strings.Builder
	b.WriteString("CEF:0|")
	for _, h := range []string{vendor, product, version, e.Signature, e.Name} {
		writeHeader(&b, h)
		b.WriteByte('|')
	}
	b.WriteString(strconv.Itoa(e.Severity))
	b.WriteByte('|')
	for i, x := range e.Extensions {
		if !cefx.ValidKey(x.Key) {
			return "", fmt.Errorf("client: %q is not a CEF extension key", x.Key)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x.Key)
		b.WriteByte('=')
		writeValue(&b, x.Value)
	}
	return b.String(), nil
}

func writeHeader(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '|':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\r':
			b.WriteByte(' ')
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
		case '\n':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
}

func writeValue(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '=':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteByte(c)
		}
	}
}

// Message builds the message of e: Type "cef", the CEF line as Payload,
// Severity from the syslog priority, the cef_meta.* envelope fields, and
// the header values and extensions as fields named as tern's CEF decoder
// names them (deviceEventClassId, name, severity, then each key), so
// matchers and other encoders see them.
func (cfg CEFConfig) Message(e *Event) (*pipeline.Message, error) {
	if !cfg.Facility.Valid() {
		return nil, fmt.Errorf("client: syslog facility %q is not KERN..LOCAL7", cfg.Facility)
	}
	prio := cfg.Priority
	if e.Priority != "" {
		prio = e.Priority
	}
	lvl := prio.Level()
	if lvl < 0 {
		return nil, fmt.Errorf("client: syslog priority %q is not EMERG..DEBUG", prio)
	}
	line, err := e.Line(cfg.Vendor, cfg.Product, cfg.Version)
	if err != nil {
		return nil, err
	}
	m := pipeline.NewMessage()
	m.Type = "cef"
	m.Timestamp = time.Now().UnixNano()
	m.Payload = line
	if cfg.SyslogPrefix {
		m.Payload = cfg.prefixed(line, m.Timestamp)
	}
	m.Severity = int32(lvl)
	m.Hostname = cfg.Hostname
	m.Pid = pid
	m.Fields = make([]pipeline.Field, 0, 6+len(e.Extensions))
	m.AddString(FieldSyslogFacility, string(cfg.Facility))
	m.AddString(FieldSyslogIdent, cfg.Ident)
	m.AddString(FieldSyslogPriority, string(prio))
	m.AddString(cefx.FieldSignature, e.Signature)
	m.AddString(cefx.FieldName, e.Name)
	m.AddString(cefx.FieldSeverity, strconv.Itoa(e.Severity))
	for _, x := range e.Extensions {
		m.AddString(x.Key, x.Value)
	}
	return m, nil
}

// prefixed is line behind the mozilla cef library's prefix: the local time
// as syslog's "Mmm dd hh:mm:ss" and the host name.
func (cfg CEFConfig) prefixed(line string, ns int64) string {
	host := cfg.Hostname
	if host == "" {
		host = "-"
	}
	return time.Unix(0, ns).Format(time.Stamp) + " " + host + " " + line
}

// SendCEF sends e with the client's CEF settings (WithCEF, WithSyslog).
func (c *Client) SendCEF(ctx context.Context, e *Event) error {
	if e == nil {
		return errors.New("client: nil event")
	}
	m, err := c.o.cef.Message(e)
	if err != nil {
		return err
	}
	return c.Send(ctx, m)
}
