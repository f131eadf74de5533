package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/decoders/payload"
	encpayload "github.com/ternlog/tern/encoders/payload"
	"github.com/ternlog/tern/inputs/stdin"
	"github.com/ternlog/tern/inputs/tcp"
	"github.com/ternlog/tern/outputs/file"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

func testRegistry() *pipeline.Registry {
	return &pipeline.Registry{
		Inputs:   []pipeline.Factory[pipeline.Input]{stdin.Factory(), tcp.Factory()},
		Decoders: []pipeline.Factory[pipeline.Decoder]{payload.Factory()},
		Encoders: []pipeline.Factory[pipeline.Encoder]{encpayload.Factory()},
		Outputs:  []pipeline.Factory[pipeline.Output]{file.Factory().WithDefaultEncoder("payload")},
	}
}

func parse(t *testing.T, src string, env map[string]string) (*config.Plan, config.Errors) {
	t.Helper()
	plan, err := config.Parse("test.toml", []byte(src), testRegistry(), config.Options{
		Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err == nil {
		return plan, nil
	}
	var errs config.Errors
	require.True(t, errors.As(err, &errs), "unexpected error type %T: %v", err, err)
	return plan, errs
}

const good = `
[tern]
data_dir = "state"
shutdown_timeout = "5s"

[inputs.lines]
type = "tcp"
address = "127.0.0.1:${PORT}"
decoder = "raw"

[decoders.raw]
type = "payload"
message_type = "line"

[outputs.out]
type = "file"
message_matcher = "Type == 'line'"
path = "${OUT:-out/lines.log}"
`

func TestLoadGood(t *testing.T) {
	plan, errs := parse(t, good, map[string]string{"PORT": "5141"})
	require.Empty(t, errs)
	require.Len(t, plan.Inputs, 1)
	in := plan.Inputs[0]
	assert.Equal(t, "inputs.lines", in.ID())
	assert.Equal(t, []string{"raw"}, in.Decoders)
	assert.Equal(t, "127.0.0.1:5141", in.Config.(*tcp.Config).Address)
	assert.Equal(t, "line", plan.Decoders["raw"].Config.(*payload.Config).MessageType)
	require.Len(t, plan.Outputs, 1)
	o := plan.Outputs[0]
	assert.Equal(t, "out/lines.log", o.Config.(*file.Config).Path, "default from ${OUT:-…}")
	assert.Equal(t, "payload", o.Encoder, "the output's default encoder")
	assert.Equal(t, "state", plan.Global.DataDir)
	assert.Equal(t, "5s", plan.Global.ShutdownTimeout.String())
	m := pipeline.NewMessage()
	m.Type = "line"
	assert.True(t, o.Matcher.Match(m))
}

// Three mistakes give three placed errors, all at once.
func TestLoadThreeMistakes(t *testing.T) {
	src := `[inputs.lines]
type = "tcp"
address = "127.0.0.1:5141"
decoder = "payload"
adress = "typo"

[outputs.out]
type = "file"
message_matcher = "Type == 'line' &&"
path = 42
`
	_, errs := parse(t, src, nil)
	require.Len(t, errs, 3, errs.Error())
	assert.Equal(t, 5, errs[0].Line)
	assert.Equal(t, "inputs.lines.adress", errs[0].Key)
	assert.Contains(t, errs[0].Msg, "unknown key")
	assert.Equal(t, 9, errs[1].Line)
	assert.Equal(t, "outputs.out.message_matcher", errs[1].Key)
	assert.Equal(t, 10, errs[2].Line)
	assert.Contains(t, errs[2].Key, "outputs.out.path")
	for _, e := range errs {
		assert.True(t, strings.HasPrefix(e.Error(), "test.toml:"), e.Error())
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, src string
		line      int
		key, msg  string
	}{
		{"missing type", "[inputs.a]\ndecoder = \"payload\"\n", 1, "inputs.a.type", "required"},
		{"unknown type", "[inputs.a]\ntype = \"carrier-pigeon\"\ndecoder = \"payload\"\n", 2, "inputs.a.type", "unknown input type"},
		{"unknown decoder", "[inputs.a]\ntype = \"stdin\"\ndecoder = \"nope\"\n", 3, "inputs.a.decoder", "no [decoders.nope] section"},
		{"missing matcher", "[inputs.a]\ntype = \"stdin\"\ndecoder = \"payload\"\n[outputs.o]\ntype = \"file\"\npath = \"x\"\n", 4, "outputs.o.message_matcher", "required"},
		{"unknown encoder", "[inputs.a]\ntype = \"stdin\"\ndecoder = \"payload\"\n[outputs.o]\ntype = \"file\"\npath = \"x\"\nmessage_matcher = \"TRUE\"\nencoder = \"cef9\"\n", 8, "outputs.o.encoder", "no [encoders.cef9]"},
		{"validate", "[inputs.a]\ntype = \"tcp\"\ndecoder = \"payload\"\n", 1, "inputs.a.address", "required"},
		{"bad size", "[inputs.a]\ntype = \"tcp\"\naddress = \":1\"\ndecoder = \"payload\"\nmax_frame_bytes = \"lots\"\n", 5, "inputs.a.max_frame_bytes", "not a size"},
		{"bad duration", "[tern]\nshutdown_timeout = 30\n[inputs.a]\ntype = \"stdin\"\ndecoder = \"payload\"\n", 2, "tern.shutdown_timeout", "not a duration"},
		{"unset env", "[inputs.a]\ntype = \"tcp\"\naddress = \"${NOPE}\"\ndecoder = \"payload\"\n", 3, "inputs.a.address", "NOPE is not set"},
		{"misplaced key", "[inputs.a]\ntype = \"stdin\"\ndecoder = \"payload\"\nmessage_matcher = \"TRUE\"\n", 4, "inputs.a.message_matcher", "[filters.*] and [outputs.*] sections"},
		{"unknown top", "[inptus.a]\ntype = \"stdin\"\n", 2, "inptus.a.type", "unknown key"},
		{"syntax", "[inputs.a]\ntype = \"stdin\ndecoder = 1\n", 2, "", ""},
		{"no inputs", "[tern]\n", 0, "", "no [inputs.*] section"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errs := parse(t, c.src, nil)
			require.NotEmpty(t, errs)
			e := errs[0]
			assert.Equal(t, c.line, e.Line, errs.Error())
			if c.key != "" {
				assert.Equal(t, c.key, e.Key, errs.Error())
			}
			assert.Contains(t, e.Msg, c.msg, errs.Error())
		})
	}
}

func TestEnvRejectsControlCharacters(t *testing.T) {
	_, errs := parse(t, good, map[string]string{"PORT": "5141\n[outputs.evil]"})
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Msg, "control character")
}

func TestDecodeOptions(t *testing.T) {
	cfg := tcp.DefaultConfig()
	require.NoError(t, config.DecodeOptions(&cfg, []string{"address=127.0.0.1:9", "max_connections=3", "idle_timeout=1s"}))
	assert.Equal(t, "127.0.0.1:9", cfg.Address)
	assert.Equal(t, 3, cfg.MaxConnections)
	assert.Error(t, config.DecodeOptions(&cfg, []string{"nope=1"}))
	assert.Error(t, config.DecodeOptions(&cfg, []string{"max_connections"}))
}

func TestSize(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "64KiB": 64 << 10, "1MiB": 1 << 20, "2 GiB": 2 << 30, "8KB": 8 << 10} {
		got, err := config.ParseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, int64(got), in)
	}
	for _, bad := range []string{"", "-1", "1XB", "lots", "99999999999999TiB"} {
		_, err := config.ParseSize(bad)
		assert.Error(t, err, bad)
	}
}
