package config_test

import (
	"errors"
	"fmt"
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

// One bad value is one error: the other keys of its table are still
// decoded, not reported as unknown, and nothing else follows from it.
func TestOneBadValueNoCascade(t *testing.T) {
	const head = "[inputs.a]\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\ndecoder = \"payload\"\n"
	cases := []struct {
		name, src string
		want      []string // "line key: message substring"
	}{
		{"engine key", head + `[outputs.o]
type = "file"
message_matcher = "TRUE"
flush_interval = "10 seconds"
path = "out.log"
batch_max_count = 10
encoder = "payload"
`, []string{`8 outputs.o.flush_interval: not a duration`}},
		{"plugin keys", `[inputs.a]
type = "tcp"
max_frame_bytes = "lots"
address = "127.0.0.1:1"
idle_timeout = "soon"
decoder = "payload"
batch_max_count = 5
`, []string{`3 inputs.a.max_frame_bytes: not a size`, `5 inputs.a.idle_timeout: not a duration`}},
		{"sub-table", head + `[outputs.o]
type = "file"
message_matcher = "TRUE"
path = "out.log"
[outputs.o.retries]
delay = "x"
max_delay = "1s"
`, []string{`10 outputs.o.retries.delay: not a duration`}},
		{"type", head + `[outputs.o]
type = 5
message_matcher = "TRUE"
path = "out.log"
`, []string{`6 outputs.o.type: `}},
		{"matcher and encoder of the wrong type", head + `[outputs.o]
type = "file"
message_matcher = 1
encoder = 2
path = "out.log"
`, []string{`7 outputs.o.message_matcher: `, `8 outputs.o.encoder: `}},
		{"tern", "[tern]\nshutdown_timeout = 30\nlog_level = \"debug\"\n" + head, []string{`2 tern.shutdown_timeout: not a duration`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errs := parse(t, c.src, nil)
			var got []string
			for _, e := range errs {
				got = append(got, fmt.Sprintf("%d %s: %s", e.Line, e.Key, e.Msg))
			}
			require.Len(t, got, len(c.want), "%q", got)
			for i, w := range c.want {
				assert.True(t, strings.HasPrefix(got[i], w), "%q, want %q", got[i], w)
			}
		})
	}
}

// Unknown keys within edit distance 2 of a key the table knows (the
// plugin's own or the engine's) get a suggestion.
func TestDidYouMean(t *testing.T) {
	const head = "[inputs.a]\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\ndecoder = \"payload\"\n"
	cases := []struct{ name, src, key, msg string }{
		{"plugin key", "[inputs.a]\ntype = \"tcp\"\nadress = \"127.0.0.1:1\"\ndecoder = \"payload\"\n", "inputs.a.adress", "unknown key (did you mean `address`?)"},
		{"transposed", head + "max_connetcions = 3\n", "inputs.a.max_connetcions", "unknown key (did you mean `max_connections`?)"},
		{"engine key", head + "[outputs.o]\ntype = \"file\"\nmessage_matcher = \"TRUE\"\npath = \"x\"\nflush_intervall = \"1s\"\n", "outputs.o.flush_intervall", "unknown key (did you mean `flush_interval`?)"},
		{"engine key, plugin table", head + "decodr = \"payload\"\n", "inputs.a.decodr", "unknown key (did you mean `decoder`?)"},
		{"sub-table", head + "[outputs.o]\ntype = \"file\"\nmessage_matcher = \"TRUE\"\npath = \"x\"\n[outputs.o.retries]\ndealy = \"1s\"\n", "outputs.o.retries.dealy", "unknown key (did you mean `delay`?)"},
		{"tern", "[tern]\nlog_levle = \"debug\"\n" + head, "tern.log_levle", "unknown key (did you mean `log_level`?)"},
		{"top level", "[inptus.b]\ntype = \"stdin\"\n" + head, "inptus.b.type", "unknown key (did you mean `inputs`?)"},
		{"too far", head + "bind_to = \"x\"\n", "inputs.a.bind_to", "unknown key"},
		{"type", head + "[outputs.o]\ntype = \"flie\"\nmessage_matcher = \"TRUE\"\n", "outputs.o.type", `unknown output type "flie": did you mean ` + "`file`? (known: file)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errs := parse(t, c.src, nil)
			require.Len(t, errs, 1, errs.Error())
			assert.Equal(t, c.key, errs[0].Key)
			assert.Equal(t, c.msg, errs[0].Msg)
		})
	}
}

// Values that ${NAME} put into a config never show in its errors: the
// reference does.
func TestErrorsRedactExpandedValues(t *testing.T) {
	env := map[string]string{"SECRET": `hunter2-"very"-secret`, "HOST": "db.internal.example", "SHORT": "ab"}
	_, errs := parse(t, `[inputs.a]
type = "tcp"
address = "${SECRET}"
framing = "${HOST}:${SHORT}"
decoder = "${SECRET}"
`, env)
	require.Len(t, errs, 3, errs.Error())
	for _, e := range errs {
		assert.NotContains(t, e.Error(), "hunter2", e.Error())
		assert.NotContains(t, e.Error(), "db.internal", e.Error())
	}
	assert.Contains(t, errs[0].Msg, "${SECRET}")
	assert.Contains(t, errs[1].Msg, "${HOST}:")
	assert.Contains(t, errs[2].Msg, "${SECRET}")
}

// TestSectionErrorsAtKeyLine: what a plugin reports after the config is
// read (Check, construction) is placed on the line of the key it names, and
// a joined error becomes one entry per leaf.
func TestSectionErrorsAtKeyLine(t *testing.T) {
	src := `[inputs.in]
type = "stdin"
decoder = "payload"

[outputs.o]
type = "file"
message_matcher = "TRUE"

path = "out.txt"
`
	plan, errs := parse(t, src, nil)
	require.Empty(t, errs)
	sec := &plan.Outputs[0].Section
	got := sec.Errors(errors.Join(errors.New("path: cannot create"), errors.New("disk on fire"), errors.New("nokey: x")))
	require.Len(t, got, 3)
	assert.Equal(t, "test.toml:9: outputs.o.path: cannot create", got[0].Error())
	assert.Equal(t, "test.toml:5: outputs.o: disk on fire", got[1].Error())
	assert.Equal(t, "test.toml:5: outputs.o: nokey: x", got[2].Error())
	assert.Empty(t, sec.Errors(nil))
}

func TestEngineKey(t *testing.T) {
	assert.True(t, config.EngineKey("outputs", "use_buffering"))
	assert.True(t, config.EngineKey("inputs", "decoder"))
	assert.False(t, config.EngineKey("inputs", "use_buffering"))
	assert.False(t, config.EngineKey("filters", "path"))
	assert.False(t, config.EngineKey("nope", "type"))
}
