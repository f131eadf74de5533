package kafkax

import (
	"errors"
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	kafka "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
)

func TestSASLValidate(t *testing.T) {
	assert.NoError(t, SASL{}.Validate())
	assert.NoError(t, SASL{Mechanism: MechSHA512, Username: "u", Password: "p"}.Validate())
	assert.ErrorContains(t, SASL{Username: "u"}.Validate(), "sasl.mechanism: required")
	err := SASL{Mechanism: "GSSAPI"}.Validate()
	assert.ErrorContains(t, err, "sasl.mechanism: must be")
	assert.ErrorContains(t, err, "sasl.username: required")
	for _, m := range []string{MechPlain, MechSHA256, MechSHA512} {
		mech, err := SASL{Mechanism: m, Username: "u", Password: "p"}.KafkaGo()
		assert.NoError(t, err)
		assert.Equal(t, m, mech.Name())
		sc := sarama.NewConfig()
		SASL{Mechanism: m, Username: "u", Password: "p"}.Sarama(sc)
		assert.True(t, sc.Net.SASL.Enable)
		assert.NoError(t, sc.Validate(), m)
	}
}

func TestParseVersion(t *testing.T) {
	v, err := ParseVersion("")
	assert.NoError(t, err)
	assert.Equal(t, sarama.DefaultVersion, v)
	_, err = ParseVersion("3.6.0")
	assert.NoError(t, err)
	_, err = ParseVersion("0.10.2.0")
	assert.ErrorContains(t, err, "older than 0.11.0")
	_, err = ParseVersion("two")
	assert.Error(t, err)
}

func TestPermanent(t *testing.T) {
	for _, err := range []error{
		sarama.ErrMessageSizeTooLarge, fmt.Errorf("wrapped: %w", sarama.ErrTopicAuthorizationFailed),
		kafka.MessageSizeTooLarge, kafka.TopicAuthorizationFailed, kafka.MessageTooLargeError{},
		kafka.WriteErrors{kafka.InvalidTopic},
	} {
		if we, ok := err.(kafka.WriteErrors); ok {
			err = we[0]
		}
		assert.True(t, Permanent(err), "%v", err)
	}
	for _, err := range []error{
		sarama.ErrNotLeaderForPartition, sarama.ErrRequestTimedOut, kafka.UnknownTopicOrPartition,
		kafka.LeaderNotAvailable, errors.New("dial tcp: connection refused"),
	} {
		assert.False(t, Permanent(err), "%v", err)
	}
}

func TestIsValidTopic(t *testing.T) {
	for _, ok := range []string{"logs", "a.b_c-D9", "x"} {
		assert.True(t, IsValidTopic(ok), ok)
	}
	long := make([]byte, 250)
	for i := range long {
		long[i] = 'a'
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a b", "é", string(long), "a\x00"} {
		assert.False(t, IsValidTopic(bad), "%q", bad)
	}
}
