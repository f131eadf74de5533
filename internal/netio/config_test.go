package netio

import (
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckAddress(t *testing.T) {
	assert.NoError(t, CheckAddress("address", "127.0.0.1:514"))
	assert.NoError(t, CheckAddress("address", ":514"))
	assert.EqualError(t, CheckAddress("address", ""), "address: required")
	assert.EqualError(t, CheckAddress("tcp_address", "host"), "tcp_address: address host: missing port in address")
}

// The inputs embed the limits: their keys decode as the input's own.
func TestLimitsEmbedded(t *testing.T) {
	var cfg struct {
		Address string `toml:"address"`
		StreamLimits
		DatagramLimits
	}
	cfg.StreamLimits, cfg.DatagramLimits = DefaultStreamLimits(), DefaultDatagramLimits()
	require.NoError(t, cfg.StreamLimits.Validate())
	require.NoError(t, cfg.DatagramLimits.Validate())
	md, err := toml.Decode(`address = ":1"
max_frame_bytes = "4KiB"
max_connections = 3
idle_timeout = "1s"
max_datagram_bytes = "1KiB"
receive_buffer_bytes = "1MiB"
`, &cfg)
	require.NoError(t, err)
	assert.Empty(t, md.Undecoded())
	assert.Equal(t, 4<<10, cfg.MaxFrameBytes.N())
	assert.Equal(t, 3, cfg.MaxConnections)
	assert.Equal(t, "1s", cfg.IdleTimeout.String())
	assert.Equal(t, 1<<10, cfg.MaxDatagramBytes.N())
	assert.Equal(t, 1<<20, cfg.ReceiveBufferBytes.N())

	assert.EqualError(t, StreamLimits{MaxFrameBytes: 2 << 30}.Validate(),
		"max_frame_bytes: must be between 1 and 1GiB\nmax_connections: must be positive")
	assert.EqualError(t, DatagramLimits{MaxDatagramBytes: 65 << 10, ReceiveBufferBytes: -1}.Validate(),
		"max_datagram_bytes: must be between 1 and 64KiB\nreceive_buffer_bytes: must be between 0 and 1GiB")
}
