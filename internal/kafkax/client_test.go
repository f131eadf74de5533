package kafkax

import (
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline"
)

// A plugin's Config embeds Client: its keys, the tls and sasl tables
// included, decode as the plugin's own.
func TestClientEmbedded(t *testing.T) {
	var cfg struct {
		Client
		Topic string `toml:"topic"`
	}
	cfg.Client = DefaultClient()
	md, err := toml.Decode(`
brokers = ["k1:9092", "k2:9092"]
topic = "logs"
client_id = "edge"
[tls]
ca_file = "ca.pem"
[sasl]
mechanism = "PLAIN"
username = "u"
`, &cfg)
	require.NoError(t, err)
	assert.Empty(t, md.Undecoded())
	assert.Equal(t, []string{"k1:9092", "k2:9092"}, cfg.Brokers)
	assert.Equal(t, "edge", cfg.ClientID)
	assert.Equal(t, "2.8.0", cfg.Version)
	assert.Equal(t, "ca.pem", cfg.TLS.CAFile)
	assert.Equal(t, "1.2", cfg.TLS.MinVersion, "TLS defaults stay")
	assert.Equal(t, MechPlain, cfg.SASL.Mechanism)
	assert.NoError(t, cfg.Validate())
}

func TestClientValidate(t *testing.T) {
	c := DefaultClient()
	assert.EqualError(t, c.Validate(), "brokers: required")
	c.Brokers = []string{"k1"}
	c.Version = "0.10.2.0"
	c.SASL.Username = "u"
	assert.EqualError(t, c.Validate(), `brokers: "k1": address k1: missing port in address
version: "0.10.2.0" is older than 0.11.0, which record headers need
sasl.mechanism: required with a username or password (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`)

	c = DefaultClient()
	tc, err := c.TLSConfig(pipeline.Settings{})
	assert.NoError(t, err)
	assert.Nil(t, tc, "no TLS without tls keys")
	c.TLS.CAFile = "/nonexistent/ca.pem"
	_, err = c.TLSConfig(pipeline.Settings{})
	assert.Error(t, err)
}
