package main

import (
	"bytes"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline"
)

func cefConfig(n, sources int, dist string) genConfig {
	return genConfig{Mode: "cef", N: n, Sources: sources, FailRatio: 0.3, Dist: dist, Attackers: 10,
		Threshold: 20, Window: 30 * time.Second, Header: "rfc5424", Seed: 1, Rate: 10_000}
}

// TestGenCEFDecodes: tern's syslog and CEF decoders, chained as in
// bench/lua.toml, give back every header field and extension value the
// generator meant, escapes undone, behind either syslog header.
func TestGenCEFDecodes(t *testing.T) {
	for _, header := range []string{"rfc5424", "rfc3164"} {
		t.Run(header, func(t *testing.T) {
			c := cefConfig(3000, 800, "uniform")
			c.Header, c.IPv6, c.Attackers = header, 0.25, 3
			path, _ := genFile(t, t.TempDir(), c)
			g, err := newGenerator(c) // draws the same events again
			require.NoError(t, err)
			syslog, cef := newDecoder(t, "syslog"), newDecoder(t, "cef").(pipeline.Transformer)
			seen := map[string]int{}
			for i, l := range lines(t, path) {
				ev := g.cef.event(i)
				b := pipeline.NewBatch()
				require.NoError(t, syslog.Decode(pipeline.Record{Data: l}, b), "line %d: %s", i+1, l)
				m := b.Msgs[0]
				keep, err := cef.Transform(m, b)
				require.NoError(t, err, "line %d: %s", i+1, l)
				require.True(t, keep)

				assert.Equal(t, ev.host, m.Hostname)
				got := time.Unix(0, m.Timestamp).UTC()
				if header == "rfc5424" {
					assert.Equal(t, ev.t, got, "line %d", i+1)
				} else { // no year, no fraction
					assert.Equal(t, ev.t.Format(time.Stamp), got.Format(time.Stamp), "line %d", i+1)
				}
				for k, name := range []string{"deviceVendor", "deviceProduct", "deviceVersion", "deviceEventClassId", "name", "severity"} {
					v, _ := m.FieldString(name)
					require.Equal(t, ev.hdr[k], v, "line %d: %s", i+1, name)
				}
				for _, e := range ev.ext {
					v, ok := m.FieldString(e.k)
					require.True(t, ok, "line %d: no %s", i+1, e.k)
					require.Equal(t, e.v, v, "line %d: %s", i+1, e.k)
				}
				src, _ := m.FieldString("src")
				a, err := netip.ParseAddr(src)
				require.NoError(t, err)
				seen[map[bool]string{true: "ipv6", false: "ipv4"}[a.Is6()]]++
				for _, esc := range []string{`\|`, `\\`, `\=`, `\n`} {
					if bytes.Contains(l, []byte(esc)) {
						seen[esc]++
					}
				}
			}
			for _, k := range []string{"ipv4", "ipv6", `\|`, `\\`, `\=`, `\n`} {
				assert.Positive(t, seen[k], "no line with %s", k)
			}
		})
	}
}

var (
	srcRE = regexp.MustCompile(` src=([^ ]+) `)
	rtRE  = regexp.MustCompile(`\|rt=([0-9]+) `)
)

// scanCEF counts what a file holds, independently of the generator's
// summary: distinct sources, failures, and the sources with threshold
// failures within window seconds (inclusive, as auth_failure_burst.lua
// counts), plus the events per source.
func scanCEF(t *testing.T, path string, threshold int, window int64) (sources map[string]int, fails, crossing int) {
	sources = map[string]int{}
	times := map[string][]int64{}
	readLines(t, path, func(l []byte) {
		src := string(srcRE.FindSubmatch(l)[1])
		sources[src]++
		if bytes.Contains(l, []byte("|AuthFail|")) {
			fails++
			ms, err := strconv.ParseInt(string(rtRE.FindSubmatch(l)[1]), 10, 64)
			require.NoError(t, err)
			times[src] = append(times[src], ms/1000)
		}
	})
	for _, ts := range times {
		slices.Sort(ts)
		for k := 0; k+threshold-1 < len(ts); k++ {
			if ts[k+threshold-1]-ts[k] <= window {
				crossing++
				break
			}
		}
	}
	return sources, fails, crossing
}

