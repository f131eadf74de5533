package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// CEF over syslog for the detection pipeline (W4): authentication
// failures, logins, firewall and web events from -sources addresses.
// auth_failure_burst.lua keys on Fields[deviceEventClassId] == "AuthFail",
// Fields[src], Fields[suser], the syslog Hostname and the message time.

// maxSources is the size of the IPv4 pool (10.0.0.0/8).
const maxSources = 1 << 24

// cefEvent is one event before formatting; the values are as a decoder
// must give them back (unescaped).
type cefEvent struct {
	t    time.Time
	host string // the reporting device, syslog HOSTNAME
	app  string // syslog APP-NAME or TAG
	pid  int
	pri  int
	hdr  [6]string // vendor, product, version, deviceEventClassId, name, severity
	ext  []kv      // in record order; msg is last when present
	fail bool
	src  int // source index
}

type kv struct{ k, v string }

// product is a device that reports events.
type product struct {
	vendor, name, version, app, host string
	dpt                              int
}

var (
	sshGateway = product{"Northwind", "SSH Gateway", "2.4.1", "sshgw", "sshgw-%02d.corp.example.net", 22}
	vpn        = product{"Northwind", "VPN Concentrator", "5.0.3", "vpnd", "vpn-%02d.corp.example.net", 443}
	sso        = product{"Acme", "Web SSO", "1.9", "sso", "sso-%02d.corp.example.net", 443}
	firewall   = product{"Acme", "EdgeWall", "7.1.2", "edgewall", "fw-%02d.corp.example.net", 0}
	waf        = product{"Acme", "WAF", "3.2", "waf", "waf-%02d.corp.example.net", 443}
	authProds  = []product{sshGateway, sshGateway, vpn, sso}
	// what attackers try; a backslash and an '=' test the escaping
	attackUsers = []string{"admin", "root", "administrator", `CORP\administrator`, "oracle", "test", "guest", "user=admin"}
)

// cefGen draws the events of one "gen -mode cef" run and keeps the counts
// its summary reports.
type cefGen struct {
	cfg      genConfig
	r        *rand.Rand
	zipf     *rand.Zipf
	spray    uint64 // events drawn so far by the spray walk
	stride   uint64 // the spray walk's step, coprime with Sources
	attacks  []attack
	next     int     // first attack not yet written
	bgFail   float64 // probability that a background event is a failure
	attacker []int   // source index of each attacker

	seen      []uint64 // bitset of sources written
	distinct  int
	v6        int
	fails     int
	state     map[int32]*burstState // what auth_failure_burst.lua tracks
	crossed   map[int32]bool
	alerts    int
	lastSweep int64
}

// attack is one event of an attacker's burst.
type attack struct{ at, who int }

// burstState mirrors auth_failure_burst.lua's per-source state.
type burstState struct {
	times   []int64 // failure seconds within the window
	last    int64
	alerted bool
}

// cefSummary is the cef part of gen's summary.
type cefSummary struct {
	Sources     int     `json:"sources"`      // distinct src addresses written
	IPv6Sources int     `json:"ipv6_sources"` // of which IPv6
	Fails       int     `json:"fails"`        // AuthFail events
	FailRatio   float64 `json:"fail_ratio"`
	Dist        string  `json:"dist"`
	Attackers   int     `json:"attackers"`
	Burst       int     `json:"burst"`
	Threshold   int     `json:"threshold"`
	WindowS     float64 `json:"window_s"`
	// Crossing counts the sources with at least Threshold failures within
	// the window (seconds of log time, as the script counts); Alerts the
	// alerts auth_failure_burst.lua raises for them on this file (its
	// ticks expire sources in message time, so a replayed log gives them
	// too).
	Crossing int `json:"crossing"`
	Alerts   int `json:"alerts"`
}

