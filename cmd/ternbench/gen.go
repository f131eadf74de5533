package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"
)

// genConfig is what "ternbench gen" was asked for.
type genConfig struct {
	Mode  string
	N     int
	Size  int       // syslog and json: line length without the newline
	Seed  uint64    // the same seed gives the same bytes
	Rate  int       // events per second of log time
	Start time.Time // log time of event 0

	// cef only
	Sources   int     // distinct source addresses
	FailRatio float64 // share of AuthFail events
	Dist      string  // uniform, zipf or spray
	Attackers int     // sources that send a burst of failures
	Burst     int     // failures in each attacker's burst
	Threshold int     // the detection's threshold and window, for the burst
	Window    time.Duration
	IPv6      float64 // share of sources with an IPv6 address
	Header    string  // rfc5424 or rfc3164
}

// genSummary describes what was written; gen prints it on stderr.
type genSummary struct {
	Mode   string `json:"mode"`
	Events int    `json:"events"`
	Bytes  int64  `json:"bytes"`
	First  string `json:"first"` // log time of the first and last event
	Last   string `json:"last"`
	*cefSummary
}

// defaultStart is the log time of event 0 unless -start says otherwise.
const defaultStart = "2025-03-11T09:00:00Z"

// at is the log time of event i: i/rate seconds after the start.
func (c genConfig) at(i int) time.Time {
	return c.Start.Add(time.Duration(int64(i) * int64(time.Second) / int64(c.Rate)))
}

func cmdGen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ternbench gen -mode syslog|json|cef -n N -o FILE [flags]

Writes N deterministic events, one a line. syslog: RFC 5424 lines of -size
bytes (W1, W3); json: JSON objects of -size bytes with a "timestamp" key and
typed fields (W2); cef: CEF over syslog from -sources distinct addresses, a
-fail-ratio share of them authentication failures (W4). A JSON summary goes
to stderr; for cef it says how many sources cross the burst threshold.

