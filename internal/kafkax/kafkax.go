// Package kafkax holds what the Kafka input and output share: the keys
// that reach the brokers (Client, with its SASL table), client settings for
// sarama and kafka-go built from them, and the classification of Kafka
// errors into permanent and retriable ones.
package kafkax

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	xscram "github.com/xdg-go/scram"
)

// SASL mechanisms, as Kafka names them.
const (
	MechPlain  = "PLAIN"
	MechSHA256 = "SCRAM-SHA-256"
	MechSHA512 = "SCRAM-SHA-512"
)

// SASL is the [<kind>.<name>.sasl] table.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty turns SASL
	// off. PLAIN sends the password as it is: use it only with TLS.
	Mechanism string `toml:"mechanism"`
	// Username and Password are the credentials; write the password as
	// "${KAFKA_PASSWORD}" to keep it out of the file.
	Username string `toml:"username"`
	Password string `toml:"password"`
}

// On reports whether SASL is configured.
func (s SASL) On() bool { return s.Mechanism != "" }

// Validate returns "sasl.key: message" errors.
func (s SASL) Validate() error {
	if !s.On() {
		if s.Username != "" || s.Password != "" {
			return errors.New("sasl.mechanism: required with a username or password (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return nil
	}
	var errs []error
	switch s.Mechanism {
	case MechPlain, MechSHA256, MechSHA512:
	default:
		errs = append(errs, fmt.Errorf("sasl.mechanism: must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not %q", s.Mechanism))
	}
	if s.Username == "" {
		errs = append(errs, errors.New("sasl.username: required"))
	}
	return errors.Join(errs...)
}

// Sarama sets the SASL part of a sarama config.
func (s SASL) Sarama(cfg *sarama.Config) {
	if !s.On() {
		return
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.User = s.Username
	cfg.Net.SASL.Password = s.Password
	cfg.Net.SASL.Mechanism = sarama.SASLMechanism(s.Mechanism)
	switch s.Mechanism {
	case MechSHA256:
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha256.New} }
	case MechSHA512:
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha512.New} }
	}
}

// KafkaGo returns the kafka-go mechanism, or nil when SASL is off.
func (s SASL) KafkaGo() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "":
		return nil, nil
	case MechPlain:
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case MechSHA256:
		return scram.Mechanism(scram.SHA256, s.Username, s.Password)
	case MechSHA512:
		return scram.Mechanism(scram.SHA512, s.Username, s.Password)
	}
	return nil, fmt.Errorf("sasl: unknown mechanism %q", s.Mechanism)
}

// scramClient adapts xdg-go/scram to sarama's SCRAMClient.
type scramClient struct {
	hash  func() hash.Hash
	convo *xscram.ClientConversation
}

func (c *scramClient) Begin(user, pass, authzID string) error {
	cl, err := xscram.HashGeneratorFcn(c.hash).NewClient(user, pass, authzID)
	if err != nil {
		return err
	}
	c.convo = cl.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.convo.Step(challenge) }

func (c *scramClient) Done() bool { return c.convo.Done() }

// ParseVersion reads a Kafka protocol version ("2.8.0"); empty gives
// sarama's default.
func ParseVersion(s string) (sarama.KafkaVersion, error) {
	if s == "" {
		return sarama.DefaultVersion, nil
	}
	v, err := sarama.ParseKafkaVersion(s)
	if err != nil {
		return v, fmt.Errorf("not a Kafka version (like \"2.8.0\"): %q", s)
	}
	if !v.IsAtLeast(sarama.V0_11_0_0) {
		return v, fmt.Errorf("%q is older than 0.11.0, which record headers need", s)
	}
	return v, nil
}

// Permanent reports whether a produce error will not go away by retrying
// the same record: the broker finds it too large, invalid, or not allowed.
// Everything else (leader moves, timeouts, connections, unknown topics that
// may yet be created) is worth retrying.
func Permanent(err error) bool {
	for _, pe := range []error{
		sarama.ErrMessageSizeTooLarge, sarama.ErrMessageSetSizeTooLarge,
		sarama.ErrInvalidTopic, sarama.ErrTopicAuthorizationFailed, sarama.ErrClusterAuthorizationFailed,
		sarama.ErrInvalidRecord, sarama.ErrInvalidRequiredAcks, sarama.ErrUnsupportedCompressionType,
		sarama.ErrPolicyViolation,
	} {
		if errors.Is(err, pe) {
			return true
		}
	}
	return kafkaGoPermanent(err)
}

// IsValidTopic reports whether Kafka accepts name as a topic:
// 1..249 of [a-zA-Z0-9._-], not "." or "..".
func IsValidTopic(name string) bool {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return false
	}
	return strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) < 0
}

func kafkaGoPermanent(err error) bool {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return true
	}
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke {
	case kafka.MessageSizeTooLarge, kafka.RecordListTooLarge, kafka.InvalidTopic, kafka.TopicAuthorizationFailed,
		kafka.ClusterAuthorizationFailed, kafka.InvalidRecord, kafka.InvalidRequiredAcks,
		kafka.UnsupportedCompressionType, kafka.PolicyViolation:
		return true
	}
	return false
}
