package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	luadec "github.com/ternlog/tern/decoders/lua"
	luafilter "github.com/ternlog/tern/filters/lua"
	"github.com/ternlog/tern/inputs/stdin"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

// The Lua plugins' configs embed sandbox.Limits: its keys sit in the
// plugin's table, decode there, and every key they do not know is still
// reported, on its line.
func TestEmbeddedConfigKeys(t *testing.T) {
	reg := &pipeline.Registry{
		Inputs:   []pipeline.Factory[pipeline.Input]{stdin.Factory()},
		Decoders: []pipeline.Factory[pipeline.Decoder]{luadec.Factory()},
		Filters:  []pipeline.Factory[pipeline.Filter]{luafilter.Factory()},
	}
	parse := func(src string, env map[string]string) (*config.Plan, config.Errors) {
		t.Helper()
		plan, err := config.Parse("test.toml", []byte(src), reg, config.Options{
			Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		})
		if err == nil {
			return plan, nil
		}
		errs, ok := err.(config.Errors)
		require.True(t, ok, "%T: %v", err, err)
		return plan, errs
	}
	const head = `[inputs.in]
type = "stdin"
decoder = "dec"

[decoders.dec]
type = "lua"
filename = "d.lua"
`
	const good = head + `module_directory = "${MODS}"
instruction_limit = 5000
deadline = "2s"
string_limit = "4KiB"
memory_limit = "8MiB"
max_inject = 7
failure_policy = "pass"
max_failures = 3

[filters.f]
type = "lua"
message_matcher = "TRUE"
filename = "f.lua"
deadline = "3s"
output_limit = "2KiB"
failure_policy = "${POLICY:-deadletter}"
`
	plan, errs := parse(good, map[string]string{"MODS": "mods"})
	require.Empty(t, errs)
	dec := plan.Decoders["dec"].Config.(*luadec.Config)
	assert.Equal(t, "d.lua", dec.Filename)
	assert.Equal(t, "mods", dec.ModuleDirectory, "${…} expands inside the embedded struct")
	assert.Equal(t, 5000, dec.InstructionLimit)
	assert.Equal(t, 2*time.Second, dec.Deadline.D())
	assert.Equal(t, 4<<10, dec.StringLimit.N())
	assert.Equal(t, 8<<20, dec.MemoryLimit.N())
	assert.Equal(t, 7, dec.MaxInject)
	assert.Equal(t, "pass", dec.FailurePolicy)
	assert.Equal(t, 3, dec.MaxFailures)
	require.Len(t, plan.Filters, 1)
	f := plan.Filters[0].Config.(*luafilter.Config)
	assert.Equal(t, 3*time.Second, f.Deadline.D())
	assert.Equal(t, 2<<10, f.OutputLimit.N())
	assert.Equal(t, "deadletter", f.FailurePolicy)
	assert.Equal(t, 100, f.MaxInject, "defaults of the embedded struct stay")

	t.Run("unknown key", func(t *testing.T) {
		_, errs := parse(head+"max_injects = 2\noutput_limit = \"2KiB\"\n", nil)
		require.Len(t, errs, 2, errs.Error())
		assert.Equal(t, "decoders.dec.max_injects", errs[0].Key)
		assert.Equal(t, 8, errs[0].Line)
		assert.Contains(t, errs[0].Msg, "unknown key")
		assert.Equal(t, "decoders.dec.output_limit", errs[1].Key, "a filter's key is not a decoder's")
	})
	t.Run("validate", func(t *testing.T) {
		_, errs := parse(head+"max_inject = 0\nfailure_policy = \"drop\"\n", nil)
		require.Len(t, errs, 2, errs.Error())
		assert.Equal(t, "decoders.dec.max_inject", errs[0].Key)
		assert.Equal(t, 8, errs[0].Line)
		assert.Equal(t, "decoders.dec.failure_policy", errs[1].Key)
		assert.Equal(t, "must be deadletter, pass or count", errs[1].Msg)
	})
	t.Run("env error names the key", func(t *testing.T) {
		_, errs := parse(head+"failure_policy = \"${NOPE}\"\n", nil)
		require.NotEmpty(t, errs)
		assert.Equal(t, "decoders.dec.failure_policy", errs[0].Key, errs.Error())
		assert.Equal(t, 8, errs[0].Line)
		assert.Contains(t, errs[0].Msg, "NOPE is not set")
	})
	t.Run("bad value in the embedded struct", func(t *testing.T) {
		// Decoding stops at the bad value; the keys after it are known,
		// not unknown.
		_, errs := parse(head+"deadline = 5\nmax_failures = 2\nmax_inject = 3\nmax_injects = 3\n", nil)
		var keys []string
		for _, e := range errs {
			if strings.HasPrefix(e.Key, "decoders.") {
				keys = append(keys, e.Key)
			}
		}
		assert.Equal(t, []string{"decoders.dec.deadline", "decoders.dec.max_injects"}, keys, errs.Error())
	})
}

func TestDecodeOptionsEmbedded(t *testing.T) {
	cfg := luadec.DefaultConfig()
	require.NoError(t, config.DecodeOptions(&cfg, []string{"filename=x.lua", "max_inject=3", "deadline=1s"}))
	assert.Equal(t, 3, cfg.MaxInject)
	assert.Equal(t, time.Second, cfg.Deadline.D())
	assert.ErrorContains(t, config.DecodeOptions(&cfg, []string{"output_limit=2KiB"}), "unknown option(s): output_limit")
}
