package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const minimalInput = "[inputs.a]\ntype = \"stdin\"\ndecoder = \"payload\"\n"

func TestMetricsAuthKeys(t *testing.T) {
	plan, errs := parse(t, `[tern]
metrics_tokens = ["${TOKEN}"]
metrics_token_file = "secrets/metrics-tokens"
[tern.metrics_tls]
cert_file = "tls/server.crt"
key_file = "tls/server.key"
ca_file = "tls/ca.crt"
`+minimalInput, map[string]string{"TOKEN": "s3cret"})
	require.Empty(t, errs)
	g := plan.Global
	assert.Equal(t, []string{"s3cret"}, g.MetricsTokens, "tokens take ${ENV}")
	assert.Equal(t, "secrets/metrics-tokens", g.MetricsTokenFile)
	assert.True(t, g.MetricsTLS.On())
	assert.Equal(t, "tls/ca.crt", g.MetricsTLS.CAFile)
	assert.Equal(t, "1.2", g.MetricsTLS.MinVersion, "TLS defaults apply")
}

func TestMetricsAuthErrors(t *testing.T) {
	_, errs := parse(t, "[tern]\nmetrics_tokens = [\"ok\", \"has space\"]\n"+minimalInput, nil)
	require.Len(t, errs, 1)
	assert.Equal(t, 2, errs[0].Line)
	assert.Equal(t, "tern.metrics_tokens", errs[0].Key)
	assert.Equal(t, "token 2 holds a space or control character", errs[0].Msg)

	_, errs = parse(t, "[tern]\n[tern.metrics_tls]\ncert_file = \"a.crt\"\nserver_name = \"x\"\n"+minimalInput, nil)
	require.Len(t, errs, 3, errs.Error())
	assert.Equal(t, "tern.metrics_tls.cert_file", errs[0].Key)
	assert.Equal(t, 3, errs[0].Line)
	assert.Contains(t, errs[0].Msg, "cert_file and key_file go together")
	assert.Equal(t, "tern.metrics_tls.server_name", errs[2].Key)
	assert.Equal(t, 4, errs[2].Line)
	assert.Equal(t, "only for clients", errs[2].Msg)
}