`)
		fs.PrintDefaults()
	}
	var c genConfig
	fs.StringVar(&c.Mode, "mode", "syslog", "syslog, json or cef")
	fs.IntVar(&c.N, "n", 1_000_000, "events")
	out := fs.String("o", "", "output file (- for stdout)")
	fs.IntVar(&c.Size, "size", 0, "line length without the newline (default 250 syslog, 300 json; cef lines vary)")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed: the same seed writes the same bytes")
	fs.IntVar(&c.Rate, "rate", 10_000, "events per second of log time (spaces the timestamps)")
	start := fs.String("start", defaultStart, `log time of the first event, RFC 3339, or "now" (to the second)`)
	fs.IntVar(&c.Sources, "sources", 10_000, "cef: distinct source addresses (at most 16777216)")
	fs.Float64Var(&c.FailRatio, "fail-ratio", 0.3, "cef: share of events that are authentication failures (deviceEventClassId=AuthFail)")
	fs.StringVar(&c.Dist, "dist", "spray", "cef: how sources are drawn: spray (each in turn, the most distinct sources at once), uniform (at random) or zipf (a few heavy hitters)")
	fs.IntVar(&c.Attackers, "attackers", 10, "cef: sources that each send a burst of failures crossing -threshold within -window")
	fs.IntVar(&c.Burst, "burst", 0, "cef: failures in each attacker's burst, sent within a third of -window (default 1.5 x -threshold)")
	fs.IntVar(&c.Threshold, "threshold", 20, "cef: failures from one source within -window that raise an alert (auth_failure_burst.lua's default)")
	fs.DurationVar(&c.Window, "window", 30*time.Second, "cef: the detection's sliding window (auth_failure_burst.lua's default)")
	fs.Float64Var(&c.IPv6, "ipv6", 0, "cef: share of sources with IPv6 addresses (2001:db8::/32)")
	fs.StringVar(&c.Header, "header", "rfc5424", "cef: syslog header, rfc5424 or rfc3164")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "ternbench gen: -o is required")
		return 2
	}
	if *start == "now" {
		c.Start = time.Now().UTC().Truncate(time.Second)
	} else if t, err := time.Parse(time.RFC3339, *start); err == nil {
		c.Start = t.UTC()
	} else {
		fmt.Fprintln(stderr, "ternbench gen: -start:", err)
		return 2
	}
	g, err := newGenerator(c)
	if err != nil {
		fmt.Fprintln(stderr, "ternbench gen:", err)
		return 2
	}
	w, closeOut := stdout, func() error { return nil }
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(stderr, "ternbench gen:", err)
			return 1
		}
		w, closeOut = f, f.Close
	}
	sum, err := g.writeAll(w)
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(stderr, "ternbench gen:", err)
		return 1
	}
	j, _ := json.Marshal(sum)
	fmt.Fprintln(stderr, string(j))
	return 0
}

// generator writes the events of one config.
type generator struct {
	cfg  genConfig
	r    *rand.Rand
	line func(b []byte, i int) []byte // appends event i without the newline
	cef  *cefGen
}

func newGenerator(c genConfig) (*generator, error) {
	if c.N < 0 || c.Rate < 1 {
		return nil, fmt.Errorf("-n must be >= 0 and -rate >= 1")
	}
	if c.Start.IsZero() {
		c.Start, _ = time.Parse(time.RFC3339, defaultStart)
	}
	g := &generator{cfg: c, r: rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))}
	switch c.Mode {
	case "syslog":
		if g.cfg.Size == 0 {
			g.cfg.Size = 250
		}
		g.line = g.syslogLine
	case "json":
		if g.cfg.Size == 0 {
			g.cfg.Size = 300
		}
		g.line = g.jsonLine
	case "cef":
		cg, err := newCEFGen(c, g.r)
		if err != nil {
			return nil, err
		}
		g.cef, g.line = cg, cg.line
	default:
		return nil, fmt.Errorf("-mode must be syslog, json or cef, not %q", c.Mode)
	}
	return g, nil
}

func (g *generator) writeAll(w io.Writer) (genSummary, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var n int64
	b := make([]byte, 0, 1024)
	for i := range g.cfg.N {
		b = append(g.line(b[:0], i), '\n')
		n += int64(len(b))
		if _, err := bw.Write(b); err != nil {
			return genSummary{}, err
		}
	}
	sum := genSummary{Mode: g.cfg.Mode, Events: g.cfg.N, Bytes: n}
	if g.cfg.N > 0 {
		sum.First = g.cfg.at(0).Format(time.RFC3339Nano)
		sum.Last = g.cfg.at(g.cfg.N - 1).Format(time.RFC3339Nano)
	}
	if g.cef != nil {
		sum.cefSummary = g.cef.summary()
	}
	return sum, bw.Flush()
}

// ---- shared vocabulary

var (
	sites = []string{"fra1", "ams2", "iad1"}
	roles = []string{"web", "api", "db", "cache", "lb", "worker"}
	hosts = func() (h []string) {
		for _, s := range sites {
			for _, r := range roles {
				for k := 1; k <= 12; k++ {
					h = append(h, fmt.Sprintf("%s-%02d.%s.example.net", r, k, s))
				}
			}
		}
		return h
	}()
	users   = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "deploy", "backup", "svc-ci", "j.smith"}
	paths   = []string{"/api/v1/items", "/api/v1/orders", "/api/v2/users", "/login", "/static/app.js", "/healthz", "/search"}
	methods = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	status  = []int{200, 200, 200, 201, 204, 301, 304, 400, 401, 403, 404, 500, 503}
	agents  = []string{"Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "Go-http-client/2.0", "python-requests/2.31"}
	tables  = []string{"orders", "customers", "items", "payments", "sessions"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// appendIPv4 appends a private address.
func appendIPv4(b []byte, r *rand.Rand, first byte) []byte {
	b = strconv.AppendUint(b, uint64(first), 10)
	for range 3 {
		b = append(b, '.')
		b = strconv.AppendUint(b, uint64(r.IntN(256)), 10)
	}
	return b
}

const hexDigits = "0123456789abcdef"

var cet = time.FixedZone("", 3600)

// fit pads the line b[start:] with a trace id in hex to size bytes. With
// cut it also shortens a longer line, but never to less than b[:keep]; only
// lines whose tail is plain ASCII may be cut.
func fit(b []byte, r *rand.Rand, start, keep, size int, cut bool) []byte {
	if len(b)-start > size {
		if cut {
			b = b[:max(start+size, keep)]
		}
		return b
	}
	if need := size - (len(b) - start); need > 0 {
		tag := " trace_id="
		if need <= len(tag) {
			tag = tag[:need]
		}
		b = append(b, tag...)
		for len(b)-start < size {
			b = append(b, hexDigits[r.IntN(16)])
		}
	}
	return b
}

// ---- syslog (W1, W3)

// syslogLine writes one RFC 5424 line from one of a few typical daemons.
// Hosts at fra1 write local time with an offset, the others UTC.
func (g *generator) syslogLine(b []byte, i int) []byte {
	r, start := g.r, len(b)
	host := hosts[(i*7+r.IntN(5))%len(hosts)]
	t := g.cfg.at(i)
	if strings.Contains(host, ".fra1.") {
		t = t.In(cet)
	}
	sev := []int{6, 6, 6, 6, 5, 4, 3, 7}[r.IntN(8)]
	pri := func(fac int) {
		b = append(b, '<')
		b = strconv.AppendInt(b, int64(fac*8+sev), 10)
		b = append(b, ">1 "...)
		b = t.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
		b = append(b, ' ')
		b = append(b, host...)
		b = append(b, ' ')
	}
	pid := func() { b = strconv.AppendInt(b, int64(1000+r.IntN(60000)), 10) }
	var keep int // the header and structured data: fit never cuts them
	switch k := r.IntN(8); k {
	case 0: // nginx access log
		pri(23)
		b = append(b, "nginx "...)
		pid()
		st := pick(r, status)
		size := r.IntN(90000)
		b = fmt.Appendf(b, ` ACCESS [http@32473 method="%s" status="%d" bytes="%d" rt="0.%03d"]`, pick(r, methods), st, size, r.IntN(1000))
		keep = len(b)
		b = append(b, ' ')
		b = appendIPv4(b, r, 10)
		b = fmt.Appendf(b, ` - %s [%s] "GET %s/%d HTTP/1.1" %d %d "-" "%s"`, pick(r, users),
			t.Format("02/Jan/2006:15:04:05 -0700"), pick(r, paths), r.IntN(100000), st, size, pick(r, agents))
	case 1: // sshd
		pri(10)
		b = append(b, "sshd "...)
		pid()
		b = append(b, " - -"...)
		keep = len(b)
		if r.IntN(3) == 0 {
			b = fmt.Appendf(b, " Failed password for invalid user %s from ", pick(r, []string{"admin", "root", "oracle", "test", "ubuntu"}))
		} else {
			b = fmt.Appendf(b, " Accepted publickey for %s from ", pick(r, users))
		}
		b = appendIPv4(b, r, 10)
		b = fmt.Appendf(b, " port %d ssh2", 1024+r.IntN(64000))
	case 2: // postgres
		pri(16)
		b = append(b, "postgres "...)
		pid()
		b = fmt.Appendf(b, ` - [db@32473 name="%s" user="app"]`, pick(r, tables))
		keep = len(b)
		b = fmt.Appendf(b, " LOG:  duration: %d.%03d ms  statement: SELECT id, total FROM %s WHERE customer_id = %d",
			r.IntN(200), r.IntN(1000), pick(r, tables), r.IntN(1000000))
	case 3: // kernel firewall
		pri(0)
		b = append(b, "kernel - - -"...)
		keep = len(b)
		b = append(b, " [UFW BLOCK] IN=eth0 OUT= SRC="...)
		b = appendIPv4(b, r, 10)
		b = append(b, " DST="...)
		b = appendIPv4(b, r, 192)
		b = fmt.Appendf(b, " LEN=60 TOS=0x00 TTL=52 PROTO=TCP SPT=%d DPT=%d WINDOW=29200 SYN", 1024+r.IntN(64000), pick(r, []int{22, 23, 445, 3389, 8080}))
	case 4: // an application with two SD elements, sometimes with escapes
		pri(17)
		b = append(b, "checkout-svc "...)
		pid()
		b = fmt.Appendf(b, ` ORDER [meta@32473 seq="%d" iut="3" eventSource="Application"][origin@32473 ip="`, i)
		b = appendIPv4(b, r, 10)
		b = append(b, `" software="checkout" swVersion="4.2.1"`...)
		if r.IntN(20) == 0 {
			b = append(b, ` note="say \"hi\" \\ [x\]"`...)
		}
		b = append(b, ']')
		keep = len(b)
		b = fmt.Appendf(b, ` order %d placed by "%s" total=%d.%02d EUR`, r.IntN(1000000), pick(r, users), r.IntN(500), r.IntN(100))
	case 5: // cron
		pri(9)
		b = append(b, "CRON "...)
		pid()
		b = append(b, " - -"...)
		keep = len(b)
		b = fmt.Appendf(b, " (%s) CMD (/usr/local/bin/backup.sh --%s > /dev/null 2>&1)", pick(r, users), pick(r, []string{"full", "incremental"}))
	case 6: // haproxy
		pri(18)
		b = append(b, "haproxy "...)
		pid()
		b = append(b, " HTTP -"...)
		keep = len(b)
		b = append(b, ' ')
		b = appendIPv4(b, r, 10)
		b = fmt.Appendf(b, `:%d [%s] fe_https~ be_api/api-%02d 0/0/1/%d/%d %d %d - - ---- 12/12/3/1/0 0/0 "%s %s HTTP/1.1"`,
			1024+r.IntN(64000), t.Format("02/Jan/2006:15:04:05.000"), 1+r.IntN(12), r.IntN(50), r.IntN(60),
			pick(r, status), r.IntN(90000), pick(r, methods), pick(r, paths))
	default: // an audit trail with SD and no procid
		pri(10)
		b = append(b, "auth-api - AUDIT "...)
		u, result, verb := pick(r, users), "success", "succeeded"
		if r.IntN(4) == 0 {
			result, verb = "failure", "failed"
		}
		b = fmt.Appendf(b, `[audit@32473 user="%s" action="login" result="%s"]`, u, result)
		keep = len(b)
		b = fmt.Appendf(b, " user %s login %s from ", u, verb)
		b = appendIPv4(b, r, 10)
	}
	return fit(b, r, start, keep, g.cfg.Size, true)
}