// TestGenCEFSources: the distinct sources, the share of failures and the
// sources crossing the burst threshold are as asked and as summarised.
func TestGenCEFSources(t *testing.T) {
	t.Run("spray", func(t *testing.T) {
		c := cefConfig(10_000, 2500, "spray")
		c.IPv6 = 0.25
		path, sum := genFile(t, t.TempDir(), c)
		sources, fails, crossing := scanCEF(t, path, 20, 30)
		assert.Len(t, sources, 2500, "every source appears")
		assert.Equal(t, 2500, sum.Sources)
		assert.Equal(t, fails, sum.Fails)
		assert.InDelta(t, 0.3, float64(fails)/10_000, 0.015)
		assert.Equal(t, 10, crossing, "only the attackers cross")
		assert.Equal(t, 10, sum.Crossing)
		assert.Equal(t, 10, sum.Alerts)
		assert.InDelta(t, 0.25, float64(sum.IPv6Sources)/2500, 0.03)
		// spray: nobody but the attackers appears more than its share
		for src, n := range sources {
			if n > 5 {
				assert.GreaterOrEqual(t, n, 30, "%s appears %d times", src, n)
			}
		}
	})
	t.Run("uniform", func(t *testing.T) {
		c := cefConfig(10_000, 5000, "uniform")
		c.FailRatio = 0.5
		path, sum := genFile(t, t.TempDir(), c)
		sources, fails, crossing := scanCEF(t, path, 20, 30)
		want := 5000 * (1 - math.Exp(-2)) // expected distinct of 10,000 draws
		assert.InEpsilon(t, want, float64(len(sources)), 0.03)
		assert.Equal(t, len(sources), sum.Sources)
		assert.InDelta(t, 0.5, float64(fails)/10_000, 0.015)
		assert.Equal(t, 10, crossing)
		assert.Equal(t, crossing, sum.Crossing)
	})
	t.Run("zipf", func(t *testing.T) {
		c := cefConfig(10_000, 5000, "zipf")
		path, sum := genFile(t, t.TempDir(), c)
		sources, _, crossing := scanCEF(t, path, 20, 30)
		top := 0
		for _, n := range sources {
			top = max(top, n)
		}
		assert.Greater(t, top, 10_000/20, "a heavy hitter")
		assert.Greater(t, crossing, 10, "heavy hitters cross too")
		assert.Equal(t, crossing, sum.Crossing)
		assert.Equal(t, len(sources), sum.Sources)
	})
	t.Run("no attackers", func(t *testing.T) {
		c := cefConfig(10_000, 2500, "spray")
		c.Attackers = 0
		_, sum := genFile(t, t.TempDir(), c)
		assert.Zero(t, sum.Crossing)
	})
}

func TestGenCEFRefusesTooFewEvents(t *testing.T) {
	_, err := newGenerator(cefConfig(500, 100, "spray")) // 10 x 30 attack failures > 30% of 500
	assert.ErrorContains(t, err, "too small")
	c := cefConfig(500, 100, "spray")
	c.Attackers = 0
	_, err = newGenerator(c)
	assert.NoError(t, err)
}

// TestAddressesDistinct: sources map to distinct addresses, IPv4 and IPv6.
func TestAddressesDistinct(t *testing.T) {
	g, err := newCEFGen(genConfig{Sources: 1 << 16, IPv6: 0.5, Dist: "spray", Threshold: 1, Window: time.Second, Header: "rfc5424", Rate: 1}, nil)
	require.NoError(t, err)
	seen := map[string]bool{}
	for idx := range 1 << 16 {
		a, _ := g.address(idx)
		require.False(t, seen[a], "%s twice", a)
		seen[a] = true
	}
}
