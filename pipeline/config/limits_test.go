package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline/config"
)

const hostileHead = "[inputs.a]\ntype = \"stdin\"\ndecoder = \"payload\"\n"

// Hostile configs: deep nesting costs the TOML decoder time and memory
// quadratic in the depth (5,000 inline tables, 25 KB, took 1.5 GB and more
// than a minute; a SIGHUP reload would do that inside the router).
var hostileConfigs = []struct {
	name, src string
	line      int
}{
	{"inline tables", hostileHead + "x = " + strings.Repeat("{a = ", 5000) + "1" + strings.Repeat("}", 5000) + "\n", 4},
	{"arrays", hostileHead + "x = " + strings.Repeat("[", 5000) + "1" + strings.Repeat("]", 5000) + "\n", 4},
	{"arrays of inline tables", hostileHead + "x = " + strings.Repeat("[{a = ", 2500) + "1" + strings.Repeat("}]", 2500) + "\n", 4},
	{"dotted key", hostileHead + strings.Repeat("a.", 5000) + "a = 1\n", 4},
	{"dotted keys in inline tables", hostileHead + "x = " + strings.Repeat("{a.b.c.d = ", 1000) + "1" + strings.Repeat("}", 1000) + "\n", 4},
	{"table header", strings.Repeat("[", 1) + strings.Repeat("a.", 5000) + "a]\nx = 1\n" + hostileHead, 1},
	{"array of tables header", hostileHead + "[[" + strings.Repeat("a.", 5000) + "a]]\n", 4},
	{"multi-line arrays", hostileHead + "x = [\n" + strings.Repeat("[\n", 5000) + "1" + strings.Repeat("]\n", 5001), 33},
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	f()
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc - before
}

func TestDeepNestingRefusedBeforeDecoding(t *testing.T) {
	for _, c := range hostileConfigs {
		t.Run(c.name, func(t *testing.T) {
			var errs config.Errors
			n := allocated(func() { _, errs = parse(t, c.src, nil) })
			require.Len(t, errs, 1, errs.Error())
			assert.Equal(t, c.line, errs[0].Line)
			assert.Contains(t, errs[0].Msg, "nested deeper than 32 levels")
			assert.Less(t, n, uint64(256<<10), "bytes allocated to refuse %d bytes", len(c.src))
		})
	}
}

// What does not nest does not count: brackets and dots inside strings and
// comments, and nesting up to the limit.
func TestNestingWithinTheLimit(t *testing.T) {
	for name, src := range map[string]string{
		"strings":            "x = \"" + strings.Repeat("[{a.", 5000) + "\"\ny = '" + strings.Repeat("[{.", 5000) + "'\n",
		"multi-line strings": "x = \"\"\"\n" + strings.Repeat("[{a.\"\n", 1000) + "\"\"\"\ny = '''\n" + strings.Repeat("[{'\n", 1000) + "'''\n",
		"comments":           "# " + strings.Repeat("[{a.", 5000) + "\nx = [ # " + strings.Repeat("[", 100) + "\n1]\n",
		"escaped quotes":     "x = \"\\\"" + strings.Repeat("[", 100) + "\"\n",
		"quoted key":         "\"" + strings.Repeat("a.", 100) + "\" = 1\n",
		"floats and dates":   "x = [" + strings.Repeat("1.5, 1979-05-27T07:32:00.999Z, ", 1000) + "2.5]\n",
		"32 levels":          "[a.b]\nc.d = " + strings.Repeat("[", 14) + strings.Repeat("{e.f = ", 7) + "1" + strings.Repeat("}", 7) + strings.Repeat("]", 14) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, errs := parse(t, hostileHead+"[inputs.a.x]\n"+src, nil)
			for _, e := range errs {
				assert.NotContains(t, e.Msg, "nested deeper", e.Error())
			}
			assert.NotEmpty(t, errs, "the keys are unknown to stdin")
		})
	}
	_, errs := parse(t, hostileHead+"[a.b]\nc.d = "+strings.Repeat("[", 15)+strings.Repeat("{e.f = ", 7)+"1"+strings.Repeat("}", 7)+strings.Repeat("]", 15)+"\n", nil)
	require.Len(t, errs, 1, errs.Error())
	assert.Contains(t, errs[0].Msg, "nested deeper than 32 levels")
	assert.Equal(t, 5, errs[0].Line)
}

func TestConfigSizeLimit(t *testing.T) {
	big := hostileHead + "# " + strings.Repeat("x", config.MaxConfigBytes) + "\n"
	var errs config.Errors
	n := allocated(func() { _, errs = parse(t, big, nil) })
	require.Len(t, errs, 1, errs.Error())
	assert.Equal(t, "test.toml: larger than 1MiB, the limit of a config file", errs[0].Error())
	assert.Less(t, n, uint64(64<<10))

	// Load does not read past the limit.
	path := filepath.Join(t.TempDir(), "big.toml")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(1<<30)) // sparse
	require.NoError(t, f.Close())
	n = allocated(func() { _, err = config.Load(path, testRegistry(), config.Options{}) })
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+": larger than 1MiB")
	assert.Less(t, n, uint64(64<<10))

	// Nor past the limit of a stream.
	r, w, err := os.Pipe()
	require.NoError(t, err)
	go func() {
		for {
			if _, err := w.Write(make([]byte, 64<<10)); err != nil {
				return
			}
		}
	}()
	defer r.Close()
	defer w.Close()
	_, err = config.Load(fmt.Sprintf("/dev/fd/%d", r.Fd()), testRegistry(), config.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than 1MiB")
}

// Many keys cost the loader time and memory in proportion: one unknown
// empty table per line used to make it compare every key with every other.
func TestManyUnknownTablesCostLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString(hostileHead)
	const n = 20000
	for i := range n {
		fmt.Fprintf(&b, "k%d = {}\n", i)
	}
	src := b.String()
	var errs config.Errors
	got := allocated(func() { _, errs = parse(t, src, nil) })
	assert.NotEmpty(t, errs)
	assert.Less(t, got, uint64(400*len(src)), "bytes allocated for %d bytes of config", len(src))
}