// ---- json (W2)

// jsonLine writes one JSON object: strings, integers, doubles, a bool, a
// nested object and an array, the message sometimes with escapes and
// non-ASCII text. It avoids the keys the json decoder maps to the message
// header (bench/w2.toml keeps pid a field).
func (g *generator) jsonLine(b []byte, i int) []byte {
	r, start := g.r, len(b)
	b = append(b, `{"timestamp":"`...)
	b = g.cfg.at(i).AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	st := pick(r, status)
	b = fmt.Appendf(b, `","host":"%s","service":"%s","level":"%s","pid":%d,"seq":%d,"latency_ms":%d.%03d,"status":%d,"cached":%t,"user":{"id":"u-%06d","role":"%s"},"tags":["%s","%s"],"message":"`,
		hosts[(i*7)%len(hosts)], pick(r, []string{"checkout", "search", "auth", "inventory", "gateway"}),
		pick(r, []string{"debug", "info", "info", "info", "warn", "error"}), 1000+r.IntN(60000), i,
		r.IntN(2000), r.IntN(1000), st, r.IntN(4) == 0, r.IntN(1000000),
		pick(r, []string{"admin", "user", "guest"}), pick(r, sites), pick(r, []string{"prod", "canary"}))
	keep := len(b)
	b = fmt.Appendf(b, `%s %s/%d`, pick(r, methods), pick(r, paths), r.IntN(100000))
	switch r.IntN(10) {
	case 0:
		b = append(b, ` \"vip\" C:\\x`...)
	case 1:
		b = append(b, ` caf\u00e9 日本`...)
	}
	b = fit(b, r, start, keep, g.cfg.Size-2, false)
	return append(b, `"}`...)
}