func newCEFGen(c genConfig, r *rand.Rand) (*cefGen, error) {
	if c.Burst == 0 {
		c.Burst = c.Threshold + c.Threshold/2
	}
	switch {
	case c.Sources < 1 || c.Sources > maxSources:
		return nil, fmt.Errorf("-sources must be 1..%d", maxSources)
	case c.FailRatio < 0 || c.FailRatio > 1 || c.IPv6 < 0 || c.IPv6 > 1:
		return nil, fmt.Errorf("-fail-ratio and -ipv6 must be 0..1")
	case c.Threshold < 1 || c.Window < time.Second || c.Burst < 1 || c.Attackers < 0:
		return nil, fmt.Errorf("need -threshold >= 1, -window >= 1s, -burst >= 1, -attackers >= 0")
	case c.Attackers > c.Sources:
		return nil, fmt.Errorf("-attackers must not exceed -sources")
	case c.Header != "rfc5424" && c.Header != "rfc3164":
		return nil, fmt.Errorf("-header must be rfc5424 or rfc3164")
	}
	g := &cefGen{cfg: c, r: r, seen: make([]uint64, (c.Sources+63)/64),
		state: map[int32]*burstState{}, crossed: map[int32]bool{}}
	switch c.Dist {
	case "spray":
		g.stride = uint64(c.Sources)*5/8 | 1 // about the golden ratio, so neighbours in time are far apart
		for gcd(g.stride, uint64(c.Sources)) != 1 {
			g.stride += 2
		}
	case "uniform":
	case "zipf":
		g.zipf = rand.NewZipf(r, 1.1, 1, uint64(c.Sources-1))
	default:
		return nil, fmt.Errorf("-dist must be spray, uniform or zipf, not %q", c.Dist)
	}
	// Attackers are spread over the pool and their bursts over the file,
	// each burst within a third of the window so the whole burst counts.
	attackFails := c.Attackers * c.Burst
	if attackFails > 0 {
		span := min(c.N/c.Attackers, int(float64(c.Rate)*c.Window.Seconds()/3))
		if span < c.Burst || float64(attackFails) > c.FailRatio*float64(c.N) {
			return nil, fmt.Errorf("-n %d is too small for %d attackers of %d failures each at -fail-ratio %g (or use -attackers 0)",
				c.N, c.Attackers, c.Burst, c.FailRatio)
		}
		for j := range c.Attackers {
			g.attacker = append(g.attacker, (j*c.Sources+c.Sources/2)/c.Attackers)
			first := (2*j+1)*c.N/(2*c.Attackers) - span/2
			for k := range c.Burst {
				g.attacks = append(g.attacks, attack{first + k*span/c.Burst, j})
			}
		}
	}
	if bg := c.N - attackFails; bg > 0 {
		g.bgFail = max(0, (c.FailRatio*float64(c.N)-float64(attackFails))/float64(bg))
	}
	g.cfg = c
	return g, nil
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// source draws the source of a background event.
func (g *cefGen) source() int {
	n := uint64(g.cfg.Sources)
	switch {
	case g.zipf != nil:
		return int(g.zipf.Uint64())
	case g.stride != 0:
		k := g.spray
		g.spray++
		return int(k % n * g.stride % n)
	default:
		return g.r.IntN(g.cfg.Sources)
	}
}

// mix scrambles a source index (splitmix64's finaliser).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// address gives source idx its address: IPv4 in 10.0.0.0/8 (a bijection of
// the index, so all differ), or for an -ipv6 share of them IPv6 in
// 2001:db8::/32 with the index in the low bits.
func (g *cefGen) address(idx int) (string, bool) {
	h := mix(uint64(idx) + 0x9e3779b97f4a7c15)
	if g.cfg.IPv6 > 0 && float64(h>>11)/(1<<53) < g.cfg.IPv6 {
		var a [16]byte
		copy(a[:], []byte{0x20, 0x01, 0x0d, 0xb8, byte(h >> 8), byte(h), byte(h >> 24), byte(h >> 16)})
		a[12], a[13], a[14], a[15] = byte(idx>>24), byte(idx>>16), byte(idx>>8), byte(idx)
		return netip.AddrFrom16(a).String(), true
	}
	v := (uint32(idx)*0x9e3779 + 0x2545f) & 0xffffff // odd multiplier: a bijection mod 2^24
	return netip.AddrFrom4([4]byte{10, byte(v >> 16), byte(v >> 8), byte(v)}).String(), false
}

func (g *cefGen) line(b []byte, i int) []byte { return appendCEF(b, g.event(i), g.cfg.Header) }

// event draws event i; events must be drawn in order.
func (g *cefGen) event(i int) cefEvent {
	r := g.r
	ev := cefEvent{t: g.cfg.at(i).Truncate(time.Millisecond), pid: 1000 + r.IntN(60000)}
	spt := strconv.Itoa(1024 + r.IntN(64000))
	dst := func() string { return fmt.Sprintf("192.168.%d.%d", 10+r.IntN(4), 1+r.IntN(250)) }
	device := func(p product, n int) {
		ev.app, ev.host = p.app, fmt.Sprintf(p.host, 1+n)
		ev.hdr[0], ev.hdr[1], ev.hdr[2] = p.vendor, p.name, p.version
	}
	rt := strconv.FormatInt(ev.t.UnixMilli(), 10)

	if g.next < len(g.attacks) && g.attacks[g.next].at <= i {
		// an attacker tries user names against one gateway
		j := g.attacks[g.next].who
		g.next++
		ev.src, ev.fail = g.attacker[j], true
		src, _ := g.address(ev.src)
		device(sshGateway, j%4)
		user := attackUsers[(i+j)%len(attackUsers)]
		ev.pri = 10*8 + 4
		ev.hdr[3], ev.hdr[4], ev.hdr[5] = "AuthFail", "Failed password", "7"
		ev.ext = []kv{{"rt", rt}, {"src", src}, {"spt", spt}, {"dst", fmt.Sprintf("192.168.10.%d", 10+j)}, {"dpt", "22"},
			{"proto", "TCP"}, {"suser", user}, {"act", "deny"}, {"outcome", "failure"},
			{"msg", fmt.Sprintf("Failed password for %s from %s port %s ssh2", user, src, spt)}}
		g.count(&ev)
		return ev
	}

	ev.src = g.source()
	src, _ := g.address(ev.src)
	user := pick(r, users)
	switch r.IntN(4) {
	case 0:
		user = `CORP\` + user
	case 1:
		user += "@example.com"
	}
	if r.Float64() < g.bgFail {
		ev.fail = true
		p := pick(r, authProds)
		device(p, r.IntN(4))
		ev.pri = 10*8 + 5
		ev.hdr[3] = "AuthFail"
		ev.hdr[4], ev.hdr[5] = pick(r, []string{"Authentication failed", "Login failed | bad credentials", `Bad password for DOMAIN\user`}), pick(r, []string{"5", "6", "Medium"})
		reason := pick(r, []string{"reason=bad_password", "reason=unknown_user", "locked out", "expired password\nretry later"})
		ev.ext = []kv{{"rt", rt}, {"src", src}, {"spt", spt}, {"dst", dst()}, {"dpt", strconv.Itoa(p.dpt)},
			{"proto", "TCP"}, {"suser", user}, {"act", "deny"}, {"outcome", "failure"},
			{"msg", fmt.Sprintf("Login of %s from %s failed: %s", user, src, reason)}}
		g.count(&ev)
		return ev
	}
	switch k := r.IntN(10); {
	case k < 2: // a login
		p := pick(r, authProds)
		device(p, r.IntN(4))
		ev.pri = 10*8 + 6
		ev.hdr[3], ev.hdr[4], ev.hdr[5] = "AuthOK", "Authentication succeeded", "3"
		ev.ext = []kv{{"rt", rt}, {"src", src}, {"spt", spt}, {"dst", dst()}, {"dpt", strconv.Itoa(p.dpt)},
			{"proto", "TCP"}, {"suser", user}, {"act", "allow"}, {"outcome", "success"},
			{"msg", "Accepted publickey for " + user + " (ED25519 SHA256:" + strconv.FormatUint(r.Uint64(), 36) + ")"}}
	case k < 7: // a firewall decision
		device(firewall, r.IntN(8))
		deny := r.IntN(3) == 0
		ev.pri = 20*8 + 6
		ev.hdr[3], ev.hdr[4], ev.hdr[5] = "FW-ALLOW", "Connection allowed", "1"
		act := "allow"
		if deny {
			ev.pri = 20*8 + 4
			ev.hdr[3], ev.hdr[4], ev.hdr[5], act = "FW-DENY", "Connection denied", "5", "deny"
		}
		dpt := pick(r, []int{22, 53, 80, 443, 445, 3389, 8443})
		ev.ext = []kv{{"rt", rt}, {"src", src}, {"spt", spt}, {"dst", dst()}, {"dpt", strconv.Itoa(dpt)},
			{"proto", pick(r, []string{"TCP", "TCP", "UDP"})}, {"act", act}, {"deviceInboundInterface", "eth0"},
			{"cs1Label", "rule"}, {"cs1", fmt.Sprintf("%s port=%d from zone|untrust", act, dpt)}}
	default: // a web request
		device(waf, r.IntN(4))
		st := pick(r, status)
		ev.pri = 16*8 + 6
		ev.hdr[3], ev.hdr[4], ev.hdr[5] = "WEB-REQ", "HTTP request", "2"
		ev.ext = []kv{{"rt", rt}, {"src", src}, {"spt", spt}, {"dst", dst()}, {"dpt", "443"},
			{"requestMethod", pick(r, methods)},
			{"request", fmt.Sprintf("https://shop.example.com%s?q=%s&page=%d", pick(r, paths), pick(r, []string{"shoes", "a+b", "50%25"}), r.IntN(9))},
			{"requestClientApplication", pick(r, agents)}, {"outcome", strconv.Itoa(st)}, {"suser", user}}
	}
	g.count(&ev)
	return ev
}

// count updates the summary's figures with ev.
func (g *cefGen) count(ev *cefEvent) {
	idx := ev.src
	if g.seen[idx/64]&(1<<(idx%64)) == 0 {
		g.seen[idx/64] |= 1 << (idx % 64)
		g.distinct++
		if _, v6 := g.address(idx); v6 {
			g.v6++
		}
	}
	if !ev.fail {
		return
	}
	g.fails++
	// auth_failure_burst.lua: a source quiet for longer than the window
	// starts afresh; the alert fires once the failures at or after
	// now-window reach the threshold.
	sec, w := ev.t.Unix(), int64(g.cfg.Window/time.Second)
	s := g.state[int32(idx)]
	if s == nil || sec-s.last > w {
		s = &burstState{}
		g.state[int32(idx)] = s
	}
	k := 0
	for k < len(s.times) && s.times[k] < sec-w {
		k++
	}
	s.times = append(s.times[:0], s.times[k:]...)
	s.times = append(s.times, sec)
	s.last = sec
	if !s.alerted && len(s.times) >= g.cfg.Threshold {
		s.alerted = true
		g.alerts++
		g.crossed[int32(idx)] = true
	}
	// Forget sources quiet for a whole window, so the memory this takes
	// follows the window, not the number of sources.
	if sec-g.lastSweep > w {
		for k, s := range g.state {
			if sec-s.last > w {
				delete(g.state, k)
			}
		}
		g.lastSweep = sec
	}
}

func (g *cefGen) summary() *cefSummary {
	c := g.cfg
	s := &cefSummary{Sources: g.distinct, IPv6Sources: g.v6, Fails: g.fails, Dist: c.Dist,
		Attackers: c.Attackers, Burst: c.Burst, Threshold: c.Threshold, WindowS: c.Window.Seconds(),
		Crossing: len(g.crossed), Alerts: g.alerts}
	if c.N > 0 {
		s.FailRatio = float64(g.fails) / float64(c.N)
	}
	return s
}

// appendCEF formats ev as CEF behind a syslog header.
func appendCEF(b []byte, ev cefEvent, header string) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(ev.pri), 10)
	b = append(b, '>')
	if header == "rfc3164" {
		b = ev.t.AppendFormat(b, "Jan _2 15:04:05 ")
		b = append(b, ev.host...)
		b = append(b, ' ')
		b = append(b, ev.app...)
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(ev.pid), 10)
		b = append(b, "]: "...)
	} else {
		b = append(b, "1 "...)
		b = ev.t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00 ")
		b = append(b, ev.host...)
		b = append(b, ' ')
		b = append(b, ev.app...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(ev.pid), 10)
		b = append(b, " - - "...)
	}
	b = append(b, "CEF:0|"...)
	for _, h := range ev.hdr {
		b = appendCEFHeader(b, h)
		b = append(b, '|')
	}
	for k, e := range ev.ext {
		if k > 0 {
			b = append(b, ' ')
		}
		b = append(b, e.k...)
		b = append(b, '=')
		b = appendCEFValue(b, e.v)
	}
	return b
}

// appendCEFHeader escapes a header field: backslash and pipe.
func appendCEFHeader(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '|' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return b
}

// appendCEFValue escapes an extension value: backslash, equals sign and
// line breaks.
func appendCEFValue(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "\\=\n\r") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '=':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
