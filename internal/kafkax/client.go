package kafkax

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

// Client is the keys of the Kafka input and output that say how to reach
// and log in to the brokers. Each plugin's Config embeds it, so its keys sit
// in the plugin's table ([inputs.<name>], [outputs.<name>]).
type Client struct {
	// Brokers are host:port addresses to bootstrap from.
	Brokers []string `toml:"brokers"`
	// ClientID is sent to the brokers.
	ClientID string `toml:"client_id"`
	// Version is the Kafka protocol version the client assumes (the
	// output's sarama client only: idempotent = true).
	Version string `toml:"version"`
	// TLS turns on TLS to the brokers (each verified under its own host
	// name unless server_name is set).
	TLS config.TLS `toml:"tls"`
	// SASL authenticates to the brokers.
	SASL SASL `toml:"sasl"`
}

// DefaultClient returns the defaults: client ID "tern", protocol 2.8.0,
// TLS off.
func DefaultClient() Client {
	return Client{ClientID: "tern", Version: "2.8.0", TLS: config.DefaultTLS()}
}

// Validate returns "key: message" errors.
func (c Client) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: required"))
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("brokers: %q: %v", b, err))
		}
	}
	if _, err := ParseVersion(c.Version); err != nil {
		errs = append(errs, fmt.Errorf("version: %v", err))
	}
	if err := c.TLS.ValidateClient("tls"); err != nil {
		errs = append(errs, err)
	}
	if err := c.SASL.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// TLSConfig is the TLS config for the brokers, nil without TLS. The files
// are read at every call; the clients set each broker's server name.
func (c Client) TLSConfig(set pipeline.Settings) (*tls.Config, error) {
	if !c.TLS.On() {
		return nil, nil
	}
	return c.TLS.ClientConfig(set, "")
}
